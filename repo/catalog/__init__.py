"""The reference domain: the products catalog of asyncpg's example database.

``brand``, ``product`` (→ brand), ``product_color``, ``product_size`` and
``sku`` (→ product, size, colour), with brand names unique; and the service
functions, written against `CatalogUnitOfWork`, which run unchanged on
`repo.testing.MemoryDatabase`.
"""

from ._entities import Brand, Product, ProductColor, ProductDetail, ProductSize, Sku, SkuView
from ._generate import CatalogCounts, load_catalog, plan_catalog
from ._memory import MemorySkuRepository
from ._repositories import (
    SKU_VIEW_SQL,
    BrandRepository,
    CatalogUnitOfWork,
    ColorRepository,
    ProductDetails,
    ProductRepository,
    SizeRepository,
    SkuRepository,
)
from ._services import (
    PriceImport,
    add_product,
    create_brand,
    discontinue_product,
    import_price_list,
    product_detail,
    product_sheet,
    rename_brand,
)
from ._tables import BRANDS, COLORS, PRODUCT_DETAIL, PRODUCTS, SIZES, SKUS, TABLES

__all__ = [
    "BRANDS",
    "COLORS",
    "PRODUCTS",
    "PRODUCT_DETAIL",
    "SIZES",
    "SKUS",
    "SKU_VIEW_SQL",
    "TABLES",
    "Brand",
    "BrandRepository",
    "CatalogCounts",
    "CatalogUnitOfWork",
    "ColorRepository",
    "MemorySkuRepository",
    "PriceImport",
    "Product",
    "ProductColor",
    "ProductDetail",
    "ProductDetails",
    "ProductRepository",
    "ProductSize",
    "SizeRepository",
    "Sku",
    "SkuRepository",
    "SkuView",
    "add_product",
    "create_brand",
    "discontinue_product",
    "import_price_list",
    "load_catalog",
    "plan_catalog",
    "product_detail",
    "product_sheet",
    "rename_brand",
]
