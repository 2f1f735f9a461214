"""``repo demo``: the whole story on a real PostgreSQL, in a minute.

Migrate to head, load the catalog through COPY, run queries concurrently
through the pool, show commit, rollback and a savepoint, read a page of
products whole (brand and skus, one statement), stream every sku through a
cursor, and sum it up. It uses its own database, ``repo_demo``, on
the server (made if missing, emptied each run), so it never touches other
data.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import attrs
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable

from repo import Database
from repo._postgres.dsn import mask_dsn, resolve_dsn, with_database
from repo.catalog import (
    Brand,
    BrandRepository,
    CatalogUnitOfWork,
    ProductDetails,
    SkuRepository,
    load_catalog,
)
from repo.errors import ConfigurationError, UniqueViolation

__all__ = ["run_demo"]

DEMO_DATABASE = "repo_demo"

# A report per brand: its skus per colour. Each takes the server a moment,
# which is where running them side by side on the pool pays.
BRAND_REPORT_SQL = """
SELECT c.product_color_name AS color, count(*) AS skus
FROM sku s
JOIN product p ON p.product_id = s.product_id
JOIN product_color c ON c.product_color_id = s.product_color_id
WHERE p.brand_id = $1
GROUP BY c.product_color_name
"""


@attrs.frozen
class ColorCount:
    color: str
    skus: int


def _rss() -> int:
    """Resident set size now, in bytes (0 where /proc is not available)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


class Show:
    """Where the demo's story goes: rich on a terminal, plain lines otherwise, nothing for JSON."""

    def __init__(self, *, as_json: bool) -> None:
        self.console = Console(quiet=as_json, highlight=False)
        self.live = self.console.is_terminal and not as_json

    def say(self, text: str) -> None:
        # Off a terminal rich would still wrap at 80 columns, mid-sentence.
        self.console.print(text, soft_wrap=not self.live)

    @contextmanager
    def progress(self, label: str, total: int) -> Iterator[Any]:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            disable=not self.live,
            transient=False,
        ) as bar:
            task = bar.add_task(label, total=total)
            yield lambda n: bar.update(task, completed=n)


async def _ensure_database(server_dsn: str) -> str:
    conn = await asyncpg.connect(server_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DEMO_DATABASE)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{DEMO_DATABASE}"')
    finally:
        await conn.close()
    return with_database(server_dsn, DEMO_DATABASE)


async def _load(db: Database, show: Show, brands: int, products: int, skus: int) -> dict[str, Any]:
    start = time.perf_counter()
    with show.progress("loading skus (COPY)", skus) as advance:
        async with CatalogUnitOfWork(db) as uow:
            await uow.connection.execute(
                "TRUNCATE sku, product, product_color, product_size, brand RESTART IDENTITY CASCADE"
            )
            counts = await load_catalog(
                uow,
                brands=brands,
                products=products,
                skus=skus,
                progress=lambda kind, n: advance(n) if kind == "skus" else None,
                every=max(1, skus // 100),
            )
    seconds = time.perf_counter() - start
    show.say(
        f"loaded {counts.brands:,} brands, {counts.products:,} products, "
        f"{counts.colors} colours, {counts.sizes} sizes and {counts.skus:,} skus "
        f"in {seconds:.1f}s"
    )
    return {**attrs.asdict(counts), "seconds": round(seconds, 3)}


async def _concurrency(db: Database, show: Show, brands: int) -> dict[str, Any]:
    skus = db.repository(SkuRepository)
    ids = list(range(1, brands + 1))
    # Warm both paths first (connections open, statements prepared), so the
    # comparison is of running queries, not of opening connections.
    await asyncio.gather(*(skus.query(ColorCount, BRAND_REPORT_SQL, i) for i in ids))
    start = time.perf_counter()
    async with CatalogUnitOfWork(db, readonly=True) as uow:
        for i in ids:
            await uow.skus.query(ColorCount, BRAND_REPORT_SQL, i)
    one_by_one = time.perf_counter() - start
    start = time.perf_counter()
    await asyncio.gather(*(skus.query(ColorCount, BRAND_REPORT_SQL, i) for i in ids))
    gathered = time.perf_counter() - start
    speedup = one_by_one / gathered if gathered else 0.0
    show.say(
        f"{brands} brand reports: one by one on one connection {one_by_one:.3f}s, "
        f"with asyncio.gather on the pool {gathered:.3f}s ({speedup:.2f}x)"
    )
    return {
        "queries": brands,
        "one_by_one_s": round(one_by_one, 4),
        "gathered_s": round(gathered, 4),
        "speedup": round(speedup, 2),
    }


async def _transactions(db: Database, show: Show) -> dict[str, Any]:
    async with CatalogUnitOfWork(db) as uow:
        await uow.brands.add(Brand("committed brand"))
    try:
        async with CatalogUnitOfWork(db) as uow:
            await uow.brands.add(Brand("rolled back brand"))
            msg = "something went wrong"
            raise RuntimeError(msg)
    except RuntimeError:
        pass
    savepoint_error = None
    async with CatalogUnitOfWork(db) as uow:
        await uow.brands.add(Brand("outer work"))
        try:
            async with uow.savepoint():
                await uow.brands.add(Brand("inner work"))
                await uow.brands.add(Brand("outer work"))  # duplicate: undone with "inner work"
        except UniqueViolation as exc:
            savepoint_error = exc.constraint
    brands = db.repository(BrandRepository)
    outcome = {
        "committed": await brands.exists(brand_name="committed brand"),
        "rolled_back_present": await brands.exists(brand_name="rolled back brand"),
        "savepoint_error": savepoint_error,
        "savepoint_outer_kept": await brands.exists(brand_name="outer work"),
        "savepoint_inner_kept": await brands.exists(brand_name="inner work"),
    }
    show.say(f"a unit of work that exits cleanly commits: {outcome['committed']}")
    show.say(f"one that raises rolls back: {not outcome['rolled_back_present']}")
    show.say(
        f"a savepoint whose inner work fails ({savepoint_error}) is undone alone: "
        f"{outcome['savepoint_outer_kept'] and not outcome['savepoint_inner_kept']}"
    )
    return outcome


async def _aggregates(db: Database, show: Show) -> dict[str, Any]:
    details = db.repository(ProductDetails)
    await details.page(limit=100)  # warm: the statement prepared
    start = time.perf_counter()
    page = await details.page(limit=100)
    seconds = time.perf_counter() - start
    skus = sum(len(d.skus) for d in page.items)
    show.say(
        f"{len(page.items)} products with their brand and {skus:,} skus, whole, "
        f"in one statement: {seconds * 1000:.1f} ms"
    )
    return {"products": len(page.items), "skus": skus, "seconds": round(seconds, 4)}


async def _stream(db: Database, show: Show, total: int) -> dict[str, Any]:
    skus = db.repository(SkuRepository)
    base = peak = _rss()
    rows = 0
    start = time.perf_counter()
    with show.progress("streaming skus (cursor)", total) as advance:
        async for _ in skus.stream(prefetch=1000):
            rows += 1
            if rows % 10_000 == 0:
                peak = max(peak, _rss())
                advance(rows)
        advance(rows)
    seconds = time.perf_counter() - start
    peak = max(peak, _rss())
    rate = rows / seconds if seconds else 0.0
    growth = (peak - base) / 2**20
    show.say(
        f"streamed {rows:,} skus in {seconds:.2f}s ({rate:,.0f} rows/s), "
        f"memory grew by {growth:.1f} MiB"
    )
    return {
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_s": round(rate),
        "rss_growth_mib": round(growth, 2),
    }


def _summary(show: Show, figures: dict[str, Any]) -> None:
    table = RichTable(title="repo demo")
    table.add_column("step")
    table.add_column("result", justify="right")
    loaded = figures["loaded"]
    table.add_row("loaded skus (COPY)", f"{loaded['skus']:,} in {loaded['seconds']:.1f}s")
    tx = figures["transactions"]
    table.add_row("commit / rollback", f"{tx['committed']} / {not tx['rolled_back_present']}")
    table.add_row("savepoint undone alone", str(not tx["savepoint_inner_kept"]))
    c = figures["concurrency"]
    table.add_row("gather speed-up", f"{c['speedup']:.2f}x over {c['queries']} queries")
    a = figures["aggregates"]
    table.add_row("aggregates", f"{a['products']} products, {a['skus']:,} skus in one statement")
    s = figures["stream"]
    table.add_row("stream", f"{s['rows_per_s']:,} rows/s, +{s['rss_growth_mib']:.1f} MiB")
    show.console.print(table)


def catalog_migrations() -> Path:
    """The catalog's own alembic.ini: the demo migrates its database with these, never a user's."""
    ini = Path(__file__).resolve().parents[2] / "alembic.ini"
    if not ini.is_file():
        msg = (
            "the demo runs from a clone of the repo repository, whose alembic.ini and "
            "migrations/ hold the catalog's schema; they are not part of the installed package"
        )
        raise ConfigurationError(msg)
    return ini


async def run_demo(
    dsn: str | None = None,
    *,
    brands: int = 100,
    products: int = 1_000,
    skus: int = 100_000,
    as_json: bool = False,
) -> dict[str, Any]:
    """Run the demo; show what happens (or print JSON figures) and return the figures."""
    from repo.migrations import upgrade

    show = Show(as_json=as_json)
    server = await asyncio.to_thread(resolve_dsn, dsn)
    show.say(f"server: {mask_dsn(server)}")
    demo_dsn = await _ensure_database(server)
    await asyncio.to_thread(upgrade, demo_dsn, "head", config=catalog_migrations())
    show.say(f"migrated {DEMO_DATABASE} to head")
    figures: dict[str, Any] = {"database": mask_dsn(demo_dsn)}
    async with Database.connect(demo_dsn, min_size=10, max_size=10) as db:
        figures["loaded"] = await _load(db, show, brands, products, skus)
        figures["concurrency"] = await _concurrency(db, show, brands)
        figures["transactions"] = await _transactions(db, show)
        figures["aggregates"] = await _aggregates(db, show)
        figures["stream"] = await _stream(db, show, skus)
    _summary(show, figures)
    show.say(
        f"next: the guide, docs/index.md. The demo migrated only {DEMO_DATABASE}: "
        "before the guide's examples, create the schema in the database they use "
        "with `repo db upgrade` (.venv/bin/repo)"
    )
    if as_json:
        print(json.dumps(figures, indent=2))
    return figures
