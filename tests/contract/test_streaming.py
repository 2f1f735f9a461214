"""Streams and cursors: the same rows, batches and moves in memory and on PostgreSQL."""

from __future__ import annotations

import pytest

from repo import InvalidQuery, InvalidState
from repo.catalog import Brand, BrandRepository, CatalogUnitOfWork

from .conftest import AnyDatabase


async def test_unit_of_work_can_write_while_it_streams(db: AnyDatabase) -> None:
    """The loop body may use the unit's other repositories between batches."""
    await db.repository(BrandRepository).add_many(Brand(f"b{i}") for i in range(50))
    async with CatalogUnitOfWork(db) as uow:
        async for brand in uow.brands.stream(order_by="brand_id", prefetch=7):
            await uow.brands.update(Brand(brand.brand_name.upper(), brand.brand_id))
    names = {b.brand_name for b in await db.repository(BrandRepository).find()}
    assert names == {f"B{i}" for i in range(50)}


async def test_stream_filters_and_order(db: AnyDatabase) -> None:
    """stream() takes the same filters and order as find()."""
    brands = db.repository(BrandRepository)
    await brands.add_many(Brand(f"b{i:02}") for i in range(30))
    got = [b.brand_name async for b in brands.stream(brand_name="b07")]
    assert got == ["b07"]
    desc = [b.brand_id async for b in brands.stream(order_by="-brand_id", prefetch=4)]
    assert desc == list(range(30, 0, -1))
    assert await brands.stream(brand_name="nothing").to_list() == []


async def test_cursor_moves_forward_and_fetch(db: AnyDatabase) -> None:
    """A cursor skips ahead with forward() and takes batches with fetch(), in a unit or not."""
    await db.repository(BrandRepository).add_many(Brand(f"b{i:03}") for i in range(100))
    async with CatalogUnitOfWork(db) as uow, uow.brands.cursor(order_by="brand_id") as cur:
        assert await cur.forward(10) == 10
        assert [b.brand_id for b in await cur.fetch(3)] == [11, 12, 13]
        row = await cur.fetchrow()
        assert row is not None
        assert row.brand_id == 14
        assert await cur.forward(1000) == 86
        assert await cur.fetch(5) == []
        assert await cur.fetchrow() is None
    async with db.repository(BrandRepository).cursor(brand_id=95) as cur:
        assert [b.brand_name for b in await cur.fetch(10)] == ["b094"]
    with pytest.raises(InvalidState):
        await cur.fetch(1)


async def test_bad_stream_arguments_are_refused(db: AnyDatabase) -> None:
    """A non-positive prefetch or an unknown field raises InvalidQuery before any SQL."""
    brands = db.repository(BrandRepository)
    for bad in (0, -5, "10", True):
        with pytest.raises(InvalidQuery, match="prefetch"):
            brands.stream(prefetch=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidQuery, match="no field"):
        brands.stream(colour="red")
    with pytest.raises(InvalidQuery, match="order_by"):
        brands.stream(order_by="colour")
    async with brands.cursor() as cur:
        with pytest.raises(InvalidQuery):
            await cur.forward(-1)
