"""Lookups issued together: each caller gets its own answer, on either backend.

On PostgreSQL pool-level lookups pending at the same moment are coalesced
into one statement (tests/integration/test_coalesce.py counts them); what a
caller sees must be what it would have seen alone, as in memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from repo import ConfigurationError, Database, InvalidQuery, NotFound
from repo.catalog import Brand, BrandRepository, CatalogUnitOfWork
from repo.testing import MemoryDatabase
from tests.conftest import CATALOG_TABLES, _admin, via_bouncer
from tests.contract.conftest import AnyDatabase


async def _brands(db: AnyDatabase, count: int) -> list[Brand]:
    async with CatalogUnitOfWork(db) as uow:
        return [await uow.brands.add(Brand(f"brand {i:03}")) for i in range(count)]


async def test_lookups_issued_together_each_get_their_own_answer(db: AnyDatabase) -> None:
    added = await _brands(db, 30)
    ids = [b.brand_id for b in added]
    brands = db.repository(BrandRepository)
    calls: list[Coroutine[Any, Any, Any]] = [brands.get(i) for i in [*ids, 1000, 1001]]
    calls += [brands.get_many(ids[:5]), brands.get_many([ids[0], 1002, ids[0]])]
    calls += [brands.find_one(brand_id=ids[7]), brands.find_one(brand_id=1003)]
    calls += [brands.find(brand_id=ids[8], limit=5)]
    got: list[Any] = await asyncio.gather(*calls, return_exceptions=True)
    assert got[:30] == added
    for key, result in zip((1000, 1001), got[30:32], strict=True):
        assert isinstance(result, NotFound)
        assert result.key == key
    assert got[32] == added[:5]
    assert isinstance(got[33], NotFound)
    assert got[33].key == [1002]
    assert got[34] == added[7]
    assert got[35] is None
    assert got[36] == [added[8]]


async def test_a_bad_key_fails_only_its_caller(db: AnyDatabase) -> None:
    added = await _brands(db, 2)
    brands = db.repository(BrandRepository)
    got = await asyncio.gather(
        brands.get(added[0].brand_id),
        brands.get("one"),
        brands.get(added[1].brand_id),
        return_exceptions=True,
    )
    assert got[0] == added[0]
    assert isinstance(got[1], InvalidQuery)
    assert got[2] == added[1]


@pytest.mark.parametrize("coalesce", [True, False])
async def test_the_option_is_taken_by_both_backends(
    backend_dsn: str | None, coalesce: bool
) -> None:
    db: AnyDatabase
    if backend_dsn is None:
        db = MemoryDatabase.connect(coalesce=coalesce, coalesce_max=3)
    else:
        await _admin(backend_dsn, f"TRUNCATE {', '.join(CATALOG_TABLES)} RESTART IDENTITY CASCADE")
        db = Database.connect(
            via_bouncer(backend_dsn), min_size=1, max_size=2, coalesce=coalesce, coalesce_max=3
        )
    async with db:
        added = await _brands(db, 10)
        brands = db.repository(BrandRepository)
        got = await asyncio.gather(*(brands.get(b.brand_id) for b in added))
        assert got == added


@pytest.mark.parametrize(
    "options", [{"coalesce": "yes"}, {"coalesce_max": 0}, {"coalesce_max": 2.5}]
)
def test_bad_coalesce_options_are_refused_by_both(options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        MemoryDatabase.connect(**options)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        Database.connect(**options)  # type: ignore[arg-type]
