"""Keyset pages: the same pages and tokens in memory and on PostgreSQL."""

from __future__ import annotations

import pytest

from repo import InvalidQuery, Page, gt
from repo.catalog import Brand, BrandRepository

from .conftest import AnyDatabase


async def test_pages_cover_every_row_once_while_rows_are_inserted(db: AnyDatabase) -> None:
    """Walking pages while others insert: every original row exactly once, none repeated."""
    brands = db.repository(BrandRepository)
    await brands.add_many(Brand(f"brand {i:04}") for i in range(1000))
    seen: list[int] = []
    after = None
    pages = 0
    while True:
        page = await brands.page(after=after, limit=97)
        seen.extend(b.brand_id or 0 for b in page)
        pages += 1
        await brands.add_many(Brand(f"new {pages}-{i}") for i in range(5))
        if page.next is None:
            break
        after = page.next
    assert len(seen) == len(set(seen))
    assert set(range(1, 1001)) <= set(seen)
    # Rows inserted behind the cursor (higher keys) are reached too, once each.
    assert set(seen) == set(range(1, len(seen) + 1))


async def test_page_with_order_and_filters(db: AnyDatabase) -> None:
    """A page may order by a unique, non-null field (key as tie-breaker) and filter."""
    brands = db.repository(BrandRepository)
    await brands.add_many(Brand(f"b{i:02}") for i in range(25))
    first = await brands.page(limit=10, order_by="-brand_name", brand_id=gt(5))
    assert [b.brand_name for b in first] == [f"b{i:02}" for i in range(24, 14, -1)]
    assert first.has_more
    second = await brands.page(after=first.next, limit=10, order_by="-brand_name", brand_id=gt(5))
    # brand_id > 5 keeps b05..b24 (b{i} has id i + 1): ten are left, and no more.
    assert [b.brand_name for b in second] == [f"b{i:02}" for i in range(14, 4, -1)]
    assert second.next is None
    assert not second.has_more


async def test_empty_and_exact_pages(db: AnyDatabase) -> None:
    """No rows: one empty last page; exactly `limit` rows: no next page."""
    brands = db.repository(BrandRepository)
    assert await brands.page(limit=5) == Page([], None)
    await brands.add_many(Brand(f"b{i}") for i in range(5))
    page = await brands.page(limit=5)
    assert len(page) == 5
    assert page.next is None


async def test_tampered_or_foreign_tokens_are_refused(db: AnyDatabase) -> None:
    """A token altered, truncated, or made for another ordering raises InvalidQuery."""
    brands = db.repository(BrandRepository)
    await brands.add_many(Brand(f"b{i}") for i in range(10))
    token = (await brands.page(limit=3)).next
    assert token is not None
    body, tag = token.split(".")
    for bad in (body[:-2] + "xx." + tag, body + "." + tag[::-1], token[:-3], "", "garbage", 42):
        with pytest.raises(InvalidQuery, match="token"):
            await brands.page(after=bad, limit=3)  # type: ignore[arg-type]
    with pytest.raises(InvalidQuery, match="token"):
        await brands.page(after=token, limit=3, order_by="brand_name")
    assert len(await brands.page(after=token, limit=3)) == 3


async def test_bad_page_arguments(db: AnyDatabase) -> None:
    """limit must be positive; order keys known, one direction, not nullable."""
    brands = db.repository(BrandRepository)
    for limit in (0, -1, "5", None):
        with pytest.raises(InvalidQuery, match="limit"):
            await brands.page(limit=limit)  # type: ignore[arg-type]
    with pytest.raises(InvalidQuery, match="same direction"):
        await brands.page(order_by=["brand_name", "-brand_id"])
    with pytest.raises(InvalidQuery, match="no field"):
        await brands.page(order_by="colour")
