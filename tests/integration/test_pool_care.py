"""The pool after storms: no asyncio noise from connections repo gives up, and back to min_size.

A storm is many tasks at once wanting more connections than the pool has,
cancelled at random moments (while waiting in acquire, while a connection
is being opened for them, while their statement runs), while an admin
connection kills the pool's backends. asyncio must log nothing about any of
it (no "Future exception was never retrieved", no "socket.send() raised
exception"), and the pool must come back to `min_size` usable connections.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from repo import Database, RepoError
from repo.catalog import Brand, BrandRepository, CatalogUnitOfWork

pytestmark = pytest.mark.reliability

APP = "repo-pool-care-test"
FIGURES: dict[str, Any] = {}


class Noise(logging.Handler):
    """Every record the asyncio logger emits, and every context its loop's handler gets."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(f"asyncio log: {record.getMessage()}")

    def context(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.seen.append(f"loop: {context.get('message')} {context.get('exception')!r}")


@pytest.fixture
async def noise() -> AsyncIterator[Noise]:
    """What asyncio reports while the test runs (its logger, and the loop's handler)."""
    heard = Noise()
    logger = logging.getLogger("asyncio")
    logger.addHandler(heard)
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(heard.context)
    try:
        yield heard
    finally:
        loop.set_exception_handler(previous)
        logger.removeHandler(heard)


async def use(db: Database, n: int) -> None:
    """What a request does: a unit of work with a write and a statement that takes a while."""
    try:
        async with CatalogUnitOfWork(db) as uow:
            await uow.brands.add(Brand(f"storm-{n}-{random.random()}"))
            await uow.brands.execute("SELECT pg_sleep(0.005)")
    except RepoError:
        pass  # killed under it: ConnectionLost, as test_faults.py shows


async def kill_all(admin: asyncpg.Connection) -> set[int]:
    """Terminate every backend of the pool; their pids."""
    rows = await admin.fetch(
        "SELECT pid, pg_terminate_backend(pid) AS killed FROM pg_stat_activity "
        "WHERE application_name = $1",
        APP,
    )
    return {r["pid"] for r in rows if r["killed"]}


async def backends(admin: asyncpg.Connection) -> set[int]:
    rows = await admin.fetch("SELECT pid FROM pg_stat_activity WHERE application_name = $1", APP)
    return {r["pid"] for r in rows}


async def storm(db: Database, admin: asyncpg.Connection, rounds: int) -> dict[str, int]:
    """`rounds` times: 60 tasks on a pool of 8, backends killed, every task cancelled."""
    cancelled = kills = 0
    for r in range(rounds):
        tasks = [asyncio.create_task(use(db, r * 100 + i)) for i in range(60)]
        await asyncio.sleep(random.uniform(0.002, 0.03))
        if r % 2:
            kills += len(await kill_all(admin))
        for task in tasks:
            cancelled += task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {"tasks_cancelled": cancelled, "backends_killed": kills}


async def settle(noise: Noise) -> None:
    """Let abandoned connects and cancel requests finish, and unreferenced futures go."""
    for _ in range(3):
        await asyncio.sleep(0.2)
        gc.collect()
    await asyncio.sleep(0)


async def test_storms_leave_no_asyncio_noise(
    dsn: str, conn: asyncpg.Connection, noise: Noise
) -> None:
    """Cancellation storms and killed backends: asyncio logs nothing about repo's connections."""
    started = time.monotonic()
    async with Database.connect(
        dsn, min_size=2, max_size=8, acquire_timeout=5, server_settings={"application_name": APP}
    ) as db:
        figures = await storm(db, conn, rounds=30)
        await settle(noise)
        assert await db.repository(BrandRepository).count() >= 0
    await settle(noise)
    assert noise.seen == []
    FIGURES.update(noise=figures, noise_seconds=round(time.monotonic() - started, 1))
    print("\npool care figures:", FIGURES)


async def test_the_pool_refills_to_min_size_after_a_storm(
    dsn: str, conn: asyncpg.Connection, noise: Noise
) -> None:
    """After a storm of cancelled acquires and a final kill of every backend, the pool opens
    connections again by itself up to min_size, and each of them works."""
    async with Database.connect(
        dsn, min_size=4, max_size=8, acquire_timeout=5, server_settings={"application_name": APP}
    ) as db:
        await storm(db, conn, rounds=10)
        killed = await kill_all(conn)
        started = time.monotonic()
        async with asyncio.timeout(10):
            # Until the pool holds min_size connections again, none of them killed.
            # A backend shows in pg_stat_activity before its connection has
            # finished its setup (codecs, init) and counts in the pool: wait
            # for both, or a loaded machine sees the gap.
            while True:
                alive = await backends(conn)
                if (
                    len(alive) == db.min_size
                    and not alive & killed
                    and db.pool.get_size() == db.min_size
                ):
                    break
                await asyncio.sleep(0.01)
        refill = time.monotonic() - started
        # Every one of them usable: held all at once, each answers.
        held = [await db.pool.acquire() for _ in range(db.min_size)]
        try:
            pids = {await c.fetchval("SELECT pg_backend_pid()") for c in held}
        finally:
            for c in held:
                await db.pool.release(c)
        assert len(pids) == db.min_size
        assert db.pool.get_size() == db.min_size
    await settle(noise)
    assert noise.seen == []
    FIGURES.update(refill_seconds=round(refill, 2))
    print("\npool care figures:", FIGURES)
