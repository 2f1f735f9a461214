"""What observability costs a get by key when nobody listens (no DEBUG, no hook).

    python bench/observe.py [--ops N] [--rounds R]

Two measurements in one process:

- ``call()`` on a fake connection that answers at once (``timeit``): the
  bare per-statement overhead, in nanoseconds, of the observed ``call`` against
  the same function without the observation;
- ``db.repository(BrandRepository).get(key)`` on a scratch database
  (``repo_bench_observe``, migrated to head) on $DATABASE_URL's server (else
  the embedded one), N ops each, in rounds alternating (ABBA) between the
  observed ``call`` and the unobserved one; the median and best round, in
  CPU time of this process (the client's cost, which is what observing adds
  to; on a shared machine the wall clock mostly measures the neighbours).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import timeit
from collections.abc import Sequence
from typing import Any

import asyncpg

import repo._pg as pg
from repo import Database
from repo._dsn import resolve_dsn, with_database
from repo._observe import Observer
from repo.catalog import Brand, BrandRepository
from repo.errors import translate
from repo.migrations import upgrade


async def unobserved_call(
    conn: Any, name: str, sql: str, args: Sequence[Any], obs: Observer | None = None
) -> Any:
    """``call`` as it was before observability."""
    try:
        return await getattr(conn, name)(sql, *args)
    except pg.DRIVER_ERRORS as exc:
        raise translate(exc, closed=pg.gone(conn)) from exc


class FakeConnection:
    async def fetchrow(self, sql: str, *args: Any) -> Any:
        return None


def bare(n: int) -> tuple[float, float]:
    """Nanoseconds per ``call`` (observed, unobserved) on a connection that answers at once."""
    loop = asyncio.new_event_loop()
    conn = FakeConnection()
    obs = Observer(1.0, None, False)
    observed = pg.call

    async def run(fn: Any, o: Any) -> None:
        for _ in range(n):
            await fn(conn, "fetchrow", "SELECT 1", (1,), o)

    best = {"observed": float("inf"), "unobserved": float("inf")}
    for _ in range(9):
        for label, fn in (("observed", observed), ("unobserved", unobserved_call)):
            run_once = lambda: loop.run_until_complete(run(fn, obs))  # noqa: B023, E731
            t = timeit.timeit(run_once, number=1, timer=time.process_time)
            best[label] = min(best[label], t / n * 1e9)
    loop.close()
    return best["observed"], best["unobserved"]


async def scratch_database() -> str:
    server = resolve_dsn()
    conn = await asyncpg.connect(server)
    try:
        name = "repo_bench_observe"
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    dsn = with_database(server, name)
    await asyncio.to_thread(upgrade, dsn, "head")
    return dsn


async def gets(ops: int, rounds: int) -> dict[str, list[float]]:
    """CPU microseconds per get in each round, observed and not (`ops` each, in `rounds`)."""
    observed = pg.call
    dsn = await scratch_database()
    per_round = ops // rounds
    times: dict[str, list[float]] = {"observed": [], "unobserved": []}
    variants = [("observed", observed), ("unobserved", unobserved_call)]
    async with Database.connect(dsn, min_size=1, max_size=1) as db:
        brands = db.repository(BrandRepository)
        brand = await brands.add(Brand(f"observe-bench-{time.time_ns()}"))
        key = brand.brand_id
        try:
            for _ in range(per_round):  # warm-up
                await brands.get(key)
            for i in range(rounds):
                # ABBA order, so that a drift in the machine's load hits both.
                for label, fn in variants if i % 2 == 0 else variants[::-1]:
                    pg.call = fn
                    # CPU time of this process: on a shared machine the wall
                    # clock mostly measures the neighbours.
                    start = time.process_time()
                    for _ in range(per_round):
                        await brands.get(key)
                    times[label].append((time.process_time() - start) / per_round * 1e6)
        finally:
            pg.call = observed
            await brands.delete(key)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=20)
    options = parser.parse_args()
    on, off = bare(200_000)
    print(
        f"call() on a fake connection: {on:.0f} ns observed, {off:.0f} ns not: +{on - off:.0f} ns"
    )
    times = asyncio.run(gets(options.ops, options.rounds))
    on, off = (statistics.median(times[k]) for k in ("observed", "unobserved"))
    best_on, best_off = (min(times[k]) for k in ("observed", "unobserved"))
    print(
        f"get by key (CPU time), {options.ops} ops each in {options.rounds} alternating rounds: "
        f"median {on:.1f} us observed, {off:.1f} us not ({(on - off) / off:+.2%}); "
        f"best {best_on:.1f} us vs {best_off:.1f} us ({(best_on - best_off) / best_off:+.2%})"
    )


if __name__ == "__main__":
    main()
