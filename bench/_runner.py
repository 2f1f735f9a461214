"""One round of a workload on every system: the timing, the turns, the checks, the failures."""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import random
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import attrs

from . import _pgbench
from ._report import Report
from ._sizes import SLICES, Sizes, chunks, cut, stream_limit, turn, whole_share
from ._systems import PGBENCH, System

__all__ = ["Runner", "cut_off", "log", "reason"]

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
BULK_REPEATS = 2  # bulk loads per system per round
TXN_BASE = 10_000_000  # each system's savepoint products start at its index times this


TASKS = {"concurrent10": 10, "concurrent100": 100}


async def timed(work: Callable[[], Awaitable[object]]) -> float:
    gc.collect()
    start = time.perf_counter()
    await work()
    return time.perf_counter() - start


# What a connection terminated from outside looks like through each library's wrappers.
_CUT_OFF = (
    "terminating connection due to administrator command",
    "connection is closed",
    "connection was closed in the middle of operation",
    "connection to the server was lost",
)


def cut_off(exc: BaseException) -> bool:
    """Whether `exc` (or what it wraps) is a connection the server ended, not the system's error."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, asyncpg.ConnectionDoesNotExistError | asyncpg.AdminShutdownError):
            return True
        if any(text in str(seen) for text in _CUT_OFF) and "encoder" not in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def reason(exc: BaseException) -> str:
    """An exception in one line, for a note under the table."""
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return text if len(text) <= 200 else text[:199] + "…"


@attrs.define
class Runner:
    args: argparse.Namespace
    sizes: Sizes
    dsn: str
    admin: asyncpg.Pool
    report: Report

    def share(self, system: System) -> float:
        return system.share if self.sizes.peers_do_less else 1.0

    def able(self, workload: str, system: System) -> bool:
        """Whether `system` is to run `workload`: not n/a, and not failed already."""
        if workload in system.cannot:
            self.report.note(workload, system.name, "n/a", system.cannot[workload])
            return False
        return not self.report.failed(workload, system.name)

    async def attempt(self, workload: str, system: System, work: Callable[[], Awaitable[T]]) -> T:
        """`work()`; a failure is noted against `system` on `workload`, and re-raised.

        A run cut off from outside (the server terminated its connection:
        another user of a shared server, a restart) says nothing about the
        system: it runs once more, and the note says so.
        """
        for again in (True, False):
            try:
                return await work()
            except Exception as exc:
                if again and cut_off(exc):
                    why = "a connection was terminated by the server; that part ran again"
                    self.report.note(workload, system.name, "note", why)
                    log(f"{system.name} {workload}: {reason(exc)}; running that part again")
                    await asyncio.sleep(1.0)
                    continue
                self.report.note(workload, system.name, "failed", reason(exc))
                log(f"{system.name} failed {workload}: {reason(exc)}")
                raise
        msg = "unreachable: the second attempt returns or raises"
        raise AssertionError(msg)

    async def run(
        self, workload: str, systems: Sequence[System], rng: random.Random
    ) -> dict[str, float]:
        """One round of `workload` on every able system: the figure of each, in its unit."""
        order = [s for s in systems if self.able(workload, s)]
        if workload == "stream":
            # One bulk operation each: the systems take turns whole.
            out = {}
            for s in order:
                try:
                    out[s.name] = await self.attempt(workload, s, functools.partial(self.stream, s))
                except Exception:  # noted against the system by attempt()
                    continue
            return out
        if workload in ("insert100k", "upsert100k"):
            return await self.bulk(workload, order)
        figures: dict[str, float] = await getattr(self, workload)(order, rng)
        return figures

    async def sliced(
        self,
        workload: str,
        order: Sequence[System],
        parts: Sequence[Sequence[T]],
        work: Callable[[System, Sequence[T]], Awaitable[object]],
    ) -> dict[str, tuple[float, int]]:
        """Per system, the seconds it took to do `work` on its share of every part, and
        how many items that was; the systems take turns part by part.

        Cutting a round's work into parts, and rotating the systems' order
        from part to part, spreads a burst of outside load over all of them
        instead of landing on whichever system ran at the time. A system that
        fails is noted and left out of the rest.
        """
        seconds = {s.name: 0.0 for s in order}
        done = {s.name: 0 for s in order}
        for k, part in enumerate(parts):
            for system in turn(order, k):
                if system.name not in seconds:
                    continue
                mine = cut(part, self.share(system))
                job = functools.partial(timed, functools.partial(work, system, mine))
                try:
                    seconds[system.name] += await self.attempt(workload, system, job)
                except Exception:
                    del seconds[system.name]
                    continue
                done[system.name] += len(mine)
        return {name: (t, done[name]) for name, t in seconds.items()}

    def ids(self, rng: random.Random, count: int) -> list[int]:
        """`count` random keys, all different while the table has enough."""
        rows = self.args.rows
        distinct = rng.sample(range(1, rows + 1), min(count, rows))
        return distinct + [rng.randint(1, rows) for _ in range(count - len(distinct))]

    async def get(self, order: Sequence[System], rng: random.Random) -> dict[str, float]:
        ids = self.ids(rng, self.sizes.gets)
        parts = chunks(ids, SLICES)
        timings = await self.sliced("get", order, parts, lambda s, p: s.held_get(p))
        return {name: t / n * 1e6 for name, (t, n) in timings.items()}

    async def pool_get(self, order: Sequence[System], rng: random.Random) -> dict[str, float]:
        ids = self.ids(rng, self.sizes.gets)
        timings = await self.sliced("pool_get", order, chunks(ids, SLICES), lambda s, p: s.get(p))
        return {name: t / n * 1e6 for name, (t, n) in timings.items()}

    async def concurrently(
        self, workload: str, order: Sequence[System], rng: random.Random
    ) -> dict[str, float]:
        ids = self.ids(rng, self.sizes.concurrent)
        tasks = TASKS[workload]

        async def work(system: System, part: Sequence[int]) -> None:
            await asyncio.gather(*(system.get(part[i::tasks]) for i in range(tasks)))

        timings = await self.sliced(workload, order, chunks(ids, SLICES), work)
        return {name: n / t for name, (t, n) in timings.items()}

    async def concurrent10(self, order: Sequence[System], rng: random.Random) -> dict[str, float]:
        return await self.concurrently("concurrent10", order, rng)

    async def concurrent100(self, order: Sequence[System], rng: random.Random) -> dict[str, float]:
        return await self.concurrently("concurrent100", order, rng)

    async def fetch10k(self, order: Sequence[System], rng: random.Random) -> dict[str, float]:
        limit = self.sizes.fetch_limit(self.args.rows)
        starts = [rng.randint(0, self.args.rows - limit) for _ in range(self.sizes.fetches)]
        fetched = {s.name: 0 for s in order}

        async def work(system: System, part: Sequence[int]) -> None:
            for start in part:
                got = await system.fetch(start, limit)
                if got != limit:
                    msg = f"fetched {got} rows after id {start}, not {limit}"
                    raise RuntimeError(msg)
                fetched[system.name] += got

        timings = await self.sliced("fetch10k", order, chunks(starts, SLICES), work)
        return {name: fetched[name] / t for name, (t, _) in timings.items()}

    async def bulk(self, workload: str, order: Sequence[System]) -> dict[str, float]:
        """A bulk load's time swings with what the server is doing (WAL, checkpoints):
        each system loads `BULK_REPEATS` times a round, the systems taking turns, and
        its figure is its rows over its total time."""
        inserting = workload == "insert100k"
        size = self.sizes.inserts if inserting else self.sizes.upserts
        counts = {s.name: whole_share(size, self.share(s)) for s in order}
        # Made once a round, untimed: what each system's user would hold.
        inputs = {
            s.name: s.new_rows(1, counts[s.name]) if inserting else s.upsert_rows(counts[s.name])
            for s in order
        }
        seconds = {s.name: 0.0 for s in order}
        rows = {s.name: 0 for s in order}
        for k in range(BULK_REPEATS):
            for system in turn(order, k):
                if system.name not in seconds:
                    continue
                count, data = counts[system.name], inputs[system.name]
                once = self.insert if inserting else self.upsert
                try:
                    t = await self.attempt(
                        workload, system, functools.partial(once, system, data, count)
                    )
                except Exception:
                    del seconds[system.name]
                    continue
                seconds[system.name] += t
                rows[system.name] += count
        return {name: rows[name] / t for name, t in seconds.items()}

    async def insert(self, system: System, rows: Any, count: int) -> float:
        """Seconds to load `rows` (`count` of them) into an empty bench_insert."""
        await self.admin.execute("TRUNCATE bench_insert RESTART IDENTITY")
        seconds = await timed(lambda: system.insert(rows))
        await self.check("SELECT count(*) FROM bench_insert", count)
        return seconds

    async def upsert(self, system: System, rows: Any, count: int) -> float:
        """Seconds to upsert `rows` (`count` of them) into bench_upsert, which holds
        the first half of them already, with old values (the other half is new)."""
        await self.admin.execute("TRUNCATE bench_upsert")
        await self.admin.execute(
            "INSERT INTO bench_upsert SELECT * FROM bench_product WHERE id <= $1", count // 2
        )
        seconds = await timed(lambda: system.upsert(rows))
        await self.check("SELECT count(*) FROM bench_upsert WHERE name LIKE '% v1'", count)
        return seconds

    async def savepoint(self, order: Sequence[System], rng: random.Random) -> dict[str, float]:
        await self.admin.execute("TRUNCATE bench_txn RESTART IDENTITY")
        count = self.sizes.txns
        # Each system its own products, so that only the savepoints' inserts collide.
        rows = {s.name: s.new_rows(TXN_BASE * (k + 1), count) for k, s in enumerate(order)}
        parts = chunks(range(count), SLICES)
        timings = await self.sliced(
            "savepoint", order, parts, lambda s, p: s.savepoints(rows[s.name][p[0] : p[-1] + 1])
        )
        stored = await self.admin.fetchval("SELECT count(*) FROM bench_txn")
        if stored != sum(n for _, n in timings.values()):
            msg = f"{stored} rows in bench_txn, not one per transaction of {', '.join(timings)}"
            raise RuntimeError(msg)
        return {name: n / t for name, (t, n) in timings.items()}

    async def stream(self, system: System) -> float:
        limit = stream_limit(self.args.rows, self.share(system))
        # A fresh process per run: its RSS is the stream's alone.
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench",
            "--child=stream",
            f"--system={system.name}",
            f"--dsn={self.dsn}",
            f"--prefetch={self.args.prefetch}",
            f"--loop={self.args.loop}",
            f"--pool={self.args.pool}",
            *([f"--limit={limit}"] if limit else []),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await child.communicate()
        if child.returncode:
            lines = err.decode().strip().splitlines() or [f"exited with {child.returncode}"]
            raise RuntimeError(lines[-1])
        result = json.loads(out)
        if result["rows"] != (limit or self.args.rows):
            msg = f"streamed {result['rows']} rows, not {limit or self.args.rows}"
            raise RuntimeError(msg)
        self.report.rss.setdefault(system.name, []).append(result["rss_growth_mib"])
        return float(result["rows"] / result["seconds"])

    async def pgbench(self, workload: str) -> float | None:
        """pgbench's figure for `workload`, in its unit; None (and a note) where it has none."""
        why = _pgbench.available()
        if why is None and workload not in ("get", "concurrent10", "concurrent100"):
            why = "pgbench measures lookups only"
            if workload == "pool_get":
                why = "pgbench has no pool: its one-client figure is under get"
        if why is not None:
            self.report.note(workload, PGBENCH, "n/a", why)
            return None
        if workload == "get":
            rate = await _pgbench.lookups(self.dsn, self.args.rows, 1, self.sizes.gets)
            return 1e6 / rate
        pool = self.args.pool
        if workload == "concurrent100":
            why = f"{pool} clients: a client is a connection, as many as the pools hold"
            self.report.note(workload, PGBENCH, "note", why)
        return await _pgbench.lookups(self.dsn, self.args.rows, pool, self.sizes.concurrent)

    async def check(self, query: str, expected: int) -> None:
        found = await self.admin.fetchval(query)
        if found != expected:
            msg = f"{query}: {found}, not {expected}"
            raise RuntimeError(msg)

    async def warm(self, system: System) -> None:
        """Untimed: fill the statement caches and the pool, on every code path."""
        rng = random.Random(-1)
        ids = self.ids(rng, 50)
        steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("get", lambda: system.held_get(ids)),
            ("pool_get", lambda: system.get(ids)),
            ("concurrent10", lambda: asyncio.gather(*(system.get(ids[i::10]) for i in range(10)))),
            ("fetch10k", lambda: system.fetch(0, 100)),
        ]
        wanted = self.args.workloads
        if "insert100k" in wanted:
            steps.append(("insert100k", lambda: system.insert(system.new_rows(1, 100))))
        if "upsert100k" in wanted:
            steps.append(("upsert100k", lambda: system.upsert(system.upsert_rows(100))))
        if "savepoint" in wanted:
            spare = system.new_rows(TXN_BASE * 99, 2)
            steps.append(("savepoint", lambda: system.savepoints(spare)))
        for workload, step in steps:
            if workload in wanted and self.able(workload, system):
                try:
                    await self.attempt(workload, system, step)
                except Exception:
                    continue
        await self.admin.execute("TRUNCATE bench_insert, bench_upsert, bench_txn RESTART IDENTITY")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
