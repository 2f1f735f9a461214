"""Units of work on a real PostgreSQL: what only the server shows.

The shared behaviour (commit, rollback, savepoints, aborted transactions,
read-only units, visibility) is pinned in tests/contract/ for both backends.
"""

from __future__ import annotations

import asyncpg
import pytest

from repo import Database, InvalidState, SerializationFailure, UniqueViolation, UnitState
from repo.catalog import Brand, CatalogUnitOfWork

pytestmark = pytest.mark.smoke


async def test_a_unit_holds_a_connection_in_a_transaction(
    db: Database, conn: asyncpg.Connection
) -> None:
    """Inside the unit its connection is in a transaction others cannot see into."""
    async with CatalogUnitOfWork(db) as uow:
        await uow.brands.add(Brand("acme"))
        assert uow.connection.is_in_transaction()
        assert await conn.fetchval("SELECT count(*) FROM brand") == 0
    with pytest.raises(InvalidState, match="committed"):
        _ = uow.connection


async def test_isolation_levels_are_applied(db: Database) -> None:
    """isolation=, readonly= and deferrable= reach the server."""
    async with CatalogUnitOfWork(
        db, isolation="serializable", readonly=True, deferrable=True
    ) as uow:
        c = uow.connection
        assert await c.fetchval("SHOW transaction_isolation") == "serializable"
        assert await c.fetchval("SHOW transaction_read_only") == "on"
        assert await c.fetchval("SHOW transaction_deferrable") == "on"
    async with CatalogUnitOfWork(db, isolation="repeatable_read") as uow:
        assert await uow.connection.fetchval("SHOW transaction_isolation") == "repeatable read"


async def test_serialization_failure_is_translated(db: Database) -> None:
    """Two serializable units that conflict: one gets SerializationFailure (40001)."""
    brands_seed = await CatalogUnitOfWork(db).__aenter__()
    await brands_seed.brands.add(Brand("x"))
    await brands_seed.commit()
    a = await CatalogUnitOfWork(db, isolation="serializable").__aenter__()
    b = await CatalogUnitOfWork(db, isolation="serializable").__aenter__()
    try:
        assert await a.brands.count() == 1
        assert await b.brands.count() == 1
        await a.brands.add(Brand("from a"))
        await b.brands.add(Brand("from b"))
        await a.commit()
        with pytest.raises(SerializationFailure):
            await b.commit()
    finally:
        for unit in (a, b):
            if unit.state is UnitState.ACTIVE:
                await unit.rollback()


async def test_connections_return_to_the_pool_idle(db: Database) -> None:
    """After commit, rollback and failure every connection is back, none in a transaction."""
    async with CatalogUnitOfWork(db):
        pass
    with pytest.raises(ValueError, match="boom"):
        async with CatalogUnitOfWork(db):
            raise ValueError("boom")
    with pytest.raises(UniqueViolation):
        async with CatalogUnitOfWork(db) as uow:
            await uow.brands.add(Brand("a"))
            await uow.brands.add(Brand("a"))
    pool = db.pool
    assert pool.get_idle_size() == pool.get_size()
    async with db.acquire() as raw:
        assert not raw.is_in_transaction()
        idle = await raw.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND state = 'idle in transaction'"
        )
    assert idle == 0
