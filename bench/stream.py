"""Stream a million skus through a server-side cursor: rows/s and peak RSS growth.

    python bench/stream.py [--rows N] [--prefetch P] [--quick]

Seeds its own database (``repo_bench`` on $DATABASE_URL's server, else the
embedded one) with the catalog generator, then runs each reader in a fresh
process, so that one reader's memory cannot hide another's:

- ``asyncpg``: raw asyncpg, ``conn.cursor(...)`` records;
- ``asyncpg+attrs``: the same, each record turned into a ``Sku`` by hand;
- ``repo``: ``db.repository(SkuRepository).stream()``.

Peak RSS growth is the highest resident size sampled (every 10,000 rows)
during the stream, minus the resident size just before it (after connecting
and a warm-up). Results go to bench/results/stream.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

from repo import Database
from repo._dsn import resolve_dsn, with_database
from repo._migrate import upgrade
from repo.catalog import CatalogUnitOfWork, Sku, SkuRepository, load_catalog
from repo.catalog._tables import SKUS

ROOT = Path(__file__).resolve().parent.parent

READERS = ("asyncpg", "asyncpg+attrs", "repo")
DATABASE = "repo_bench"


def bench_dsn() -> str:
    return with_database(resolve_dsn(), DATABASE)


async def seed(rows: int) -> str:
    server = resolve_dsn()
    conn = await asyncpg.connect(server)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE):
            await conn.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await conn.close()
    dsn = bench_dsn()
    await asyncio.to_thread(upgrade, dsn, "head")
    async with Database.connect(dsn) as db:
        if await db.repository(SkuRepository).count() != rows:
            async with db.acquire() as c:
                await c.execute(
                    "TRUNCATE sku, product, product_color, product_size, brand "
                    "RESTART IDENTITY CASCADE"
                )
            start = time.perf_counter()
            async with CatalogUnitOfWork(db) as uow:
                await load_catalog(uow, brands=100, products=1000, skus=rows)
            print(f"seeded {rows:,} skus in {time.perf_counter() - start:.1f}s", file=sys.stderr)
        async with db.acquire() as c:
            await c.execute("VACUUM ANALYZE sku")
    return dsn


_PAGE = resource.getpagesize()


def rss() -> int:
    """Resident set size now, in bytes (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


class Peak:
    """The highest RSS seen by `sample()`, above the RSS when made."""

    def __init__(self) -> None:
        self.start = rss()
        self.peak = self.start

    def sample(self) -> None:
        self.peak = max(self.peak, rss())

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.start) / 2**20


EVERY = 10_000  # rows between RSS samples


async def read(reader: str, dsn: str, prefetch: int) -> dict[str, float]:
    sql = f"SELECT {SKUS.select_list} FROM sku"
    if reader == "repo":
        async with Database.connect(dsn, min_size=1, max_size=1) as db:
            skus = db.repository(SkuRepository)
            await skus.find(limit=10)
            peak = Peak()
            start = time.perf_counter()
            n = 0
            async for _ in skus.stream(prefetch=prefetch):
                n += 1
                if n % EVERY == 0:
                    peak.sample()
            elapsed = time.perf_counter() - start
    else:
        conn = await asyncpg.connect(dsn)
        await conn.fetch(sql + " LIMIT 10")
        peak = Peak()
        start = time.perf_counter()
        n = 0
        async with conn.transaction():
            if reader == "asyncpg":
                async for _ in conn.cursor(sql, prefetch=prefetch):
                    n += 1
                    if n % EVERY == 0:
                        peak.sample()
            else:
                async for r in conn.cursor(sql, prefetch=prefetch):
                    Sku(*r)
                    n += 1
                    if n % EVERY == 0:
                        peak.sample()
        elapsed = time.perf_counter() - start
        await conn.close()
    return {
        "rows": n,
        "seconds": elapsed,
        "rows_per_s": n / elapsed,
        "rss_growth_mib": peak.growth_mib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--prefetch", type=int, default=1000, help="rows per batch (repo default)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per reader; medians reported")
    parser.add_argument("--quick", action="store_true", help="100,000 rows, one round")
    parser.add_argument("--reader", choices=READERS, help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reader:
        print(json.dumps(asyncio.run(read(args.reader, args.dsn, args.prefetch))))
        return
    if args.quick:
        args.rows, args.rounds = 100_000, 1
    dsn = asyncio.run(seed(args.rows))
    results: dict[str, list[dict[str, float]]] = {r: [] for r in READERS}
    for _ in range(args.rounds):
        for reader in READERS:  # interleaved, so drift hits every reader alike
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--reader",
                    reader,
                    "--dsn",
                    dsn,
                    "--prefetch",
                    str(args.prefetch),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            results[reader].append(json.loads(out.stdout))

    def median(reader: str, key: str) -> float:
        values = sorted(r[key] for r in results[reader])
        return values[len(values) // 2]

    floor = median("asyncpg+attrs", "rows_per_s")
    lines = [
        f"Streaming {args.rows:,} skus, prefetch {args.prefetch}, median of {args.rounds} "
        "(each run in a fresh process).",
        "",
        "| reader | rows/s | vs asyncpg+attrs | peak RSS growth |",
        "|---|---|---|---|",
    ]
    for reader in READERS:
        rate = median(reader, "rows_per_s")
        lines.append(
            f"| {reader} | {rate:,.0f} | {rate / floor:.2f}x "
            f"| {median(reader, 'rss_growth_mib'):.1f} MiB |"
        )
    table = "\n".join(lines)
    print(table)
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results" / "stream.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
