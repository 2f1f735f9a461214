"""COPY bulk loads, upserts and set-based writes on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from repo import (
    Database,
    DataError,
)
from repo.catalog import (
    Brand,
    BrandRepository,
    CatalogUnitOfWork,
    load_catalog,
)


async def count_brands(conn: asyncpg.Connection) -> int:
    value: int = await conn.fetchval("SELECT count(*) FROM brand")
    return value


async def test_copy_100k_rows_then_count(db: Database, conn: asyncpg.Connection) -> None:
    """add_many COPYs 100,000 rows from a generator and reports the count."""
    brands = db.repository(BrandRepository)
    assert await brands.add_many(Brand(f"b{i}") for i in range(100_000)) == 100_000
    assert await count_brands(conn) == 100_000


async def test_async_iterable_failing_midway_stores_nothing(
    db: Database, conn: asyncpg.Connection
) -> None:
    """An async iterator that raises part-way: its error propagates and no row is stored."""

    async def produce() -> AsyncIterator[Brand]:
        for i in range(5000):
            if i == 3000:
                raise RuntimeError("source broke")
            yield Brand(f"b{i}")

    with pytest.raises(RuntimeError, match="source broke"):
        await db.repository(BrandRepository).add_many(produce())
    assert await count_brands(conn) == 0
    with pytest.raises(RuntimeError, match="source broke"):
        async with CatalogUnitOfWork(db) as uow:
            await uow.brands.add(Brand("kept only if the unit commits"))
            await uow.brands.add_many(produce())
    assert await count_brands(conn) == 0
    assert db.pool.get_idle_size() == db.pool.get_size()


async def test_copy_failing_on_a_bad_value_names_the_row(
    db: Database, conn: asyncpg.Connection
) -> None:
    """A bad value part-way through a lazy load is a DataError naming the entity and field.

    It is refused client-side as the row is read, which aborts the COPY
    already under way: nothing is stored.
    """
    rows = (Brand(f"b{i}" if i != 1234 else "nul\x00byte") for i in range(5000))
    with pytest.raises(DataError, match=r"brand\.brand_name .*NUL.*entity #1234"):
        await db.repository(BrandRepository).add_many(rows)
    assert await count_brands(conn) == 0


async def test_load_catalog_makes_a_consistent_catalog(db: Database) -> None:
    """The shared generator loads the requested sizes, every sku unique and referenced."""
    async with CatalogUnitOfWork(db) as uow:
        counts = await load_catalog(uow, brands=7, products=40, skus=3000)
    assert (counts.brands, counts.products, counts.skus) == (7, 40, 3000)
    async with db.acquire() as conn:
        distinct = await conn.fetchval(
            "SELECT count(DISTINCT (product_id, product_size_id, product_color_id)) FROM sku"
        )
        assert distinct == 3000
        per_brand = await conn.fetchval("SELECT count(DISTINCT brand_id) FROM product")
        assert per_brand == 7


async def test_add_many_returning_takes_both_paths(db: Database) -> None:
    """Small lists go through unnest(), large ones and generators through a staging table.

    Both give back every entity with its key, in input order.
    """
    brands = db.repository(BrandRepository)
    small = await brands.add_many([Brand(f"s{i}") for i in range(3)], returning=True)
    large = await brands.add_many([Brand(f"l{i}") for i in range(6000)], returning=True)
    lazy = await brands.add_many((Brand(f"g{i}") for i in range(3)), returning=True)
    empty = await brands.add_many([], returning=True)
    assert [b.brand_name for b in small] == ["s0", "s1", "s2"]
    assert [b.brand_id for b in large] == list(range(4, 6004))
    assert [(b.brand_name, b.brand_id) for b in lazy] == [("g0", 6004), ("g1", 6005), ("g2", 6006)]
    assert empty == []
    assert await brands.count() == 6006


async def test_repeated_bulk_calls_reuse_their_statements(db: Database) -> None:
    """Bulk calls of one shape reuse their SQL text: the per-table statement cache stays put."""
    from repo._postgres.sql import statements
    from repo.catalog import BRANDS

    brands = db.repository(BrandRepository)
    await brands.upsert_many([Brand("a")], on="brand_name")
    await brands.add_many((Brand(f"x{i}") for i in range(2)), returning=True)
    cached = len(statements(BRANDS)._other)
    for i in range(5):
        await brands.upsert_many([Brand("a"), Brand(f"b{i}")], on="brand_name")
        await brands.add_many((Brand(f"y{i}-{j}") for j in range(2)), returning=True)
    assert len(statements(BRANDS)._other) == cached
