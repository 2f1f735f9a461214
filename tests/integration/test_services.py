"""The catalog's services on a real PostgreSQL: one test per function."""

from __future__ import annotations

from decimal import Decimal

import pytest

from repo import Database, UniqueViolation
from repo.catalog import (
    Brand,
    CatalogUnitOfWork,
    PriceImport,
    SkuView,
    add_product,
    create_brand,
    discontinue_product,
    import_price_list,
    product_sheet,
    rename_brand,
)


async def test_create_brand(db: Database) -> None:
    """create_brand stores the brand; a duplicate is the server's UniqueViolation."""
    async with CatalogUnitOfWork(db) as uow:
        assert await create_brand(uow, " acme ") == Brand("acme", 1)
    with pytest.raises(UniqueViolation):
        async with CatalogUnitOfWork(db) as uow:
            await create_brand(uow, "acme")


async def test_rename_brand(db: Database) -> None:
    """rename_brand updates the row the next unit reads."""
    async with CatalogUnitOfWork(db) as uow:
        acme = await create_brand(uow, "acme")
    async with CatalogUnitOfWork(db) as uow:
        await rename_brand(uow, acme.brand_id or 0, "acme corp")
    async with CatalogUnitOfWork(db) as uow:
        assert await uow.brands.get(acme.brand_id) == Brand("acme corp", acme.brand_id)


async def test_add_product_and_product_sheet(db: Database) -> None:
    """add_product stores a product with its skus; product_sheet reads them through SQL."""
    async with CatalogUnitOfWork(db) as uow:
        acme = await create_brand(uow, "acme")
        anvil, skus = await add_product(
            uow, acme.brand_id or 0, "anvil", [("L", "red"), ("S", "red")], price=Decimal("9.50")
        )
    assert (anvil.price, len(skus)) == (Decimal("9.50"), 2)
    async with CatalogUnitOfWork(db) as uow:
        assert await product_sheet(uow, anvil.product_id or 0) == [
            SkuView(1, "anvil", "acme", "red", "L"),
            SkuView(2, "anvil", "acme", "red", "S"),
        ]


async def test_discontinue_product(db: Database) -> None:
    """discontinue_product removes the skus, then the product they reference."""
    async with CatalogUnitOfWork(db) as uow:
        acme = await create_brand(uow, "acme")
        anvil, _ = await add_product(uow, acme.brand_id or 0, "anvil", [("L", "red")])
    async with CatalogUnitOfWork(db) as uow:
        assert await discontinue_product(uow, anvil.product_id or 0) == 1
    async with CatalogUnitOfWork(db) as uow:
        assert (await uow.products.count(), await uow.skus.count()) == (0, 0)


async def test_import_price_list(db: Database) -> None:
    """import_price_list reprices known products, to the cent, and reports unknown ids."""
    async with CatalogUnitOfWork(db) as uow:
        acme = await create_brand(uow, "acme")
        anvil, _ = await add_product(uow, acme.brand_id or 0, "anvil", [])
    async with CatalogUnitOfWork(db) as uow:
        result = await import_price_list(
            uow, [(anvil.product_id or 0, Decimal("19.99")), (8, Decimal(1))]
        )
    assert result == PriceImport(updated=1, unknown=[8])
    async with CatalogUnitOfWork(db) as uow:
        assert (await uow.products.get(anvil.product_id)).price == Decimal("19.99")
