"""Session state never leaks to the connection's next user.

The pool skips asyncpg's reset query for connections that only ran repo's
own statements (tests/integration/test_round_trips.py counts that). Every
other way SQL reaches a connection must still reset it fully: each test
leaves advisory locks, a temporary table, a LISTEN, a session setting and a
held cursor behind through one such way, on a pool of one connection, and
the next user of that same backend must see none of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from repo import Database
from repo.catalog import Brand, BrandRepository, CatalogUnitOfWork

LEAVE_BEHIND = [
    "SELECT pg_advisory_lock(4242)",
    "SELECT pg_advisory_lock_shared(4243)",
    "CREATE TEMP TABLE leftover (x int)",
    "LISTEN leftover_channel",
    "SET statement_timeout = '4321s'",
    "SET application_name = 'leftover'",
    "DECLARE leftover_cursor CURSOR WITH HOLD FOR SELECT 1",
]

STATE = """
SELECT
    pg_backend_pid() AS pid,
    (SELECT count(*) FROM pg_locks
      WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS advisory_locks,
    (SELECT count(*) FROM pg_class
      WHERE relname = 'leftover' AND relpersistence = 't') AS temp_tables,
    (SELECT count(*) FROM pg_listening_channels()) AS listening,
    current_setting('statement_timeout') AS statement_timeout,
    current_setting('application_name') AS application_name,
    (SELECT count(*) FROM pg_cursors WHERE name = 'leftover_cursor') AS cursors
"""

CLEAN = {
    "advisory_locks": 0,
    "temp_tables": 0,
    "listening": 0,
    "statement_timeout": "0",
    "application_name": "",
    "cursors": 0,
}


@pytest.fixture
async def one(dsn: str, migrated_dsn: str) -> AsyncIterator[Database]:
    """A pool of exactly one connection, so every user gets the same backend."""
    # Straight to the server: behind PgBouncer there is no session to leak.
    async with Database.connect(migrated_dsn, min_size=1, max_size=1) as database:
        yield database


async def state_of_next_user(db: Database) -> dict[str, Any]:
    async with db.pool.acquire() as conn:
        row = await conn.fetchrow(STATE)
    assert row is not None
    return dict(row)


async def leave_behind(conn: Any) -> None:
    for statement in LEAVE_BEHIND:
        await conn.execute(statement)


async def via_acquire(db: Database) -> None:
    async with db.acquire() as conn:
        await leave_behind(conn)


async def via_unit_connection(db: Database) -> None:
    async with CatalogUnitOfWork(db) as uow:
        await uow.brands.add(Brand("in the unit"))
        conn = uow.connection
        for statement in LEAVE_BEHIND:
            # Inside a transaction a WITH HOLD cursor outlives the COMMIT.
            await conn.execute(statement)


async def via_hand_written_sql(db: Database) -> None:
    brands = db.repository(BrandRepository)
    for statement in LEAVE_BEHIND[:-1]:
        await brands.execute(statement)
    # Outside a transaction, a cursor needs one of its own to be declared in.
    await brands.execute(f"BEGIN; {LEAVE_BEHIND[-1]}; COMMIT")


async def via_hand_written_sql_in_a_unit(db: Database) -> None:
    async with CatalogUnitOfWork(db) as uow:
        for statement in LEAVE_BEHIND:
            await uow.brands.execute(statement)


async def via_the_asyncpg_pool(db: Database) -> None:
    async with db.pool.acquire() as conn:
        await leave_behind(conn)


async def via_a_pool_method_of_asyncpg(db: Database) -> None:
    for statement in LEAVE_BEHIND[:-1]:
        await db.pool.execute(statement)


WAYS: dict[str, Callable[[Database], Awaitable[None]]] = {
    "Database.acquire": via_acquire,
    "UnitOfWork.connection": via_unit_connection,
    "Repository.execute": via_hand_written_sql,
    "Repository.execute in a unit": via_hand_written_sql_in_a_unit,
    "db.pool.acquire": via_the_asyncpg_pool,
    "db.pool.execute": via_a_pool_method_of_asyncpg,
}


@pytest.mark.parametrize("way", WAYS)
async def test_session_state_left_behind_does_not_reach_the_next_user(
    one: Database, way: str
) -> None:
    before = await state_of_next_user(one)
    await WAYS[way](one)
    after = await state_of_next_user(one)
    assert after["pid"] == before["pid"], "the pool replaced its connection: nothing was tested"
    assert {k: v for k, v in after.items() if k != "pid"} == CLEAN


async def test_repos_own_operations_leave_nothing_behind(one: Database) -> None:
    """The reset skipped after repo's own statements has nothing to undo."""
    brands = one.repository(BrandRepository)
    before = await state_of_next_user(one)
    added = await brands.add(Brand("own"))
    await brands.get(added.brand_id)
    await brands.add_many([Brand(f"own {i}") for i in range(3)])
    await brands.add_many((Brand(f"staged {i}") for i in range(3)), returning=True)
    await brands.upsert_many([Brand("own", brand_id=added.brand_id)])
    assert len([b async for b in brands.stream(prefetch=2)]) == 7
    async with CatalogUnitOfWork(one, statement_timeout=5, lock_timeout=1) as uow:
        await uow.brands.update(Brand("renamed", brand_id=added.brand_id))
        async with uow.savepoint():
            await uow.brands.add(Brand("inner"))
    async with one.repository(BrandRepository).cursor() as cursor:
        await cursor.fetch(2)
    after = await state_of_next_user(one)
    assert after["pid"] == before["pid"]
    assert {k: v for k, v in after.items() if k != "pid"} == CLEAN


async def test_what_init_sets_lasts_until_the_first_release_as_with_asyncpg(
    dsn: str, migrated_dsn: str
) -> None:
    async def init(conn: asyncpg.Connection) -> None:
        await conn.execute("SET application_name = 'from init'")

    async with Database.connect(migrated_dsn, min_size=1, max_size=1, init=init) as db:
        async with db.acquire() as conn:
            assert await conn.fetchval("SHOW application_name") == "from init"
        async with db.acquire() as conn:
            assert await conn.fetchval("SHOW application_name") == ""
