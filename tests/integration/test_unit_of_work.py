"""Units of work and savepoints on a real PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from repo import (
    Database,
    InvalidQuery,
    InvalidState,
    NotFound,
    ReadOnlyViolation,
    SerializationFailure,
    UniqueViolation,
    UnitState,
)
from repo.catalog import Brand, CatalogUnitOfWork, Product

pytestmark = pytest.mark.smoke


async def names(conn: asyncpg.Connection) -> list[str]:
    return [r[0] for r in await conn.fetch("SELECT brand_name FROM brand ORDER BY brand_id")]


async def test_clean_exit_commits_visible_to_another_connection(
    db: Database, conn: asyncpg.Connection
) -> None:
    """Work is invisible to others until the unit exits cleanly, then it is committed."""
    async with CatalogUnitOfWork(db) as uow:
        await uow.brands.add(Brand("acme"))
        assert await names(conn) == []
        assert uow.connection.is_in_transaction()
    assert uow.state is UnitState.COMMITTED
    assert await names(conn) == ["acme"]


async def test_exception_rolls_back_and_propagates(db: Database, conn: asyncpg.Connection) -> None:
    """An exception escaping the block rolls everything back and is re-raised."""
    with pytest.raises(ZeroDivisionError):
        async with CatalogUnitOfWork(db) as uow:
            await uow.brands.add(Brand("acme"))
            _ = 1 / 0
    assert uow.state is UnitState.ROLLED_BACK
    assert await names(conn) == []


async def test_explicit_rollback_discards_and_ends(db: Database, conn: asyncpg.Connection) -> None:
    """rollback() discards the work and ends the unit; later use raises InvalidState."""
    async with CatalogUnitOfWork(db) as uow:
        await uow.brands.add(Brand("acme"))
        await uow.rollback()
        with pytest.raises(InvalidState):
            await uow.brands.add(Brand("after"))
    assert await names(conn) == []


async def test_commit_twice_and_use_after_exit_raise_invalid_state(db: Database) -> None:
    """A second commit, or any use after the unit ended, raises InvalidState."""
    async with CatalogUnitOfWork(db) as uow:
        await uow.brands.add(Brand("acme"))
        await uow.commit()
        with pytest.raises(InvalidState, match="committed"):
            await uow.commit()
    with pytest.raises(InvalidState):
        await uow.brands.get(1)
    with pytest.raises(InvalidState):
        await uow.rollback()
    with pytest.raises(InvalidState):
        async with uow:
            pass
    with pytest.raises(InvalidState):
        _ = uow.connection


async def test_unit_not_entered_cannot_be_used(db: Database) -> None:
    """Repositories of a unit that has not begun raise InvalidState."""
    uow = CatalogUnitOfWork(db)
    with pytest.raises(InvalidState):
        await uow.brands.get(1)
    with pytest.raises(InvalidState):
        await uow.commit()


async def test_savepoint_undoes_only_its_part(db: Database, conn: asyncpg.Connection) -> None:
    """A failing savepoint rolls back to itself; the outer work still commits."""
    async with CatalogUnitOfWork(db) as uow:
        await uow.brands.add(Brand("acme"))
        with pytest.raises(UniqueViolation):
            async with uow.savepoint():
                await uow.brands.add(Brand("inner"))
                await uow.brands.add(Brand("acme"))
        await uow.brands.add(Brand("after"))
    assert await names(conn) == ["acme", "after"]


async def test_three_deep_savepoints_with_the_middle_rolled_back(
    db: Database, conn: asyncpg.Connection
) -> None:
    """Outer, middle and inner savepoints: rolling back the middle undoes it and the inner."""
    async with CatalogUnitOfWork(db) as uow, uow.savepoint():
        await uow.brands.add(Brand("level1"))
        with pytest.raises(RuntimeError):
            async with uow.savepoint():
                await uow.brands.add(Brand("level2"))
                async with uow.savepoint():
                    await uow.brands.add(Brand("level3"))
                raise RuntimeError("undo the middle")
        await uow.brands.add(Brand("level1-after"))
    assert await names(conn) == ["level1", "level1-after"]


async def test_savepoint_release_keeps_work(db: Database, conn: asyncpg.Connection) -> None:
    """Savepoints that exit cleanly keep their work, at any depth."""
    async with CatalogUnitOfWork(db) as uow, uow.savepoint(), uow.savepoint(), uow.savepoint():
        await uow.brands.add(Brand("deep"))
    assert await names(conn) == ["deep"]


async def test_error_without_savepoint_aborts_the_unit(
    db: Database, conn: asyncpg.Connection
) -> None:
    """After a server error outside a savepoint the transaction is aborted; nothing commits."""
    with pytest.raises(UniqueViolation):
        async with CatalogUnitOfWork(db) as uow:
            await uow.brands.add(Brand("acme"))
            await uow.brands.add(Brand("acme"))
    assert await names(conn) == []


async def test_gather_on_one_unit_is_serialized(db: Database) -> None:
    """Concurrent calls on one unit of work take turns: right results, no driver error."""
    async with CatalogUnitOfWork(db) as uow:
        brand = await uow.brands.add(Brand("acme"))
        product = await uow.products.add(Product("anvil", brand.brand_id or 0))
        results = await asyncio.gather(
            *(uow.brands.get(brand.brand_id) for _ in range(20)),
            *(uow.products.get(product.product_id) for _ in range(20)),
            *(uow.brands.add(Brand(f"b{i}")) for i in range(20)),
        )
    assert results[:20] == [brand] * 20
    assert results[20:40] == [product] * 20
    assert {getattr(r, "brand_name", None) for r in results[40:]} == {f"b{i}" for i in range(20)}


async def test_not_found_inside_a_unit_keeps_it_usable(db: Database) -> None:
    """NotFound is a client-side outcome: the transaction is not aborted by it."""
    async with CatalogUnitOfWork(db) as uow:
        with pytest.raises(NotFound):
            await uow.brands.get(1)
        await uow.brands.add(Brand("still fine"))
    assert await db.repository(type(uow.brands)).count() == 1


async def test_readonly_unit_refuses_writes(db: Database) -> None:
    """A write in a read-only unit raises ReadOnlyViolation (SQLSTATE 25006)."""
    with pytest.raises(ReadOnlyViolation):
        async with CatalogUnitOfWork(db, readonly=True) as uow:
            await uow.brands.add(Brand("nope"))


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
    with pytest.raises(InvalidQuery, match="isolation"):
        async with CatalogUnitOfWork(db, isolation="chaotic"):
            pass


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
