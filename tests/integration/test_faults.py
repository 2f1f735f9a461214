"""Lost connections: backends killed mid-transaction under load, and timeouts.

A killer terminates the workers' server sessions (``pg_terminate_backend``)
hundreds of times while ten workers commit units of work. Every affected
unit raises `ConnectionLost` (never another error, never a hang), every
unit that committed is found afterwards, and the pool keeps serving.
"""

from __future__ import annotations

import asyncio
import random
import time
import urllib.parse
from typing import Any

import asyncpg
import pytest

from repo import ConnectionLost, Database, LockNotAvailable, PoolTimeout, QueryCanceled
from repo.catalog import Brand, BrandRepository, CatalogUnitOfWork
from tests.conftest import sessions_in_transaction

pytestmark = pytest.mark.reliability

APP = "repo-fault-test"
FIGURES: dict[str, Any] = {}


async def test_killed_backends_raise_connection_lost_and_lose_no_commit(
    dsn: str, conn: asyncpg.Connection
) -> None:
    """Hundreds of pg_terminate_backend under load: only ConnectionLost, no commit lost."""
    started = time.monotonic()
    committed: list[str] = []
    lost = 0
    stop = asyncio.Event()
    kills = 0

    async def worker(w: int, db: Database) -> None:
        nonlocal lost
        n = 0
        while not stop.is_set():
            n += 1
            names = [f"w{w}-{n}-{i}" for i in range(3)]
            try:
                async with asyncio.timeout(10):
                    async with CatalogUnitOfWork(db) as uow:
                        for name in names:
                            await uow.brands.add(Brand(name))
                            await asyncio.sleep(0)
                committed.extend(names)
            except ConnectionLost:
                lost += 1

    async def killer() -> None:
        nonlocal kills
        admin = await asyncpg.connect(dsn)
        try:
            while kills < 300:
                pids = await admin.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = $1 "
                    "AND state <> 'idle'",
                    APP,
                )
                if pids:
                    pid = random.choice(pids)["pid"]
                    if await admin.fetchval("SELECT pg_terminate_backend($1)", pid):
                        kills += 1
                await asyncio.sleep(random.uniform(0, 0.01))
        finally:
            await admin.close()
            stop.set()

    async with Database.connect(
        dsn,
        min_size=2,
        max_size=10,
        acquire_timeout=5,
        server_settings={"application_name": APP},
    ) as db:
        async with asyncio.timeout(90):
            await asyncio.gather(killer(), *(worker(w, db) for w in range(10)))
        units_under_fire = len(committed) // 3
        # Throughput recovers: the same pool serves a burst of units, none failing.
        after = time.monotonic()
        brands = db.repository(BrandRepository)

        async def one(i: int) -> None:
            async with CatalogUnitOfWork(db) as uow:
                await uow.brands.add(Brand(f"after-{i}"))

        await asyncio.gather(*(one(i) for i in range(200)))
        recovery = time.monotonic() - after
        assert await brands.count() == len(committed) + 200
        assert db.pool.get_idle_size() == db.pool.get_size()

    stored = {r[0] for r in await conn.fetch("SELECT brand_name FROM brand")}
    assert set(committed) <= stored  # no committed row lost
    # Units that died are all or nothing: every worker's unit has 0 or 3 rows.
    counts = await conn.fetch(
        "SELECT count(*) AS n FROM brand WHERE brand_name LIKE 'w%' "
        "GROUP BY split_part(brand_name, '-', 1), split_part(brand_name, '-', 2)"
    )
    assert {r["n"] for r in counts} <= {3}
    assert await sessions_in_transaction(dsn) == 0
    assert kills == 300
    assert lost > 0
    FIGURES.update(
        kills=kills,
        units_lost=lost,
        units_committed=units_under_fire,
        recovery_units_per_second=round(200 / recovery),
        seconds=round(time.monotonic() - started, 1),
    )
    print("\nfault figures:", FIGURES)


async def test_a_killed_idle_connection_is_replaced(db: Database, conn: asyncpg.Connection) -> None:
    """A pooled connection killed while idle is noticed and replaced: the next call works."""
    brands = db.repository(BrandRepository)
    await brands.add(Brand("before"))
    await conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    await asyncio.sleep(0.1)
    await brands.add(Brand("after"))
    assert await brands.count() == 2


async def test_a_kill_inside_a_unit_raises_connection_lost_and_commits_nothing(
    db: Database, conn: asyncpg.Connection
) -> None:
    """The unit's next statement raises ConnectionLost; nothing of the unit is committed."""
    with pytest.raises(ConnectionLost, match="lost"):
        async with CatalogUnitOfWork(db) as uow:
            await uow.brands.add(Brand("doomed"))
            pid = await uow.connection.fetchval("SELECT pg_backend_pid()")
            await conn.execute("SELECT pg_terminate_backend($1)", pid)
            await uow.brands.add(Brand("never"))
    assert await conn.fetchval("SELECT count(*) FROM brand") == 0
    assert await db.repository(BrandRepository).count() == 0


async def test_an_unreachable_server_fails_fast_with_connection_lost() -> None:
    """Connecting to a port nobody listens on raises ConnectionLost at once, naming the host."""
    started = time.monotonic()
    with pytest.raises(ConnectionLost, match=r"127\.0\.0\.1:1"):
        await Database.connect("postgresql://u@127.0.0.1:1/x", connect_timeout=2)
    assert time.monotonic() - started < 2


async def test_statement_timeout_raises_query_canceled_and_the_unit_can_go_on(
    db: Database,
) -> None:
    """Past statement_timeout a statement raises QueryCanceled; a savepoint keeps the unit."""
    brands = db.repository(BrandRepository)
    async with CatalogUnitOfWork(db, statement_timeout=0.2) as uow:
        assert await uow.brands.scalar("SHOW statement_timeout") == "200ms"
        with pytest.raises(QueryCanceled, match="statement_timeout"):
            async with uow.savepoint():
                await uow.brands.execute("SELECT pg_sleep(5)")
        await uow.brands.add(Brand("still usable"))
    assert await brands.count() == 1
    # SET LOCAL ended with the transaction: the pooled connection is back to normal.
    async with db.acquire() as raw:
        assert await raw.fetchval("SHOW statement_timeout") == "0"


async def test_lock_timeout_raises_lock_not_available(db: Database) -> None:
    """A row lock held elsewhere past lock_timeout raises LockNotAvailable; the pool is fine."""
    brands = db.repository(BrandRepository)
    acme = await brands.add(Brand("acme"))
    async with CatalogUnitOfWork(db) as holder:
        await holder.brands.update(Brand("held", acme.brand_id))
        with pytest.raises(LockNotAvailable, match="lock_timeout"):
            async with CatalogUnitOfWork(db, lock_timeout=0.1) as uow:
                await uow.brands.update(Brand("blocked", acme.brand_id))
    assert (await brands.get(acme.brand_id)).brand_name == "held"
    assert db.pool.get_idle_size() == db.pool.get_size()


class Outage:
    """A TCP forwarder in front of the server that can cut the network, then mend it.

    `cut()` aborts every forwarded connection (both ends, as a broken
    network would) and stops listening, so new connections are refused;
    `mend()` listens again on the same port. The server itself keeps running.
    """

    def __init__(self, dsn: str) -> None:
        parts = urllib.parse.urlsplit(dsn)
        socket_dir = urllib.parse.parse_qs(parts.query).get("host", [""])[0]
        self._unix = socket_dir or (parts.hostname or "").startswith("/")
        self._target = (
            f"{socket_dir or parts.hostname}/.s.PGSQL.{parts.port or 5432}"
            if self._unix
            else (parts.hostname or "127.0.0.1", parts.port or 5432)
        )
        user = parts.username or "postgres"
        password = f":{parts.password}" if parts.password else ""
        self._dsn = (user, password, parts.path)
        self._links: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def dsn(self) -> str:
        user, password, path = self._dsn
        return f"postgresql://{user}{password}@127.0.0.1:{self.port}{path}?sslmode=disable"

    async def _upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if isinstance(self._target, str):
            return await asyncio.open_unix_connection(self._target)
        return await asyncio.open_connection(*self._target)

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await self._upstream()
        except OSError:
            writer.transport.abort()
            return
        self._links.update((writer, up_writer))

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.transport.abort()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        self._links.difference_update((writer, up_writer))

    async def mend(self) -> None:
        self._server = await asyncio.start_server(self._link, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for link in list(self._links):
            link.transport.abort()
        self._links.clear()


async def test_a_network_outage_fails_fast_and_the_same_pool_recovers(
    dsn: str, conn: asyncpg.Connection
) -> None:
    """Cut the network under load: fast ConnectionLost or PoolTimeout, then the pool carries on."""
    outage = Outage(dsn)
    await outage.mend()
    committed: list[str] = []
    failures: list[tuple[str, float]] = []  # (error class, seconds it took)
    stop = asyncio.Event()

    async def worker(w: int, db: Database) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            names = [f"o{w}-{n}-{i}" for i in range(2)]
            began = time.monotonic()
            try:
                async with asyncio.timeout(10):
                    async with CatalogUnitOfWork(db) as uow:
                        for name in names:
                            await uow.brands.add(Brand(name))
                committed.extend(names)
            except (ConnectionLost, PoolTimeout) as exc:
                failures.append((type(exc).__name__, time.monotonic() - began))
                await asyncio.sleep(0.01)

    try:
        async with Database.connect(
            outage.dsn, min_size=2, max_size=5, acquire_timeout=1, connect_timeout=1
        ) as db:
            workers = [asyncio.create_task(worker(w, db)) for w in range(5)]
            await asyncio.sleep(0.3)
            before = len(committed)
            await outage.cut()
            await asyncio.sleep(1.0)
            during = len(committed)
            await outage.mend()
            await asyncio.sleep(0.5)
            stop.set()
            await asyncio.gather(*workers)
            after = len(committed)

            async def one(i: int) -> None:
                async with CatalogUnitOfWork(db) as uow:
                    await uow.brands.add(Brand(f"mended-{i}"))

            await asyncio.gather(*(one(i) for i in range(50)))
            assert db.pool.get_idle_size() == db.pool.get_size()
    finally:
        await outage.cut()

    assert before > 0
    assert during == before or during - before <= 10  # at most the units mid-COMMIT
    assert after > during  # the workers carried on once the network was back
    assert failures
    # OutcomeUnknown: a unit whose COMMIT was in flight when the network broke.
    assert {name for name, _ in failures} <= {"ConnectionLost", "OutcomeUnknown", "PoolTimeout"}
    assert max(seconds for _, seconds in failures) < 2.5  # fast: no hang
    stored = {r[0] for r in await conn.fetch("SELECT brand_name FROM brand")}
    assert set(committed) <= stored
    assert {f"mended-{i}" for i in range(50)} <= stored
    assert await sessions_in_transaction(dsn) == 0
    slowest = round(max(s for _, s in failures), 2)
    kinds = sorted({name for name, _ in failures})
    print(f"\noutage figures: {len(failures)} failures ({', '.join(kinds)}), slowest {slowest}s")


async def test_closing_the_database_waits_for_a_unit_still_running(dsn: str) -> None:
    """close() while a unit runs: the unit commits, gives its connection back, close ends."""
    db = await Database.connect(dsn, min_size=1, max_size=2)
    entered = asyncio.Event()
    go_on = asyncio.Event()

    async def unit() -> None:
        async with CatalogUnitOfWork(db) as uow:
            entered.set()
            await go_on.wait()
            await uow.brands.add(Brand("finished during close"))

    task = asyncio.create_task(unit())
    await entered.wait()
    closing = asyncio.create_task(db.close())
    await asyncio.sleep(0.05)
    go_on.set()
    async with asyncio.timeout(10):
        await task
        await closing
    assert await sessions_in_transaction(dsn) == 0
    other = await asyncpg.connect(dsn)
    try:
        assert await other.fetchval("SELECT count(*) FROM brand") == 1
    finally:
        await other.close()
