"""The catalog's in-memory override: the sku view join, built from generic reads."""

from __future__ import annotations

from repo.testing import memory_override

from ._entities import SkuView
from ._repositories import (
    BrandRepository,
    ColorRepository,
    ProductRepository,
    SizeRepository,
    SkuRepository,
)

__all__ = ["MemorySkuRepository"]


@memory_override(SkuRepository)
class MemorySkuRepository(SkuRepository):
    """`SkuRepository` on a `MemoryDatabase`: `views_of_product` without SQL."""

    async def views_of_product(self, product_id: int) -> list[SkuView]:
        skus = await self.find(product_id=product_id, order_by="sku_id")
        if not skus:
            return []
        product = await self.repository(ProductRepository).get(product_id)
        brand = await self.repository(BrandRepository).get(product.brand_id)
        colors = await self.repository(ColorRepository).get_many({s.product_color_id for s in skus})
        sizes = await self.repository(SizeRepository).get_many({s.product_size_id for s in skus})
        color_of = {c.product_color_id: c.product_color_name for c in colors}
        size_of = {s.product_size_id: s.product_size_name for s in sizes}
        return [
            SkuView(
                sku_id=s.sku_id or 0,
                product_name=product.product_name,
                brand_name=brand.brand_name,
                product_color_name=color_of[s.product_color_id],
                product_size_name=size_of[s.product_size_id],
            )
            for s in skus
        ]
