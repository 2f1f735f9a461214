"""Read replicas, on a real primary and a hot standby made with ``pg_basebackup -R``.

The servers are this module's own (tests/servers.py), on loopback ports, run
as an unprivileged user and stopped by PID. The test that stops the standby
starts it again at its end.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import asyncpg
import pytest

from repo import Database, NotFound, ReadOnlyViolation
from repo.catalog import Brand, BrandRepository, CatalogUnitOfWork
from repo.migrations import upgrade
from tests.servers import Postgres, missing_binaries, start_postgres, start_standby, throwaway_dir

pytestmark = pytest.mark.skipif(missing_binaries() is not None, reason=missing_binaries() or "")


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Postgres, Postgres]]:
    """A throwaway primary with a migrated ``test`` database, and its hot standby."""
    with throwaway_dir() as base:
        primary = start_postgres(base / "primary")
        try:
            asyncio.run(_execute(primary.dsn(), "CREATE DATABASE test"))
            upgrade(primary.dsn("test"), "head")
            standby = start_standby(primary, base / "standby")
            try:
                yield primary, standby
            finally:
                standby.stop()
        finally:
            primary.stop()


async def _execute(dsn: str, statement: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Wait (up to 10s) until `check()` is true."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    msg = "not true within 10s"
    raise AssertionError(msg)


@pytest.fixture
async def db(servers: tuple[Postgres, Postgres]) -> AsyncIterator[Database]:
    """A Database on the primary with the standby as its replica; brands emptied."""
    primary, standby = servers
    await _execute(primary.dsn("test"), "TRUNCATE brand RESTART IDENTITY CASCADE")
    async with Database.connect(
        primary.dsn("test"),
        replicas=[standby.dsn("test")],
        max_replica_lag=30,
        replica_check_interval=0.1,
    ) as database:
        await _eventually(lambda: _standby_count(standby, 0))
        # The TRUNCATE above reaches the standby after the check at open(): a
        # standby behind the primary counts its lag as the age of its last
        # replayed transaction, so it may be skipped until the next check.
        await _eventually(lambda: _serving(database))
        yield database


async def _serving(db: Database) -> bool:
    """Whether the Database has a replica it currently reads from."""
    replicas = db._replicas
    return replicas is not None and bool(replicas.healthy())


async def _standby_count(standby: Postgres, expected: int) -> bool:
    conn = await asyncpg.connect(standby.dsn("test"))
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM brand")
    finally:
        await conn.close()
    return count == expected


async def _in_recovery(db: Database, *, readonly: bool) -> bool:
    async with CatalogUnitOfWork(db, readonly=readonly) as uow:
        result: bool = await uow.connection.fetchval("SELECT pg_is_in_recovery()")
    return result


async def test_read_only_units_go_to_the_standby_and_writes_to_the_primary(db: Database) -> None:
    """A read-only unit runs on the standby; a read-write unit on the primary."""
    assert await _in_recovery(db, readonly=True) is True
    assert await _in_recovery(db, readonly=False) is False


async def test_a_write_reaches_the_standby_and_its_reads(
    db: Database, servers: tuple[Postgres, Postgres]
) -> None:
    """A write goes to the primary and, once replicated, a read-only unit sees it there."""
    async with CatalogUnitOfWork(db) as uow:
        added = await uow.brands.add(Brand("replicated"))

    async def seen_on_standby() -> bool:
        async with CatalogUnitOfWork(db, readonly=True) as uow:
            on_standby = await uow.connection.fetchval("SELECT pg_is_in_recovery()")
            found = await uow.brands.named("replicated")
        return bool(on_standby) and found == added

    await _eventually(seen_on_standby)


async def test_pool_reads_go_to_the_standby_and_a_writer_reads_its_writes(
    db: Database, servers: tuple[Postgres, Postgres]
) -> None:
    """Pool-level reads use the standby; the repository that wrote reads the primary."""
    _, standby = servers
    await _execute(standby.dsn("test"), "SELECT pg_wal_replay_pause()")
    try:
        writer = db.repository(BrandRepository)
        added = await writer.add(Brand("not yet replayed"))
        assert added.brand_id is not None
        assert await writer.get(added.brand_id) == added
        reader = db.repository(BrandRepository)
        with pytest.raises(NotFound):
            await reader.get(added.brand_id)
        assert await reader.count() == 0
        assert await reader.stream().to_list() == []
    finally:
        await _execute(standby.dsn("test"), "SELECT pg_wal_replay_resume()")
    await _eventually(lambda: reader.exists(brand_name="not yet replayed"))


async def test_coalesced_gets_go_where_each_callers_reads_go(
    db: Database, servers: tuple[Postgres, Postgres]
) -> None:
    """Gets pending together are batched by route: a writer's on the primary, others' on the
    standby, each caller answered as its own get would have been."""
    _, standby = servers
    await _execute(standby.dsn("test"), "SELECT pg_wal_replay_pause()")
    try:
        writer = db.repository(BrandRepository)
        added = [await writer.add(Brand(f"unreplayed {i}")) for i in range(3)]
        keys = [b.brand_id for b in added]
        reader = db.repository(BrandRepository)
        got = await asyncio.gather(
            *(writer.get(k) for k in keys),
            *(reader.get(k) for k in keys),
            reader.find_one(brand_id=keys[0]),
            writer.get_many(keys),
            return_exceptions=True,
        )
        assert got[:3] == added
        assert all(isinstance(g, NotFound) for g in got[3:6]), got
        assert got[6] is None
        assert got[7] == added
    finally:
        await _execute(standby.dsn("test"), "SELECT pg_wal_replay_resume()")


async def test_a_lagging_standby_is_skipped_until_it_catches_up(
    servers: tuple[Postgres, Postgres],
) -> None:
    """Past max_replica_lag the reads go to the primary; caught up, back to the standby."""
    primary, standby = servers
    await _execute(primary.dsn("test"), "TRUNCATE brand RESTART IDENTITY CASCADE")
    async with Database.connect(
        primary.dsn("test"),
        replicas=[standby.dsn("test")],
        max_replica_lag=0.5,
        replica_check_interval=0.1,
    ) as db:
        await _eventually(lambda: _in_recovery(db, readonly=True))
        await _execute(standby.dsn("test"), "SELECT pg_wal_replay_pause()")
        try:
            await db.repository(BrandRepository).add(Brand("while paused"))
            await asyncio.sleep(1.0)
            await _eventually(lambda: _primary_serves(db))
            reader = db.repository(BrandRepository)
            assert await reader.find_one(brand_name="while paused") is not None
        finally:
            await _execute(standby.dsn("test"), "SELECT pg_wal_replay_resume()")
        await _eventually(lambda: _in_recovery(db, readonly=True))


async def _primary_serves(db: Database) -> bool:
    return not await _in_recovery(db, readonly=True)


async def test_a_write_in_a_read_only_unit_says_what_to_do(db: Database) -> None:
    """A write in a read-only unit (on the standby) raises ReadOnlyViolation with advice."""
    with pytest.raises(ReadOnlyViolation, match="without readonly=True") as caught:
        async with CatalogUnitOfWork(db, readonly=True) as uow:
            await uow.brands.add(Brand("refused"))
    assert caught.value.sqlstate == "25006"


async def test_a_stopped_standby_makes_reads_fall_back_to_the_primary(
    db: Database, servers: tuple[Postgres, Postgres]
) -> None:
    """With the standby stopped, reads are served by the primary, with no error to the caller."""
    _, standby = servers
    await db.repository(BrandRepository).add(Brand("kept"))
    await _eventually(lambda: _standby_count(standby, 1))
    reader = db.repository(BrandRepository)
    assert await reader.count() == 1
    standby.stop()
    try:
        for _ in range(20):
            assert await reader.count() == 1
            assert [b.brand_name for b in await reader.stream().to_list()] == ["kept"]
            async with CatalogUnitOfWork(db, readonly=True) as uow:
                assert await uow.connection.fetchval("SELECT pg_is_in_recovery()") is False
                assert (await uow.brands.named("kept")) is not None
    finally:
        standby.start()
    await _eventually(lambda: _in_recovery(db, readonly=True))
