"""The catalog's service layer: use cases written only against `CatalogUnitOfWork`.

Each function does its work in the unit it is given and leaves committing to
the caller, so several calls can share one transaction; none knows which
backend runs it (PostgreSQL, or `MemoryDatabase` in unit tests).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal

import attrs

from repo import in_
from repo.errors import InvalidQuery

from ._entities import Brand, Product, ProductColor, ProductDetail, ProductSize, Sku, SkuView
from ._repositories import CatalogUnitOfWork

__all__ = [
    "PriceImport",
    "add_product",
    "create_brand",
    "discontinue_product",
    "import_price_list",
    "product_detail",
    "product_sheet",
    "rename_brand",
]


async def create_brand(uow: CatalogUnitOfWork, name: str) -> Brand:
    """A new brand called `name`; `UniqueViolation` if one already has that name."""
    name = name.strip()
    if not name:
        msg = "a brand needs a name that is not blank"
        raise InvalidQuery(msg)
    return await uow.brands.add(Brand(name))


async def rename_brand(uow: CatalogUnitOfWork, brand_id: int, name: str) -> Brand:
    """Give brand `brand_id` a new name; `NotFound` or `UniqueViolation` as the data says."""
    brand = await uow.brands.get(brand_id)
    return await uow.brands.update(attrs.evolve(brand, brand_name=name.strip()))


async def _color(uow: CatalogUnitOfWork, name: str) -> int:
    found = await uow.colors.find_one(product_color_name=name)
    color = found or await uow.colors.add(ProductColor(name))
    return color.product_color_id or 0


async def _size(uow: CatalogUnitOfWork, name: str) -> int:
    found = await uow.sizes.find_one(product_size_name=name)
    size = found or await uow.sizes.add(ProductSize(name))
    return size.product_size_id or 0


async def add_product(
    uow: CatalogUnitOfWork,
    brand_id: int,
    name: str,
    variants: Iterable[tuple[str, str]],
    *,
    price: Decimal | None = None,
) -> tuple[Product, list[Sku]]:
    """A product of brand `brand_id` with one sku per (size, colour) name in `variants`.

    Sizes and colours are made on first use. A repeated variant is refused
    with `UniqueViolation`; a missing brand with `ForeignKeyViolation`.
    """
    product = await uow.products.add(Product(name, brand_id, price=price))
    pid = product.product_id or 0
    skus = [Sku(pid, await _size(uow, size), await _color(uow, color)) for size, color in variants]
    return product, await uow.skus.add_many(skus, returning=True)


async def product_sheet(uow: CatalogUnitOfWork, product_id: int) -> list[SkuView]:
    """Every sku of a product with its product, brand, colour and size names."""
    await uow.products.get(product_id)
    return await uow.skus.views_of_product(product_id)


async def product_detail(uow: CatalogUnitOfWork, product_id: int) -> ProductDetail:
    """A product with its brand and its skus, in one read; `NotFound` if absent."""
    return await uow.details.get(product_id)


async def discontinue_product(uow: CatalogUnitOfWork, product_id: int) -> int:
    """Remove a product and its skus; return how many skus went. `NotFound` if absent."""
    detail = await uow.details.get(product_id)
    await uow.details.delete(product_id)
    return len(detail.skus)


@attrs.frozen
class PriceImport:
    """What a price list did: products repriced, and the ids it named that do not exist."""

    updated: int
    unknown: list[int]


async def import_price_list(
    uow: CatalogUnitOfWork, prices: Iterable[tuple[int, Decimal]]
) -> PriceImport:
    """Set product prices from (product_id, price) pairs; unknown ids are reported, not fatal."""
    pairs: Sequence[tuple[int, Decimal]] = list(prices)
    for product_id, price in pairs:
        if price < 0:
            msg = f"price list: product {product_id} has a negative price {price}"
            raise InvalidQuery(msg)
    ids = [product_id for product_id, _ in pairs]
    existing = {p.product_id for p in await uow.products.find(product_id=in_(ids))}
    updated = 0
    for product_id, price in pairs:
        if product_id in existing:
            updated += await uow.products.update_where({"price": price}, product_id=product_id)
    return PriceImport(updated, sorted({i for i in ids if i not in existing}))
