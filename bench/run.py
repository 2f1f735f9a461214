"""The side-by-side benchmark: the same workloads on every system, in one run.

    python -m bench [--rows N] [--rounds R] [--quick] [--only W[,W...]]
                    [--systems S[,S...]] [--loop uvloop|asyncio] [--out DIR]
                    [--database NAME] [--prefetch P]

(``python3 tasks.py bench ...`` runs it in the project's venv.)

The systems: ``asyncpg`` (raw, records as they come), ``asyncpg+attrs`` (raw,
each record turned into a slotted frozen attrs object by hand: the yardstick),
``repo`` (this project's public API), ``sqla-core`` and ``sqla-orm``
(SQLAlchemy 2's asyncio Core and ORM), ``tortoise`` (Tortoise ORM),
``piccolo`` (Piccolo ORM) and ``pgbench`` (``pgbench -S``-style prepared
lookups: the server's ceiling). docs/performance.md says what each workload
does.

The bench seeds its own database (``repo_bench`` on $DATABASE_URL's server,
else the embedded one; ``synchronous_commit=off`` set on it) with a product
table of ``--rows`` rows. Each round runs every workload on every system, the
systems' order rotating from round to round; each stream runs in a fresh
process, so that one system's memory cannot hide another's. Reported: the
median of the rounds per workload and system, and its cost ratio to
asyncpg+attrs (above 1.00x is slower).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import json
import os
import platform
import random
import shutil
import subprocess
import time
from collections.abc import Coroutine, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from rich.console import Console

from repo._postgres.dsn import mask_dsn, resolve_dsn, with_database

from ._base import POOL
from ._model import DDL, INSERT_COLUMNS, seed_rows
from ._report import WORKLOADS, Report
from ._runner import ROOT, Runner, log, reason
from ._sizes import FULL, QUICK, turn
from ._systems import PGBENCH, SYSTEMS, YARDSTICK, Peak, System, make

RESULTS = ROOT / "bench" / "results"
DOCS_PAGE = ROOT / "docs" / "performance.md"
DOCS_CHART = ROOT / "docs" / "assets" / "bench-chart.png"
DATABASE = "repo_bench"

T = TypeVar("T")


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=f"The same workloads on {', '.join(SYSTEMS)}.",
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
    parser.add_argument(
        "--pool", type=int, default=POOL, help=f"connections per pool (default {POOL})"
    )
    parser.add_argument("--child", choices=("stream",), help=argparse.SUPPRESS)
    parser.add_argument("--system", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.workloads = _choose(parser, "--only", args.only, tuple(WORKLOADS))
    args.systems = _choose(parser, "--systems", args.systems, SYSTEMS)
    if args.rows is None:
        args.rows = 100_000 if args.quick else 1_000_000
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.rows < 100 or args.rounds < 1 or args.prefetch < 1 or args.pool < 1:
        parser.error("need --rows >= 100, --rounds >= 1, --prefetch >= 1 and --pool >= 1")
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


# -- the data ---------------------------------------------------------------


async def seed(server: str, database: str, rows: int) -> str:
    """Make `database` hold the bench's tables, with exactly `rows` products; its DSN.

    The database runs with ``synchronous_commit=off``: a commit does not wait
    for its WAL flush, so that transactions measure the client, not the disk.
    """
    conn = await asyncpg.connect(server)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
            # Another run may make it meanwhile.
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await conn.execute(f'CREATE DATABASE "{database}"')
        await conn.execute(f'ALTER DATABASE "{database}" SET synchronous_commit = off')
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
                "bench_product", records=seed_rows(rows), columns=("id", *INSERT_COLUMNS)
            )
            await conn.execute(f"ALTER TABLE bench_product ALTER id RESTART WITH {rows + 1}")
            await conn.execute("VACUUM ANALYZE bench_product")
            log(f"seeded {rows:,} rows in {time.perf_counter() - start:.1f}s")
        await conn.execute("TRUNCATE bench_insert, bench_upsert, bench_txn RESTART IDENTITY")
    finally:
        await conn.close()
    return dsn


# -- the run ----------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return ""


def _pgbench_version() -> str:
    if shutil.which("pgbench") is None:
        return "not installed"
    out = subprocess.run(["pgbench", "--version"], capture_output=True, text=True, check=False)
    # "pgbench (PostgreSQL) 15.20 (Debian ...)"
    words = out.stdout.split()
    return words[2] if len(words) > 2 else "?"


async def machine_facts(args: argparse.Namespace, admin: asyncpg.Pool) -> dict[str, Any]:
    model = await asyncio.to_thread(cpu_model)
    cpus = f"{os.cpu_count()} CPUs" + (f" ({model})" if model else "")
    packages = ("asyncpg", "sqlalchemy", "tortoise-orm", "piccolo", "repo")
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.system()} {platform.machine()}, {cpus}",
        "cpus": os.cpu_count(),
        "postgresql": (await admin.fetchval("SHOW server_version")).split()[0],
        "synchronous_commit": await admin.fetchval("SHOW synchronous_commit"),
        "python": platform.python_version(),
        "versions": {
            **{p: version(p) for p in packages},
            "pgbench": await asyncio.to_thread(_pgbench_version),
        },
        "loop": args.loop + (f" {version('uvloop')}" if args.loop == "uvloop" else ""),
        "load_average_at_start": round(os.getloadavg()[0], 2),
        "rows": args.rows,
        "rounds": args.rounds,
        "pool": args.pool,
        "prefetch": args.prefetch,
    }


async def bench(args: argparse.Namespace) -> Report:
    sizes = QUICK if args.quick else FULL
    server = resolve_dsn()
    dsn = await seed(server, args.database, args.rows)
    log(f"benchmarking on {mask_dsn(dsn)}: {', '.join(args.systems)}")
    # A pool of one: a connection the server terminates is replaced on the next use.
    admin = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    systems = {name: make(name, dsn, args.pool) for name in args.systems if name != PGBENCH}
    try:
        meta = await machine_facts(args, admin)
        peers = [s.name for s in systems.values() if s.share < 1]
        meta["sizes"] = sizes.describe(args.rows, peers)
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
                order = turn(list(systems.values()), r)
                for workload in args.workloads:
                    unit = WORKLOADS[workload].unit
                    rng = random.Random(r * 1000 + len(workload))  # the same for all systems
                    figures = await runner.run(workload, order, rng)
                    if PGBENCH in args.systems and not report.failed(workload, PGBENCH):
                        try:
                            figure = await runner.pgbench(workload)
                        except Exception as exc:
                            report.note(workload, PGBENCH, "failed", reason(exc))
                            figure = None
                        if figure is not None:
                            figures[PGBENCH] = figure
                    for name in args.systems:
                        if name not in figures:
                            continue
                        report.add(workload, name, figures[name])
                        log(
                            f"[round {r + 1}/{args.rounds} {time.perf_counter() - started:6.0f}s] "
                            f"{workload:<13} {name:<14} {figures[name]:>12,.1f} {unit}"
                        )
            meta["load_average_at_end"] = round(os.getloadavg()[0], 2)
        finally:
            for system in opened:
                await system.close()
    finally:
        await admin.close()
    return report


async def stream_child(args: argparse.Namespace) -> dict[str, float]:
    system = make(args.system, args.dsn, args.pool)
    await system.open()
    try:
        await system.fetch(0, 10)
        gc.collect()
        peak = Peak(args.limit)
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


if __name__ == "__main__":
    main()
