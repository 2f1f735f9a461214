"""The catalog's services on MemoryDatabase: no server, milliseconds per test.

Every test here would fail if anything tried to reach PostgreSQL: the
``no_server`` fixture points DATABASE_URL at a closed port and makes
asyncpg's connect and create_pool raise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from repo import ForeignKeyViolation, InvalidQuery, NotFound, UniqueViolation
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
from repo.testing import MemoryDatabase


def _refuse(*args: Any, **kwargs: Any) -> Any:
    msg = "a unit test tried to reach PostgreSQL"
    raise AssertionError(msg)


@pytest.fixture(autouse=True)
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """No server is reachable: any attempt to connect fails the test."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")
    monkeypatch.setattr(asyncpg, "connect", _refuse)
    monkeypatch.setattr(asyncpg, "create_pool", _refuse)


@pytest.fixture
async def db() -> AsyncIterator[MemoryDatabase]:
    """A fresh, empty MemoryDatabase."""
    async with MemoryDatabase.connect() as memory:
        yield memory


async def test_create_brand_commits_it(db: MemoryDatabase) -> None:
    """A created brand is there for the next unit of work, its name trimmed."""
    async with CatalogUnitOfWork(db) as uow:
        acme = await create_brand(uow, "  acme ")
    async with CatalogUnitOfWork(db, readonly=True) as uow:
        assert await uow.brands.named("acme") == acme


async def test_create_brand_refuses_duplicates_and_blanks(db: MemoryDatabase) -> None:
    """A second brand of the same name is a UniqueViolation; a blank name is refused."""
    async with CatalogUnitOfWork(db) as uow:
        await create_brand(uow, "acme")
    with pytest.raises(UniqueViolation):
        async with CatalogUnitOfWork(db) as uow:
            await create_brand(uow, "acme")
    with pytest.raises(InvalidQuery, match="blank"):
        async with CatalogUnitOfWork(db) as uow:
            await create_brand(uow, "  ")


async def test_rename_brand(db: MemoryDatabase) -> None:
    """A brand is renamed in place; an unknown one is NotFound and nothing changes."""
    async with CatalogUnitOfWork(db) as uow:
        acme = await create_brand(uow, "acme")
        await create_brand(uow, "bolt")
    async with CatalogUnitOfWork(db) as uow:
        renamed = await rename_brand(uow, acme.brand_id or 0, "acme corp")
    assert renamed == Brand("acme corp", acme.brand_id)
    with pytest.raises(NotFound):
        async with CatalogUnitOfWork(db) as uow:
            await rename_brand(uow, 99, "ghost")
    with pytest.raises(UniqueViolation):
        async with CatalogUnitOfWork(db) as uow:
            await rename_brand(uow, acme.brand_id or 0, "bolt")


async def test_add_product_with_its_skus_and_read_its_sheet(db: MemoryDatabase) -> None:
    """Sizes and colours are made on first use; the sheet joins every name in memory."""
    async with CatalogUnitOfWork(db) as uow:
        acme = await create_brand(uow, "acme")
        anvil, skus = await add_product(
            uow, acme.brand_id or 0, "anvil", [("L", "red"), ("S", "red"), ("L", "blue")]
        )
    assert len(skus) == 3
    async with CatalogUnitOfWork(db, readonly=True) as uow:
        sheet = await product_sheet(uow, anvil.product_id or 0)
        assert await uow.colors.count() == 2
    assert sheet == [
        SkuView(1, "anvil", "acme", "red", "L"),
        SkuView(2, "anvil", "acme", "red", "S"),
        SkuView(3, "anvil", "acme", "blue", "L"),
    ]


async def test_add_product_is_all_or_nothing(db: MemoryDatabase) -> None:
    """A repeated variant fails the unit: neither the product nor its colours stay."""
    async with CatalogUnitOfWork(db) as uow:
        acme = await create_brand(uow, "acme")
    with pytest.raises(UniqueViolation):
        async with CatalogUnitOfWork(db) as uow:
            await add_product(uow, acme.brand_id or 0, "anvil", [("L", "red"), ("L", "red")])
    with pytest.raises(ForeignKeyViolation):
        async with CatalogUnitOfWork(db) as uow:
            await add_product(uow, 42, "orphan", [])
    async with CatalogUnitOfWork(db, readonly=True) as uow:
        assert (await uow.products.count(), await uow.colors.count()) == (0, 0)


async def test_discontinue_product_removes_it_and_its_skus(db: MemoryDatabase) -> None:
    """Discontinuing returns how many skus went; other products keep theirs."""
    async with CatalogUnitOfWork(db) as uow:
        acme = await create_brand(uow, "acme")
        anvil, _ = await add_product(uow, acme.brand_id or 0, "anvil", [("L", "red"), ("S", "red")])
        await add_product(uow, acme.brand_id or 0, "bolt", [("L", "red")])
    async with CatalogUnitOfWork(db) as uow:
        assert await discontinue_product(uow, anvil.product_id or 0) == 2
    async with CatalogUnitOfWork(db, readonly=True) as uow:
        assert [p.product_name for p in await uow.products.find()] == ["bolt"]
        assert await uow.skus.count() == 1
        with pytest.raises(NotFound):
            await discontinue_product(uow, anvil.product_id or 0)


async def test_import_price_list(db: MemoryDatabase) -> None:
    """Known products are repriced; unknown ids are reported; a negative price is refused."""
    async with CatalogUnitOfWork(db) as uow:
        acme = await create_brand(uow, "acme")
        anvil, _ = await add_product(uow, acme.brand_id or 0, "anvil", [])
        bolt, _ = await add_product(uow, acme.brand_id or 0, "bolt", [], price=Decimal("1.00"))
    async with CatalogUnitOfWork(db) as uow:
        result = await import_price_list(
            uow, [(anvil.product_id or 0, Decimal("19.99")), (77, Decimal("5.00"))]
        )
    assert result == PriceImport(updated=1, unknown=[77])
    async with CatalogUnitOfWork(db, readonly=True) as uow:
        prices = {p.product_name: p.price for p in await uow.products.find()}
    assert prices == {"anvil": Decimal("19.99"), "bolt": Decimal("1.00")}
    with pytest.raises(InvalidQuery, match="negative"):
        async with CatalogUnitOfWork(db) as uow:
            await import_price_list(uow, [(bolt.product_id or 0, Decimal("-1"))])


async def test_hand_sql_without_an_override_names_the_method(db: MemoryDatabase) -> None:
    """A repository method in hand SQL with no in-memory override says which and what to do."""
    from repo import NotSupportedInMemory
    from repo.catalog import SkuRepository

    plain = MemoryDatabase(overrides={SkuRepository: SkuRepository})
    with pytest.raises(NotSupportedInMemory, match=r"SkuRepository\.views_of_product.*override"):
        await plain.repository(SkuRepository).views_of_product(1)
