"""The reference domain: the products catalog of asyncpg's example database.

``brand``, ``product`` (→ brand), ``product_color``, ``product_size`` and
``sku`` (→ product, size, colour), with brand names unique.
"""

from ._entities import Brand, Product, ProductColor, ProductSize, Sku, SkuView
from ._generate import CatalogCounts, load_catalog, plan_catalog
from ._repositories import (
    SKU_VIEW_SQL,
    BrandRepository,
    CatalogUnitOfWork,
    ColorRepository,
    ProductRepository,
    SizeRepository,
    SkuRepository,
)
from ._tables import BRANDS, COLORS, PRODUCTS, SIZES, SKUS, TABLES

__all__ = [
    "BRANDS",
    "COLORS",
    "PRODUCTS",
    "SIZES",
    "SKUS",
    "SKU_VIEW_SQL",
    "TABLES",
    "Brand",
    "BrandRepository",
    "CatalogCounts",
    "CatalogUnitOfWork",
    "ColorRepository",
    "Product",
    "ProductColor",
    "ProductRepository",
    "ProductSize",
    "SizeRepository",
    "Sku",
    "SkuRepository",
    "SkuView",
    "load_catalog",
    "plan_catalog",
]
