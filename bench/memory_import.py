"""MemoryDatabase against PostgreSQL: an import through the catalog's services, side by side.

    python -m bench.memory_import [--products 10000] [--variants 4] [--unit 100] [--tests 1000]

1. The import: brands made with `create_brand`, then products with their
   skus through `add_product` (which looks up or makes each size and
   colour, by its unique name), a unit of work per `--unit` products, then
   `import_price_list` repricing every product (one ``in_()`` of all their
   ids, then one update per product), and finally `discontinue_product` on
   one product in ten (a delete_where of its skus, then the product). With
   the defaults that is 50,000+ rows written, the same code on both
   backends; the rows each one holds at the end are compared.
   PostgreSQL runs on ``repo_bench_memory`` made afresh on $DATABASE_URL's
   server (else the embedded one) and migrated to head.
2. The unit tests: `--tests` times, a fresh `MemoryDatabase` and a few
   service calls on it (a brand, a product with two skus, a rename, a
   product sheet, a discontinue), as a suite of service-level unit tests does.

Prints both times for the import, and the unit tests' total and per-test time;
for the fake also the CPU time it used (steadier than the wall clock on a
shared machine), and the machine's load average before each run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from decimal import Decimal
from typing import Any

import asyncpg

from repo import Database, DatabaseLike
from repo._postgres.dsn import mask_dsn, resolve_dsn, with_database
from repo.catalog import (
    CatalogUnitOfWork,
    add_product,
    create_brand,
    discontinue_product,
    import_price_list,
    product_sheet,
    rename_brand,
)
from repo.migrations import upgrade
from repo.testing import MemoryDatabase

DATABASE = "repo_bench_memory"
SIZES = ["XS", "S", "M", "L", "XL", "XXL"]
COLORS = ["red", "green", "blue", "black", "white", "grey", "navy", "olive"]


async def import_catalog(
    db: DatabaseLike, products: int, variants: int, unit: int
) -> dict[str, int]:
    """The import; returns how many rows each table holds at the end."""
    async with CatalogUnitOfWork(db) as uow:
        brands = [(await create_brand(uow, f"brand {i}")).brand_id or 0 for i in range(20)]
    ids: list[int] = []
    for start in range(0, products, unit):
        async with CatalogUnitOfWork(db) as uow:
            for n in range(start, min(start + unit, products)):
                chosen = [
                    (SIZES[(n + k) % len(SIZES)], COLORS[(n * 3 + k) % len(COLORS)])
                    for k in range(variants)
                ]
                product, _ = await add_product(
                    uow, brands[n % len(brands)], f"product {n}", chosen, price=Decimal("9.99")
                )
                ids.append(product.product_id or 0)
    async with CatalogUnitOfWork(db) as uow:
        prices = [(i, Decimal(i % 97) + Decimal("0.5")) for i in ids]
        done = await import_price_list(uow, [*prices, (10**9, Decimal(1))])
        assert done.updated == len(ids), done
    async with CatalogUnitOfWork(db) as uow:
        for i in ids[::10]:
            await discontinue_product(uow, i)
    async with CatalogUnitOfWork(db, readonly=True) as uow:
        return {
            "brand": await uow.brands.count(),
            "product": await uow.products.count(),
            "product_size": await uow.sizes.count(),
            "product_color": await uow.colors.count(),
            "sku": await uow.skus.count(),
        }


async def unit_test() -> None:
    """What one service-level unit test does on a fresh MemoryDatabase."""
    async with MemoryDatabase() as db:
        async with CatalogUnitOfWork(db) as uow:
            brand = await create_brand(uow, "acme")
            product, skus = await add_product(
                uow, brand.brand_id or 0, "anvil", [("M", "black"), ("L", "black")]
            )
        async with CatalogUnitOfWork(db) as uow:
            await rename_brand(uow, brand.brand_id or 0, "acme inc")
            sheet = await product_sheet(uow, product.product_id or 0)
            assert len(sheet) == len(skus) == 2
            assert await discontinue_product(uow, product.product_id or 0) == 2


async def _admin(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def _timed(run: Any) -> tuple[float, float, Any]:
    """Wall-clock and CPU seconds of `run`, and its result."""
    print(f"  (load average {os.getloadavg()[0]:.1f})", flush=True)
    start, cpu = time.perf_counter(), time.process_time()
    result = asyncio.run(run)
    return time.perf_counter() - start, time.process_time() - cpu, result


async def _on_postgres(dsn: str, products: int, variants: int, unit: int) -> dict[str, int]:
    async with Database.connect(dsn, max_size=2) as db:
        return await import_catalog(db, products, variants, unit)


async def _unit_tests(count: int) -> None:
    for _ in range(count):
        await unit_test()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--variants", type=int, default=4)
    parser.add_argument("--unit", type=int, default=100, help="products per unit of work")
    parser.add_argument("--tests", type=int, default=1000, help="unit tests to time")
    parser.add_argument("--skip-postgres", action="store_true")
    opts = parser.parse_args()

    rows = opts.products * (1 + opts.variants) + 20
    print(f"import: {opts.products} products x {opts.variants} skus ({rows:,} rows written)")
    fake = MemoryDatabase()
    took, cpu, memory = _timed(import_catalog(fake, opts.products, opts.variants, opts.unit))
    print(f"  MemoryDatabase  {took:8.2f} s (cpu {cpu:.2f} s)   {memory}", flush=True)
    if not opts.skip_postgres:
        server = resolve_dsn()
        dsn = with_database(server, DATABASE)
        asyncio.run(
            _admin(
                server,
                f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)',
                f'CREATE DATABASE "{DATABASE}"',
            )
        )
        upgrade(dsn, "head")
        pg_took, _, on_server = _timed(_on_postgres(dsn, opts.products, opts.variants, opts.unit))
        print(f"  PostgreSQL      {pg_took:8.2f} s   {on_server}   ({mask_dsn(dsn)})")
        assert on_server == memory, "the two backends hold different rows"
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        print(f"  memory / postgres: {took / pg_took:.2f}")
    tests_took, tests_cpu, _ = _timed(_unit_tests(opts.tests))
    per = tests_took / opts.tests * 1000
    print(f"unit tests: {opts.tests} on fresh MemoryDatabases")
    print(f"  MemoryDatabase  {tests_took:8.2f} s (cpu {tests_cpu:.2f} s)   ({per:.2f} ms a test)")


if __name__ == "__main__":
    main()
