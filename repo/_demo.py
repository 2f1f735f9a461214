"""``repo demo``: the core at work on a real PostgreSQL.

It uses its own database, ``repo_demo``, on the server (made if missing,
migrated to head, emptied each run), so it never touches other data.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from typing import Any

import asyncpg
import attrs

from ._database import Database
from ._dsn import mask_dsn, resolve_dsn
from .catalog import (
    Brand,
    BrandRepository,
    CatalogUnitOfWork,
    Product,
    ProductColor,
    ProductSize,
    Sku,
    SkuRepository,
)
from .errors import UniqueViolation

__all__ = ["run_demo"]

DEMO_DATABASE = "repo_demo"


def _with_database(dsn: str, database: str) -> str:
    parts = urllib.parse.urlsplit(dsn)
    return urllib.parse.urlunsplit(parts._replace(path="/" + database))


async def _ensure_database(server_dsn: str) -> str:
    conn = await asyncpg.connect(server_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DEMO_DATABASE)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{DEMO_DATABASE}"')
    finally:
        await conn.close()
    return _with_database(server_dsn, DEMO_DATABASE)


async def _load(db: Database, brands: int, products: int) -> dict[str, int]:
    async with CatalogUnitOfWork(db) as uow:
        await uow.connection.execute(
            "TRUNCATE sku, product, product_color, product_size, brand RESTART IDENTITY CASCADE"
        )
        colors = [await uow.colors.add(ProductColor(n)) for n in ("red", "green", "blue")]
        sizes = [await uow.sizes.add(ProductSize(n)) for n in ("S", "M", "L", "XL")]
        await uow.brands.add_many(Brand(f"brand {i:03}") for i in range(brands))
        await uow.products.add_many(
            Product(f"product {i:04}", i % brands + 1) for i in range(products)
        )
        skus = await uow.skus.add_many(
            Sku(p + 1, s.product_size_id or 0, c.product_color_id or 0)
            for p in range(products)
            for s in sizes
            for c in colors
        )
    return {"brands": brands, "products": products, "skus": skus}


async def _transactions(db: Database) -> dict[str, Any]:
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
    return {
        "committed": await brands.exists(brand_name="committed brand"),
        "rolled_back_present": await brands.exists(brand_name="rolled back brand"),
        "savepoint_error": savepoint_error,
        "savepoint_outer_kept": await brands.exists(brand_name="outer work"),
        "savepoint_inner_kept": await brands.exists(brand_name="inner work"),
    }


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


async def _concurrency(db: Database, queries: int) -> dict[str, float]:
    skus = db.repository(SkuRepository)
    ids = list(range(1, queries + 1))
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
    return {
        "queries": queries,
        "one_by_one_s": round(one_by_one, 4),
        "gathered_s": round(gathered, 4),
        "speedup": round(one_by_one / gathered, 2) if gathered else 0.0,
    }


async def run_demo(
    dsn: str | None = None, *, brands: int = 20, products: int = 2000, as_json: bool = False
) -> dict[str, Any]:
    """Run the demo; print what happens (or JSON figures) and return the figures."""
    from ._migrate import upgrade

    def say(text: str) -> None:
        if not as_json:
            print(text, flush=True)

    server = await asyncio.to_thread(resolve_dsn, dsn)
    say(f"server: {mask_dsn(server)}")
    demo_dsn = await _ensure_database(server)
    await asyncio.to_thread(upgrade, demo_dsn, "head")
    say(f"migrated {DEMO_DATABASE} to head")
    figures: dict[str, Any] = {"database": mask_dsn(demo_dsn)}
    async with Database.connect(demo_dsn, min_size=10, max_size=10) as db:
        figures["loaded"] = await _load(db, brands, products)
        say(
            "loaded (COPY): {brands} brands, {products} products, {skus} skus".format(
                **figures["loaded"]
            )
        )
        figures["transactions"] = tx = await _transactions(db)
        say(f"committed unit visible: {tx['committed']}")
        say(f"rolled-back unit left nothing: {not tx['rolled_back_present']}")
        say(
            f"savepoint: inner failure ({tx['savepoint_error']}) undone, "
            f"outer work kept: {tx['savepoint_outer_kept'] and not tx['savepoint_inner_kept']}"
        )
        figures["concurrency"] = c = await _concurrency(db, brands)
        say(
            f"{c['queries']} brand reports: one by one {c['one_by_one_s']:.3f}s, "
            f"gathered on the pool {c['gathered_s']:.3f}s ({c['speedup']}x)"
        )
    if as_json:
        print(json.dumps(figures, indent=2))
    return figures
