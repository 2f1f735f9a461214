"""What observability costs a get by key: the same `Database`, configured four ways.

    python -m bench.observe [--ops N] [--rounds R] [--rows N] [--database NAME]

Nothing is patched: each configuration is a `Database` made the way a user
would make it, all four open side by side on the bench's product table
(seeded by the bench into ``repo_bench_observe`` on $DATABASE_URL's server,
else the embedded one):

- ``default``: ``Database.connect()`` as is: nobody listens, only statements
  slower than ``slow_statement`` (1 s) would be logged;
- ``no slow log``: ``slow_statement=None``, the floor;
- ``hook``: ``on_event=`` a hook that counts the events it receives;
- ``debug``: the default Database, with the ``repo.sql`` logger at DEBUG and
  a handler formatting every record (to a throw-away stream). The logger is
  the process's, so it is switched on for this configuration's turns only.

Each configuration runs a get by key at pool level (a connection acquired
per get) and on a held connection (a unit of work), `--ops` each, in rounds
whose order rotates (so that a drift in the machine's load hits all of them).
Reported: the median per get of each configuration's rounds in CPU time of
this process (the client's cost, which is what observing adds to; on a shared
machine the wall clock mostly measures the neighbours), and its cost over
the default's.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from repo import Database, StatementEvent
from repo._postgres.dsn import resolve_dsn

from ._model import BenchProductRepository, BenchUnit
from .run import seed

__all__ = ["CONFIGURATIONS", "main", "measure"]

CONFIGURATIONS = ("default", "no slow log", "hook", "debug")
SQL_LOGGER = logging.getLogger("repo.sql")


class Counter:
    """An event hook that counts what it receives."""

    def __init__(self) -> None:
        self.statements = 0
        self.other = 0

    def __call__(self, event: Any) -> None:
        if isinstance(event, StatementEvent):
            self.statements += 1
        else:
            self.other += 1


def connect(dsn: str, configuration: str, hook: Counter) -> Database:
    if configuration == "no slow log":
        return Database.connect(dsn, min_size=1, max_size=1, slow_statement=None)
    if configuration == "hook":
        return Database.connect(dsn, min_size=1, max_size=1, on_event=hook)
    return Database.connect(dsn, min_size=1, max_size=1)


@contextmanager
def sql_logging(on: bool) -> Iterator[io.StringIO]:
    """The ``repo.sql`` logger at DEBUG with a formatting handler while `on`, else as it was."""
    stream = io.StringIO()
    if not on:
        yield stream
        return
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    level, propagate = SQL_LOGGER.level, SQL_LOGGER.propagate
    SQL_LOGGER.addHandler(handler)
    SQL_LOGGER.setLevel(logging.DEBUG)
    SQL_LOGGER.propagate = False
    try:
        yield stream
    finally:
        SQL_LOGGER.removeHandler(handler)
        SQL_LOGGER.setLevel(level)
        SQL_LOGGER.propagate = propagate


async def cpu_per_op(ops: int, work: Callable[[], Awaitable[object]]) -> float:
    """CPU microseconds per call of `work`, over `ops` calls."""
    start = time.process_time()
    for _ in range(ops):
        await work()
    return (time.process_time() - start) / ops * 1e6


async def measure(dsn: str, ops: int, rounds: int, keys: int) -> dict[str, dict[str, list[float]]]:
    """µs of CPU per get, per way of getting, per configuration, one figure per round."""
    hook = Counter()
    dbs = {c: await connect(dsn, c, hook) for c in CONFIGURATIONS}
    times: dict[str, dict[str, list[float]]] = {"pool": {}, "held": {}}
    rng = random.Random(0)
    try:
        for r in range(rounds + 1):  # round 0 warms up, untimed
            order = CONFIGURATIONS[r % len(CONFIGURATIONS) :] + CONFIGURATIONS[: r % 4]
            for configuration in order:
                db = dbs[configuration]
                products = db.repository(BenchProductRepository)

                async def pool_get(p: Any = products) -> None:
                    await p.get(rng.randint(1, keys))

                with sql_logging(configuration == "debug") as stream:
                    pool = await cpu_per_op(ops, pool_get)
                    async with BenchUnit(db, readonly=True) as uow:

                        async def held_get(p: Any = uow.products) -> None:
                            await p.get(rng.randint(1, keys))

                        held = await cpu_per_op(ops, held_get)
                if configuration == "debug" and not stream.getvalue():
                    msg = "DEBUG logging was on, yet nothing was logged on repo.sql"
                    raise RuntimeError(msg)
                if r:
                    times["pool"].setdefault(configuration, []).append(pool)
                    times["held"].setdefault(configuration, []).append(held)
        if hook.statements < 2 * ops * (rounds + 1):
            msg = f"the hook saw {hook.statements} statements, fewer than the gets it was sent"
            raise RuntimeError(msg)
    finally:
        for db in dbs.values():
            await db.close()
    return times


def table(times: dict[str, dict[str, list[float]]]) -> list[str]:
    lines = [
        "| configuration | pool-level get (CPU µs) | vs default | held-connection get "
        "(CPU µs) | vs default |",
        "|---|---|---|---|---|",
    ]
    base = {way: statistics.median(times[way]["default"]) for way in times}
    for c in CONFIGURATIONS:
        cells = []
        for way in ("pool", "held"):
            m = statistics.median(times[way][c])
            cells += [f"{m:.1f}", f"{(m - base[way]) / base[way]:+.1%}"]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.observe")
    parser.add_argument("--ops", type=int, default=2_000, help="gets per round and way")
    parser.add_argument("--rounds", type=int, default=12, help="rounds; medians reported")
    parser.add_argument("--rows", type=int, default=10_000, help="rows in the table")
    parser.add_argument("--database", default="repo_bench_observe")
    options = parser.parse_args(argv)

    async def run() -> dict[str, dict[str, list[float]]]:
        dsn = await seed(resolve_dsn(), options.database, options.rows)
        return await measure(dsn, options.ops, options.rounds, options.rows)

    times = asyncio.run(run())
    print(
        f"get by key, {options.ops} ops per round and way, {options.rounds} rounds "
        "in rotating order, medians of CPU time per get:"
    )
    print("\n".join(table(times)))


if __name__ == "__main__":
    main()
