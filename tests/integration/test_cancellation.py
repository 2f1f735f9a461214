"""Cancellation at every await point: no leaked connection, no open transaction, no half unit.

The awaits are instrumented, not raced: every driver call (and the pool
acquire) a unit of work makes is numbered, and run N cancels the task at
the N-th, either just before the call is sent ("before") or while the
server is running it ("during"). N sweeps every await point of a
representative body, many times over.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import asyncpg
import pytest

from repo import Database, PoolOptions, UniqueViolation, like
from repo._postgres.pool import Pool
from repo.catalog import Brand, BrandRepository, CatalogUnitOfWork
from tests.conftest import sessions_in_transaction

pytestmark = pytest.mark.reliability

DRIVER_CALLS = frozenset({"execute", "fetch", "fetchrow", "fetchval", "copy_records_to_table"})

# Figures of the last run, for docs/guarantees.md (printed with -s).
FIGURES: dict[str, Any] = {}


class Tripwire:
    """Counts await points; cancels the current task at the `at`-th one."""

    def __init__(self) -> None:
        self.at = 0
        self.seen = 0
        self.mode = "before"
        self.fired = False
        self.target: asyncio.Task[None] | None = None

    def arm(self, at: int, mode: str) -> None:
        self.at, self.seen, self.mode, self.fired = at, 0, mode, False

    async def point(self) -> None:
        self.seen += 1
        if self.seen != self.at or self.target is None:
            return
        self.fired = True
        self.target.cancel()
        if asyncio.current_task() is not self.target:
            # A shielded cleanup runs in a task of its own: cancelling the
            # body's task there is what a real cancellation would do.
            return
        if self.mode == "before":
            await asyncio.sleep(0)  # the CancelledError lands here, nothing sent
        # "during": it lands at the driver call's first await, once the
        # command is on the wire.


class WiredCursor:
    def __init__(self, cursor: Any, wire: Tripwire) -> None:
        self._cursor = cursor
        self._wire = wire

    async def fetch(self, n: int) -> Any:
        await self._wire.point()
        return await self._cursor.fetch(n)


class WiredConnection:
    """A pooled connection whose every driver call is an instrumented await point."""

    def __init__(self, conn: Any, wire: Tripwire) -> None:
        self.raw = conn
        self._wire = wire

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.raw, name)
        if name not in DRIVER_CALLS:
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            await self._wire.point()
            return await attr(*args, **kwargs)

        return call

    def cursor(self, sql: str, *args: Any) -> Awaitable[WiredCursor]:
        async def open_() -> WiredCursor:
            await self._wire.point()
            return WiredCursor(await self.raw.cursor(sql, *args), self._wire)

        return open_()


class WiredPool(Pool):
    """The pool of a `WiredDatabase`: acquiring is an await point, connections instrumented."""

    wire: Tripwire

    async def take(self) -> Any:
        await self.wire.point()
        return WiredConnection(await super().take(), self.wire)

    async def give_back(self, conn: Any, *, discard: bool = False) -> None:
        raw = conn.raw if isinstance(conn, WiredConnection) else conn
        await super().give_back(raw, discard=discard)


class WiredDatabase(Database):
    """A `Database` lending instrumented connections; acquiring is an await point too."""

    def __init__(self, dsn: str | None, options: PoolOptions) -> None:
        super().__init__(dsn, options)
        self._connections = WiredPool(
            None,
            max_size=options.max_size,
            acquire_timeout=float(options.acquire_timeout),
            obs=self.observer,
            where=self.dsn,
        )

    @property
    def wire(self) -> Tripwire:
        return self._wired.wire

    @wire.setter
    def wire(self, wire: Tripwire) -> None:
        self._wired.wire = wire

    @property
    def _wired(self) -> WiredPool:
        pool = self._connections
        if not isinstance(pool, WiredPool):  # pragma: no cover - made in __init__
            raise TypeError(pool)
        return pool


async def unit_body(db: Database, tag: str) -> None:
    """Every kind of await a unit of work has: begin, writes, savepoints, a stream, COPY, commit."""
    async with CatalogUnitOfWork(db) as uow:
        first = await uow.brands.add(Brand(f"{tag}-a"))
        async with uow.savepoint():
            await uow.brands.add(Brand(f"{tag}-b"))
        try:
            async with uow.savepoint():
                await uow.brands.add(Brand(f"{tag}-b"))  # duplicate: rolled back to
        except UniqueViolation:
            pass
        await uow.brands.update(Brand(f"{tag}-a2", first.brand_id))
        seen = [b async for b in uow.brands.stream(brand_name=like(f"{tag}-%"), prefetch=1)]
        assert len(seen) == 2
        await uow.brands.add_many([Brand(f"{tag}-c{i}") for i in range(3)])


UNIT_ROWS = 5  # a2, b, c0, c1, c2


async def pool_body(db: Database, tag: str) -> None:
    """Outside a unit: a pool-level stream and a pool-level COPY, each with its own connection."""
    brands = db.repository(BrandRepository)
    await brands.add_many([Brand(f"{tag}-p{i}") for i in range(2)])
    async for _ in brands.stream(brand_name=like(f"{tag}-%"), prefetch=1):
        pass


POOL_ROWS = 2


async def sweep(
    db: WiredDatabase,
    body: Callable[[Database, str], Coroutine[Any, Any, None]],
    prefix: str,
    rounds: int,
) -> tuple[int, dict[str, int]]:
    """Run `body` cancelled at each of its await points in both modes, `rounds` times over."""
    db.wire.arm(0, "before")
    db.wire.target = None
    await body(db, f"{prefix}-probe-all-0")
    points = db.wire.seen
    runs = 0
    outcomes: dict[str, int] = {}
    for r in range(rounds):
        for mode in ("before", "during"):
            for at in range(1, points + 1):
                db.wire.arm(at, mode)
                task = asyncio.create_task(body(db, f"{prefix}-{r}-{mode}-{at}"))
                db.wire.target = task
                done, _ = await asyncio.wait({task}, timeout=10)
                assert done, f"hung when cancelled at await {at} ({mode})"
                assert db.wire.fired
                exc = task.exception() if not task.cancelled() else None
                if exc is not None:
                    raise AssertionError(f"await {at} ({mode}) raised {exc!r}") from exc
                outcome = "cancelled" if task.cancelled() else "completed"
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
                # A cleanup cancelled from outside finishes in its shield,
                # after the task: give it a moment, never forever.
                for _ in range(200):
                    if db.pool.get_idle_size() == db.pool.get_size():
                        break
                    await asyncio.sleep(0.005)
                assert db.pool.get_idle_size() == db.pool.get_size(), f"leak at {at} ({mode})"
                runs += 1
    return runs, outcomes


async def partial_units(conn: asyncpg.Connection, prefix: str, full: int) -> list[str]:
    rows = await conn.fetch(
        "SELECT split_part(brand_name, '-', 1) || '-' || split_part(brand_name, '-', 2) || '-' "
        "|| split_part(brand_name, '-', 3) || '-' || split_part(brand_name, '-', 4) AS unit, "
        "count(*) AS n FROM brand WHERE brand_name LIKE $1 GROUP BY 1",
        f"{prefix}-%",
    )
    return [f"{r['unit']}: {r['n']} rows" for r in rows if r["n"] != full]


async def test_cancelling_at_every_await_leaks_nothing(dsn: str, conn: asyncpg.Connection) -> None:
    """Thousands of cancellations, one per await point: pool, server and data stay clean."""
    started = time.monotonic()
    db = WiredDatabase.connect(dsn, min_size=2, max_size=4, acquire_timeout=5)
    db.wire = Tripwire()
    async with db:
        unit_runs, unit_outcomes = await sweep(db, unit_body, "u", rounds=45)
        pool_runs, pool_outcomes = await sweep(db, pool_body, "p", rounds=45)
        assert db.pool.get_idle_size() == db.pool.get_size()
        async with db.acquire() as raw:
            assert not raw.is_in_transaction()
    # Every cancellation reached the task: none was swallowed by a cleanup.
    assert unit_outcomes == {"cancelled": unit_runs}
    assert pool_outcomes == {"cancelled": pool_runs}
    assert await sessions_in_transaction(dsn) == 0
    assert await partial_units(conn, "u", UNIT_ROWS) == []
    loads = await conn.fetch(
        "SELECT count(*) AS n FROM brand WHERE brand_name LIKE 'p-%-p%' "
        "GROUP BY split_part(brand_name, '-', 1), split_part(brand_name, '-', 2), "
        "split_part(brand_name, '-', 3), split_part(brand_name, '-', 4)"
    )
    assert {r["n"] for r in loads} <= {POOL_ROWS}  # each COPY all or nothing
    FIGURES.update(
        runs=unit_runs + pool_runs,
        unit_runs=unit_runs,
        pool_runs=pool_runs,
        unit_outcomes=unit_outcomes,
        pool_outcomes=pool_outcomes,
        seconds=round(time.monotonic() - started, 1),
    )
    print("\ncancellation figures:", FIGURES)


async def test_cancelling_units_waiting_for_a_full_pool_leaks_nothing(dsn: str) -> None:
    """Units queued on an exhausted pool, cancelled while waiting: the pool stays whole."""
    async with Database.connect(dsn, min_size=1, max_size=2, acquire_timeout=5) as db:
        release = asyncio.Event()
        full = asyncio.Event()
        inside = 0

        async def holder() -> None:
            nonlocal inside
            async with CatalogUnitOfWork(db) as uow:
                await uow.brands.add(Brand(f"held-{id(uow)}"))
                inside += 1
                if inside == 2:
                    full.set()
                await release.wait()

        holders = [asyncio.create_task(holder()) for _ in range(2)]
        await full.wait()
        waiters = [asyncio.create_task(holder()) for _ in range(20)]
        await asyncio.sleep(0.05)
        for task in waiters[::2]:
            task.cancel()
        await asyncio.sleep(0.05)
        release.set()
        results = await asyncio.gather(*holders, *waiters, return_exceptions=True)
        cancelled = [r for r in results if isinstance(r, asyncio.CancelledError)]
        failed = [r for r in results if r is not None and r not in cancelled]
        assert (len(cancelled), failed) == (10, [])
        assert db.pool.get_idle_size() == db.pool.get_size()
        assert await db.repository(BrandRepository).count() == 12
    assert await sessions_in_transaction(dsn) == 0
