"""MemoryDatabase's own surface: what has no PostgreSQL counterpart to compare with."""

from __future__ import annotations

import pytest

from repo import InvalidQuery, InvalidState, NotSupportedInMemory
from repo.catalog import (
    Brand,
    BrandRepository,
    CatalogUnitOfWork,
    MemorySkuRepository,
    SkuRepository,
)
from repo.testing import MemoryDatabase


async def test_memory_db_fixture_is_fresh(memory_db: MemoryDatabase) -> None:
    """The plugin's ``memory_db`` is an empty MemoryDatabase of its own."""
    assert await memory_db.repository(BrandRepository).count() == 0
    await memory_db.repository(BrandRepository).add(Brand("acme"))


async def test_connect_await_and_close() -> None:
    """connect() works as `await` and `async with`; a closed database refuses calls."""
    db = await MemoryDatabase.connect("postgresql://ignored/db", max_size=3)
    brands = db.repository(BrandRepository)
    await brands.add(Brand("acme"))
    await db.close()
    with pytest.raises(InvalidState, match="closed"):
        await brands.count()


async def test_sql_only_features_say_they_need_a_server() -> None:
    """The raw connection, acquire() and a caller's connection raise NotSupportedInMemory."""
    db = MemoryDatabase()
    async with CatalogUnitOfWork(db) as uow:
        with pytest.raises(NotSupportedInMemory, match="connection"):
            _ = uow.connection
    with pytest.raises(NotSupportedInMemory):
        db.acquire()
    with pytest.raises(NotSupportedInMemory):
        db.repository(BrandRepository, connection=object())


def test_overrides_must_subclass_the_repository() -> None:
    """An override that is not a subclass of the repository it replaces is refused."""
    with pytest.raises(InvalidQuery, match="subclass"):
        MemoryDatabase(overrides={SkuRepository: BrandRepository})


async def test_registered_override_is_used() -> None:
    """The catalog's memory_override makes SkuRepository a MemorySkuRepository in memory."""
    db = MemoryDatabase()
    assert type(db.repository(SkuRepository)) is MemorySkuRepository
    async with CatalogUnitOfWork(db) as uow:
        assert type(uow.skus) is MemorySkuRepository
