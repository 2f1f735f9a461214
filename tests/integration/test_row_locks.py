"""Row locks on PostgreSQL: the SQL sent, and the sessions only PostgreSQL has.

The behaviour both backends share is pinned in tests/contract/test_locks.py.
"""

from __future__ import annotations

import asyncpg
import pytest

from repo import Database, InvalidState, StatementEvent
from repo.catalog import Brand, BrandRepository, CatalogUnitOfWork
from repo.testing import rollback_database


async def test_the_lock_clause_follows_limit_and_offset(db: Database) -> None:
    """FOR UPDATE / FOR SHARE [SKIP LOCKED | NOWAIT] is appended after LIMIT and OFFSET,
    where PostgreSQL requires it."""
    sent: list[str] = []

    def hook(event: object) -> None:
        if isinstance(event, StatementEvent):
            sent.append(event.sql)

    await db.repository(BrandRepository).add_many([Brand("a"), Brand("b"), Brand("c")])
    db.add_event_hook(hook)
    async with CatalogUnitOfWork(db) as uow:
        got = await uow.brands.find(
            order_by="brand_id", limit=1, offset=1, for_update=True, skip_locked=True
        )
        assert [b.brand_name for b in got] == ["b"]
        await uow.brands.find_one(brand_name="a", for_share=True, nowait=True)
        await uow.brands.get(3, for_update=True)
    selects = [s for s in sent if s.startswith("SELECT")]
    assert selects[0].endswith('ORDER BY "brand_id" LIMIT $1 OFFSET $2 FOR UPDATE SKIP LOCKED')
    assert selects[1].endswith("LIMIT $2 FOR SHARE NOWAIT")
    assert selects[2].endswith('WHERE "brand_id" = $1 FOR UPDATE')


async def test_a_lock_on_a_callers_connection_needs_its_transaction(
    db: Database, conn: asyncpg.Connection
) -> None:
    """db.repository(connection=conn): a lock is refused outside the caller's own
    transaction (it would end with its statement) and held inside it."""
    [brand] = await db.repository(BrandRepository).add_many([Brand("acme")], returning=True)
    async with db.acquire() as mine:
        brands = db.repository(BrandRepository, connection=mine)
        with pytest.raises(InvalidState, match="outside a unit of work"):
            await brands.get(brand.brand_id, for_update=True)
        async with mine.transaction():
            assert await brands.get(brand.brand_id, for_update=True) == brand
            with pytest.raises(asyncpg.LockNotAvailableError):
                await conn.fetch("SELECT 1 FROM brand FOR UPDATE NOWAIT")


async def test_rollback_database_units_lock_and_its_pool_level_calls_refuse(
    dsn: str, conn: asyncpg.Connection
) -> None:
    """On RollbackDatabase, as on Database: a unit of work takes locks (held until the
    test's transaction ends), a pool-level repository refuses them."""
    async with rollback_database(dsn) as rdb:
        await rdb.repository(BrandRepository).add(Brand("acme"))
        with pytest.raises(InvalidState, match="outside a unit of work"):
            await rdb.repository(BrandRepository).find(for_update=True)
        async with CatalogUnitOfWork(rdb) as uow:
            assert len(await uow.brands.find(for_update=True, nowait=True)) == 1
