"""The catalog's repositories and its unit of work."""

from __future__ import annotations

from repo import AggregateRepository, Repository, UnitOfWork

from ._entities import Brand, Product, ProductColor, ProductDetail, ProductSize, Sku, SkuView
from ._tables import BRANDS, COLORS, PRODUCT_DETAIL, PRODUCTS, SIZES, SKUS

__all__ = [
    "BrandRepository",
    "CatalogUnitOfWork",
    "ColorRepository",
    "ProductDetails",
    "ProductRepository",
    "SizeRepository",
    "SkuRepository",
]

SKU_VIEW_SQL = """
SELECT sku.sku_id, product.product_name, brand.brand_name,
       product_color.product_color_name, product_size.product_size_name
FROM sku
JOIN product ON product.product_id = sku.product_id
JOIN brand ON brand.brand_id = product.brand_id
JOIN product_color ON product_color.product_color_id = sku.product_color_id
JOIN product_size ON product_size.product_size_id = sku.product_size_id
WHERE sku.product_id = $1
ORDER BY sku.sku_id
"""


class BrandRepository(Repository[Brand]):
    table = BRANDS

    async def named(self, name: str) -> Brand | None:
        """The brand called `name`, if any."""
        return await self.find_one(brand_name=name)


class ProductRepository(Repository[Product]):
    table = PRODUCTS

    async def of_brand(self, brand_id: int) -> list[Product]:
        """The products of one brand, by name."""
        return await self.find(brand_id=brand_id, order_by="product_name")


class ColorRepository(Repository[ProductColor]):
    table = COLORS


class SizeRepository(Repository[ProductSize]):
    table = SIZES


class SkuRepository(Repository[Sku]):
    table = SKUS

    async def views_of_product(self, product_id: int) -> list[SkuView]:
        """Every sku of a product, joined with its product, brand, colour and size names."""
        return await self.query(SkuView, SKU_VIEW_SQL, product_id)


class ProductDetails(AggregateRepository[ProductDetail]):
    """Products with their brand and skus, whole."""

    aggregate = PRODUCT_DETAIL


class CatalogUnitOfWork(UnitOfWork):
    brands: BrandRepository
    products: ProductRepository
    colors: ColorRepository
    sizes: SizeRepository
    skus: SkuRepository
    details: ProductDetails
