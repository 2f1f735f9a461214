"""Server-side cursor streams and cursor moves on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import AsyncIterator

import pytest

from repo import Database, InvalidState
from repo.catalog import (
    Brand,
    BrandRepository,
    CatalogUnitOfWork,
    SkuRepository,
    SkuView,
    load_catalog,
)
from repo.catalog._repositories import SKU_VIEW_SQL
from tests.conftest import BIG, pool_is_idle, sessions_in_transaction, via_bouncer


@pytest.fixture
async def big(big_dsn: str) -> AsyncIterator[Database]:
    """A pool on the 200,000-brand database."""
    async with Database.connect(via_bouncer(big_dsn), min_size=1, max_size=3) as db:
        yield db


async def settle(db: Database) -> None:
    """Let the cleanup of a stream dropped mid-way (scheduled when it is collected) finish."""
    gc.collect()
    for _ in range(200):
        if pool_is_idle(db):
            return
        await asyncio.sleep(0.01)


async def assert_released(db: Database, dsn: str) -> None:
    await settle(db)
    assert pool_is_idle(db)
    assert await sessions_in_transaction(dsn) == 0


async def test_stream_200k_rows_in_a_unit_of_work(big: Database, big_dsn: str) -> None:
    """A unit of work streams every row, in order, through its own transaction."""
    seen = 0
    last = 0
    async with CatalogUnitOfWork(big, readonly=True) as uow:
        async for brand in uow.brands.stream(order_by="brand_id", prefetch=5000):
            assert (brand.brand_id or 0) > last
            last = brand.brand_id or 0
            seen += 1
    assert seen == BIG
    await assert_released(big, big_dsn)


async def test_stream_200k_rows_at_pool_level(big: Database, big_dsn: str) -> None:
    """A pool-level stream holds one connection in a transaction only while it runs."""
    brands = big.repository(BrandRepository)
    seen = 0
    async for _ in brands.stream():
        if seen == 0:
            assert await sessions_in_transaction(big_dsn) == 1
        seen += 1
    assert seen == BIG
    await assert_released(big, big_dsn)


async def test_stream_memory_is_bounded_by_prefetch(big: Database) -> None:
    """Streaming 200,000 rows holds about one batch: far less than the whole result."""
    brands = big.repository(BrandRepository)
    tracemalloc.start()
    try:
        count = 0
        async for _ in brands.stream(prefetch=1000):
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == BIG
    # The whole result as Brand objects and records is tens of MiB; one batch
    # of 1,000 rows is well under one.
    assert peak < 8 * 1024 * 1024


async def test_break_releases_the_connection(big: Database, big_dsn: str) -> None:
    """Breaking out of a pool-level stream rolls back and returns its connection."""
    brands = big.repository(BrandRepository)
    async for brand in brands.stream(prefetch=100):
        if brand.brand_id == 250:
            break
    await assert_released(big, big_dsn)
    async with brands.stream(prefetch=100) as rows:
        async for _ in rows:
            break
    assert pool_is_idle(big)


async def test_exception_in_the_loop_releases_the_connection(big: Database, big_dsn: str) -> None:
    """An exception raised in the loop body releases the stream's connection."""
    brands = big.repository(BrandRepository)
    with pytest.raises(RuntimeError, match="stop"):
        async for brand in brands.stream(prefetch=100):
            if brand.brand_id == 1234:
                raise RuntimeError("stop")
    await assert_released(big, big_dsn)


async def test_cancellation_releases_the_connection(big: Database, big_dsn: str) -> None:
    """Cancelling a task mid-stream releases its connection, outside a transaction."""
    brands = big.repository(BrandRepository)
    started = asyncio.Event()

    async def consume() -> int:
        n = 0
        async for _ in brands.stream(prefetch=500):
            n += 1
            if n == 1000:
                started.set()
            await asyncio.sleep(0)
        return n

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await assert_released(big, big_dsn)


async def test_hand_written_sql_streams_onto_a_read_model(db: Database) -> None:
    """stream_query and cursor_query map hand-written SQL rows onto an attrs class."""
    async with CatalogUnitOfWork(db) as uow:
        await load_catalog(uow, brands=2, products=3, skus=30)
    skus = db.repository(SkuRepository)
    views = [v async for v in skus.stream_query(SkuView, SKU_VIEW_SQL, 1, prefetch=3)]
    assert len(views) == 10
    assert all(isinstance(v, SkuView) for v in views)
    assert views == await skus.views_of_product(1)
    async with skus.cursor_query(SkuView, SKU_VIEW_SQL, 2) as cur:
        await cur.forward(8)
        assert len(await cur.fetch(100)) == 2


async def test_streaming_on_a_raw_connection_needs_a_transaction(db: Database) -> None:
    """On a caller's connection outside a transaction, streaming raises InvalidState."""
    async with db.acquire() as conn:
        brands = db.repository(BrandRepository, connection=conn)
        await brands.add(Brand("x"))
        with pytest.raises(InvalidState, match="transaction"):
            await brands.stream().to_list()
        async with conn.transaction():
            assert [b.brand_name async for b in brands.stream()] == ["x"]
