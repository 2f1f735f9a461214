"""The side-by-side benchmark: the same workloads on four systems, in one run.

    python -m bench [--rows N] [--rounds R] [--quick] [--only W[,W...]]
                    [--systems S[,S...]] [--loop uvloop|asyncio] [--out DIR]
                    [--database NAME] [--prefetch P]

(``python3 tasks.py bench ...`` runs it in the project's venv.)

The systems: ``asyncpg`` (raw, records as they come), ``asyncpg+attrs`` (raw,
each record turned into a slotted frozen attrs object by hand: the yardstick),
``repo`` (this project's public API) and ``sqlalchemy`` (SQLAlchemy 2's
asyncio ORM). The workloads: get, concurrent, fetch10k, insert100k, stream,
savepoint (docs/performance.md says what each does).

The bench seeds its own database (``repo_bench`` on $DATABASE_URL's server,
else the embedded one) with a table of ``--rows`` products. Each round runs
every workload on every system, the systems' order rotating from round to
round; each stream runs in a fresh process, so that one system's memory
cannot hide another's. Reported: the median of the rounds per workload and
system, and its cost ratio to asyncpg+attrs (above 1.00x is slower).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import functools
import gc
import json
import os
import platform
import random
import shutil
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import attrs
from rich.console import Console

from repo._dsn import mask_dsn, resolve_dsn, with_database

from ._model import DDL, seed_rows
from ._report import WORKLOADS, Report
from ._systems import SYSTEMS, YARDSTICK, Peak, System, make

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOCS_PAGE = ROOT / "docs" / "performance.md"
DOCS_CHART = ROOT / "docs" / "assets" / "bench-chart.png"
DATABASE = "repo_bench"
TASKS = 10  # concurrent tasks in the concurrent workload
INSERT_REPEATS = 3  # bulk loads per system per round
SLICES = 10  # parts a round of a workload is cut into, for the systems to take turns

T = TypeVar("T")


@attrs.frozen
class Sizes:
    gets: int
    concurrent: int
    fetches: int
    fetch_rows: int
    inserts: int
    txns: int

    def fetch_limit(self, rows: int) -> int:
        return min(self.fetch_rows, rows // 2)

    def describe(self, rows: int) -> dict[str, str]:
        return {
            "get": f"{self.gets:,} gets",
            "concurrent": f"{self.concurrent:,} gets",
            "fetch10k": f"{self.fetches} x {self.fetch_limit(rows):,} rows",
            "insert100k": f"{self.inserts:,} rows",
            "stream": f"{rows:,} rows",
            "savepoint": f"{self.txns:,} txns",
        }


FULL = Sizes(
    gets=5_000, concurrent=20_000, fetches=20, fetch_rows=10_000, inserts=100_000, txns=2_000
)
QUICK = Sizes(gets=200, concurrent=400, fetches=4, fetch_rows=1_000, inserts=1_000, txns=100)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="The same workloads on asyncpg, asyncpg+attrs, repo and SQLAlchemy.",
    )
    parser.add_argument("--rows", type=int, help="rows in the table (default 1,000,000)")
    parser.add_argument("--rounds", type=int, help="rounds; medians reported (default 3)")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke test: small sizes, 100,000 rows, 1 round"
    )
    parser.add_argument("--only", help=f"workloads to run, comma-separated: {', '.join(WORKLOADS)}")
    parser.add_argument("--systems", help=f"systems to run, comma-separated: {', '.join(SYSTEMS)}")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the results go")
    parser.add_argument("--database", default=DATABASE, help="the database to seed and use")
    parser.add_argument("--prefetch", type=int, default=1000, help="rows per stream batch")
    parser.add_argument("--child", choices=("stream",), help=argparse.SUPPRESS)
    parser.add_argument("--system", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.workloads = _choose(parser, "--only", args.only, tuple(WORKLOADS))
    args.systems = _choose(parser, "--systems", args.systems, SYSTEMS)
    if args.rows is None:
        args.rows = 100_000 if args.quick else 1_000_000
    if args.rounds is None:
        # Three rounds of everything take about 10 minutes on 2 busy cores,
        # most of it SQLAlchemy's stream of a million ORM objects.
        args.rounds = 1 if args.quick else 3
    if args.rows < 100 or args.rounds < 1 or args.prefetch < 1:
        parser.error("need --rows >= 100, --rounds >= 1 and --prefetch >= 1")
    return args


def _choose(
    parser: argparse.ArgumentParser, option: str, given: str | None, known: tuple[str, ...]
) -> tuple[str, ...]:
    if not given:
        return known
    chosen = [name.strip() for name in given.split(",") if name.strip()]
    for name in chosen:
        if name not in known:
            parser.error(f"{option}: unknown {name!r}; choose from {', '.join(known)}")
    return tuple(n for n in known if n in chosen)


def run_loop(main: Coroutine[Any, Any, T], loop: str) -> T:
    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main)
    return asyncio.run(main)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the data ---------------------------------------------------------------


async def seed(server: str, database: str, rows: int) -> str:
    """Make `database` hold the bench's tables, with exactly `rows` products; its DSN."""
    conn = await asyncpg.connect(server)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
            # Another run may make it meanwhile.
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    dsn = with_database(server, database)
    conn = await asyncpg.connect(dsn)
    try:
        for statement in DDL:
            await conn.execute(statement)
        row = await conn.fetchrow("SELECT count(*), coalesce(max(id), 0) FROM bench_product")
        if row is None or (row[0], row[1]) != (rows, rows):
            start = time.perf_counter()
            await conn.execute("TRUNCATE bench_product RESTART IDENTITY")
            await conn.copy_records_to_table(
                "bench_product",
                records=seed_rows(rows),
                columns=("name", "brand_id", "price", "created_at"),
            )
            await conn.execute("VACUUM ANALYZE bench_product")
            log(f"seeded {rows:,} rows in {time.perf_counter() - start:.1f}s")
        await conn.execute("TRUNCATE bench_insert, bench_txn RESTART IDENTITY")
    finally:
        await conn.close()
    return dsn


# -- one timed run of a workload on a system --------------------------------


async def timed(work: Callable[[], Awaitable[object]]) -> float:
    gc.collect()
    start = time.perf_counter()
    await work()
    return time.perf_counter() - start


def chunks(items: Sequence[T], count: int) -> list[Sequence[T]]:
    """`items` cut into `count` consecutive parts (fewer if there are fewer items)."""
    count = max(1, min(count, len(items)))
    return [items[k * len(items) // count : (k + 1) * len(items) // count] for k in range(count)]


def turn(order: Sequence[T], k: int) -> list[T]:
    """`order` rotated by `k`."""
    k %= len(order)
    return [*order[k:], *order[:k]]


@attrs.define
class Runner:
    args: argparse.Namespace
    sizes: Sizes
    dsn: str
    admin: asyncpg.Connection
    report: Report

    async def run(
        self, workload: str, order: Sequence[System], rng: random.Random
    ) -> dict[str, float]:
        """One round of `workload` on every system: the figure of each, in the workload's unit."""
        method = workload.removesuffix("100k").removesuffix("10k")
        if method == "stream":
            # One bulk operation each: the systems take turns whole.
            return {s.name: await self.stream(s) for s in order}
        if method == "insert":
            # A bulk load's time varies a lot with what the server is doing
            # (WAL, checkpoints): each system loads INSERT_REPEATS times a
            # round, taking turns, and its figure is the rows over the time.
            seconds = {s.name: 0.0 for s in order}
            for k in range(INSERT_REPEATS):
                for system in turn(order, k):
                    seconds[system.name] += self.sizes.inserts / await self.insert(system)
            return {name: INSERT_REPEATS * self.sizes.inserts / t for name, t in seconds.items()}
        figures: dict[str, float] = await getattr(self, method)(order, rng)
        return figures

    async def sliced(
        self,
        order: Sequence[System],
        parts: Sequence[Sequence[T]],
        work: Callable[[System, Sequence[T]], Awaitable[object]],
    ) -> dict[str, float]:
        """Seconds per system to do `work` on every part, the systems taking turns part by part.

        Cutting a round's work into parts, and rotating the systems' order
        from part to part, spreads a burst of outside load over all of them
        instead of landing on whichever system ran at the time.
        """
        seconds = {s.name: 0.0 for s in order}
        for k, part in enumerate(parts):
            for system in turn(order, k):
                seconds[system.name] += await timed(functools.partial(work, system, part))
        return seconds

    def ids(self, rng: random.Random, count: int) -> list[int]:
        return [rng.randint(1, self.args.rows) for _ in range(count)]

    async def get(self, order: Sequence[System], rng: random.Random) -> dict[str, float]:
        ids = self.ids(rng, self.sizes.gets)
        seconds = await self.sliced(order, chunks(ids, SLICES), lambda s, part: s.get(part))
        return {name: t / len(ids) * 1e6 for name, t in seconds.items()}

    async def concurrent(self, order: Sequence[System], rng: random.Random) -> dict[str, float]:
        ids = self.ids(rng, self.sizes.concurrent)

        async def work(system: System, part: Sequence[int]) -> None:
            await asyncio.gather(*(system.get(part[i::TASKS]) for i in range(TASKS)))

        seconds = await self.sliced(order, chunks(ids, SLICES), work)
        return {name: len(ids) / t for name, t in seconds.items()}

    async def fetch(self, order: Sequence[System], rng: random.Random) -> dict[str, float]:
        limit = self.sizes.fetch_limit(self.args.rows)
        starts = [rng.randint(0, self.args.rows - limit) for _ in range(self.sizes.fetches)]
        fetched = {s.name: 0 for s in order}

        async def work(system: System, part: Sequence[int]) -> None:
            for start in part:
                fetched[system.name] += await system.fetch(start, limit)

        seconds = await self.sliced(order, chunks(starts, SLICES), work)
        for name, rows in fetched.items():
            if rows != limit * len(starts):
                msg = f"{name} fetched {rows} rows, not {limit * len(starts)}"
                raise RuntimeError(msg)
        return {name: fetched[name] / t for name, t in seconds.items()}

    async def insert(self, system: System) -> float:
        await self.admin.execute("TRUNCATE bench_insert RESTART IDENTITY")
        rows = system.rows_to_insert(self.sizes.inserts)
        seconds = await timed(lambda: system.insert(rows))
        await self.check_count("bench_insert", self.sizes.inserts, system.name)
        return self.sizes.inserts / seconds

    async def savepoint(self, order: Sequence[System], rng: random.Random) -> dict[str, float]:
        await self.admin.execute("TRUNCATE bench_txn RESTART IDENTITY")
        count = self.sizes.txns
        # Each system its own names, so that only the savepoints' inserts collide.
        names = {s.name: [f"{s.name} {i}" for i in range(count)] for s in order}
        parts = chunks(range(count), SLICES)
        seconds = await self.sliced(
            order, parts, lambda s, part: s.savepoints(names[s.name][part[0] : part[-1] + 1])
        )
        await self.check_count("bench_txn", count * len(order), ", ".join(names))
        return {name: count / t for name, t in seconds.items()}

    async def stream(self, system: System) -> float:
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
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await child.communicate()
        if child.returncode:
            msg = f"the {system.name} stream exited with {child.returncode}"
            raise RuntimeError(msg)
        result = json.loads(out)
        if result["rows"] != self.args.rows:
            msg = f"{system.name} streamed {result['rows']} rows, not {self.args.rows}"
            raise RuntimeError(msg)
        self.report.rss.setdefault(system.name, []).append(result["rss_growth_mib"])
        return float(result["rows"] / result["seconds"])

    async def check_count(self, table: str, expected: int, who: str) -> None:
        count = await self.admin.fetchval(f"SELECT count(*) FROM {table}")
        if count != expected:
            msg = f"{who} left {count} rows in {table}, not {expected}"
            raise RuntimeError(msg)

    async def warm(self, system: System) -> None:
        """Untimed: fill the statement caches and the pool, on every code path."""
        rng = random.Random(-1)
        ids = self.ids(rng, 50)
        await system.get(ids)
        await asyncio.gather(*(system.get(ids[i::TASKS]) for i in range(TASKS)))
        await system.fetch(0, 100)
        if "insert100k" in self.args.workloads:
            await system.insert(system.rows_to_insert(100))
            await self.admin.execute("TRUNCATE bench_insert RESTART IDENTITY")
        if "savepoint" in self.args.workloads:
            await system.savepoints(["warm 1", "warm 2"])
            await self.admin.execute("TRUNCATE bench_txn RESTART IDENTITY")


def cpu_model() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return model


async def machine_facts(args: argparse.Namespace, admin: asyncpg.Connection) -> dict[str, Any]:
    model = await asyncio.to_thread(cpu_model)
    cpus = f"{os.cpu_count()} CPUs" + (f" ({model})" if model else "")
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.system()} {platform.machine()}, {cpus}",
        "cpus": os.cpu_count(),
        "postgresql": (await admin.fetchval("SHOW server_version")).split()[0],
        "python": platform.python_version(),
        "asyncpg": version("asyncpg"),
        "sqlalchemy": version("sqlalchemy"),
        "repo": version("repo"),
        "loop": args.loop + (f" {version('uvloop')}" if args.loop == "uvloop" else ""),
        "load_average_at_start": round(os.getloadavg()[0], 2),
        "rows": args.rows,
        "rounds": args.rounds,
        "pool": 10,
        "prefetch": args.prefetch,
    }


async def bench(args: argparse.Namespace) -> Report:
    sizes = QUICK if args.quick else FULL
    server = resolve_dsn()
    dsn = await seed(server, args.database, args.rows)
    log(f"benchmarking on {mask_dsn(dsn)}: {', '.join(args.systems)}")
    admin = await asyncpg.connect(dsn)
    systems = {name: make(name, dsn) for name in args.systems}
    try:
        meta = await machine_facts(args, admin)
        meta["sizes"] = sizes.describe(args.rows)
        report = Report(args.systems, YARDSTICK, meta)
        runner = Runner(args, sizes, dsn, admin, report)
        opened: list[System] = []
        try:
            for system in systems.values():
                await system.open()
                opened.append(system)
                await runner.warm(system)
            # What is alive now (modules, pools, caches) lives to the end: out
            # of the collector's way, so the collection before each timed part
            # is short and looks only at what the runs made.
            gc.collect()
            gc.freeze()
            started = time.perf_counter()
            for r in range(args.rounds):
                order = turn([systems[name] for name in args.systems], r)
                for workload in args.workloads:
                    unit = WORKLOADS[workload].unit
                    rng = random.Random(r * 1000 + len(workload))  # the same for all systems
                    figures = await runner.run(workload, order, rng)
                    for system in order:
                        figure = figures[system.name]
                        report.add(workload, system.name, figure)
                        log(
                            f"[round {r + 1}/{args.rounds} {time.perf_counter() - started:6.0f}s] "
                            f"{workload:<10} {system.name:<14} {figure:>12,.1f} {unit}"
                        )
            meta["load_average_at_end"] = round(os.getloadavg()[0], 2)
        finally:
            for system in opened:
                await system.close()
    finally:
        await admin.close()
    return report


async def stream_child(args: argparse.Namespace) -> dict[str, float]:
    system = make(args.system, args.dsn)
    await system.open()
    try:
        await system.fetch(0, 10)
        gc.collect()
        peak = Peak()
        start = time.perf_counter()
        rows = await system.stream(args.prefetch, peak)
        seconds = time.perf_counter() - start
        peak.sample()
    finally:
        await system.close()
    return {"rows": rows, "seconds": seconds, "rss_growth_mib": peak.growth_mib}


def publish(out: Path, report: Report) -> None:
    """Put a full run's table and chart in docs/performance.md."""
    begin, end = "<!-- results: begin -->", "<!-- results: end -->"
    page = DOCS_PAGE.read_text()
    head, _, rest = page.partition(begin)
    _, _, tail = rest.partition(end)
    if not rest or not tail:
        return
    DOCS_PAGE.write_text(f"{head}{begin}\n\n{report.markdown()}\n{end}{tail}")
    DOCS_CHART.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "chart.png", DOCS_CHART)
    log(f"updated {DOCS_PAGE.relative_to(ROOT)} and {DOCS_CHART.relative_to(ROOT)}")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(argv)
    if args.child:
        print(json.dumps(run_loop(stream_child(args), args.loop)))
        return
    report = run_loop(bench(args), args.loop)
    report.print(Console())
    files = report.write(args.out)
    for path in files.values():
        if path.exists():
            log(f"wrote {path}")
    complete = args.workloads == tuple(WORKLOADS) and args.systems == SYSTEMS
    if complete and not args.quick and args.out.resolve() == RESULTS:
        publish(args.out, report)
