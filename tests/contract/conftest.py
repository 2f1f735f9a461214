"""The contract's database: a fresh `MemoryDatabase`, or a pool on emptied PostgreSQL tables.

Every test in ``tests/contract/`` takes ``db`` and so runs once per backend;
none of them may ask which backend it has.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypeAlias

import pytest

from repo import Database, DatabaseLike
from repo.testing import MemoryDatabase
from tests.conftest import CATALOG_TABLES, _admin, via_bouncer

AnyDatabase: TypeAlias = DatabaseLike

BACKENDS = ("memory", "postgres")


@pytest.fixture(params=BACKENDS)
def backend_dsn(request: pytest.FixtureRequest) -> str | None:
    """``None`` for the memory backend; the migrated scratch database's DSN for PostgreSQL."""
    if request.param == "memory":
        return None
    dsn: str = request.getfixturevalue("migrated_dsn")
    return dsn


@pytest.fixture
async def db(backend_dsn: str | None) -> AsyncIterator[AnyDatabase]:
    """The database under test, empty: once in memory, once on PostgreSQL."""
    if backend_dsn is None:
        async with MemoryDatabase() as memory:
            yield memory
        return
    await _admin(backend_dsn, f"TRUNCATE {', '.join(CATALOG_TABLES)} RESTART IDENTITY CASCADE")
    async with Database.connect(
        via_bouncer(backend_dsn), min_size=1, max_size=5, acquire_timeout=5
    ) as database:
        yield database
