"""repo.testing's ``rollback_db`` fixture: a real database, every test rolled back.

Each test asks for ``dsn`` first, which empties the catalog tables that
``rollback_db`` then works on.
"""

from __future__ import annotations

import asyncpg
import pytest

from repo import InvalidState, NotFound, TransactionAborted, UniqueViolation
from repo.catalog import Brand, BrandRepository, CatalogUnitOfWork
from repo.testing import RollbackDatabase


async def committed_brands(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM brand")
    finally:
        await conn.close()
    return count


async def test_units_commit_into_the_tests_transaction_only(
    dsn: str, rollback_db: RollbackDatabase
) -> None:
    """A committed unit is visible to the test, and to no other connection."""
    async with CatalogUnitOfWork(rollback_db) as uow:
        await uow.brands.add(Brand("acme"))
    assert [b.brand_name for b in await rollback_db.repository(BrandRepository).find()] == ["acme"]
    assert await committed_brands(dsn) == 0


async def test_rollbacks_and_savepoints_inside_keep_working(
    dsn: str, rollback_db: RollbackDatabase
) -> None:
    """A failed savepoint, a failed unit and a failed call each undo only their own part."""
    async with CatalogUnitOfWork(rollback_db) as uow:
        await uow.brands.add(Brand("acme"))
        with pytest.raises(UniqueViolation):
            async with uow.savepoint():
                await uow.brands.add(Brand("acme"))
        await uow.brands.add(Brand("bolt"))
    with pytest.raises(UniqueViolation):
        async with CatalogUnitOfWork(rollback_db) as uow:
            await uow.brands.add(Brand("crane"))
            await uow.brands.add(Brand("acme"))
    brands = rollback_db.repository(BrandRepository)
    with pytest.raises(UniqueViolation):
        await brands.add(Brand("bolt"))
    with pytest.raises(NotFound):
        await brands.get(99)
    async with CatalogUnitOfWork(rollback_db) as uow:
        await uow.brands.add(Brand("dyna"))
        with pytest.raises(UniqueViolation):
            await uow.brands.add(Brand("dyna"))
        with pytest.raises(TransactionAborted):
            await uow.commit()
    assert [b.brand_name for b in await brands.find(order_by="brand_name")] == ["acme", "bolt"]
    assert [b.brand_name async for b in brands.stream(order_by="brand_name")] == ["acme", "bolt"]
    with pytest.raises(UniqueViolation):
        await brands.add_many([Brand("eagle"), Brand("acme")])
    assert await brands.add_many([Brand("eagle"), Brand("fern")]) == 2
    assert await brands.count() == 4


async def test_units_must_end_in_reverse_order(rollback_db: RollbackDatabase) -> None:
    """Two units on the one connection nest: ending the outer one first is refused."""
    outer = await CatalogUnitOfWork(rollback_db).__aenter__()
    inner = await CatalogUnitOfWork(rollback_db).__aenter__()
    with pytest.raises(InvalidState, match="nest"):
        await outer.commit()
    await inner.rollback()
