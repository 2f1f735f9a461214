"""pytest fixtures for code built on `repo`; enable with ``pytest_plugins``.

In the top-level ``conftest.py``::

    pytest_plugins = ["repo.testing.pytest_plugin"]

- ``memory_db``: a fresh `MemoryDatabase` per test; no server needed.
- ``rollback_db``: a real database (``rollback_dsn``: ``$DATABASE_URL``, else
  the embedded server) whose test runs inside one transaction rolled back at
  the end; units of work inside are savepoints. Override the
  ``rollback_dsn`` fixture to point it at a migrated test database, and
  ``rollback_init`` to give its connection the ``init`` hook your
  ``Database.connect(init=...)`` has (its json codecs it has already).

Requires pytest-asyncio (``asyncio_mode = "auto"`` or marked tests).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from repo._postgres.dsn import resolve_dsn
from repo._postgres.rollback import RollbackDatabase, rollback_database

from ._memory import MemoryDatabase

__all__ = ["memory_db", "rollback_db", "rollback_dsn", "rollback_init"]


@pytest.fixture
async def memory_db() -> AsyncIterator[MemoryDatabase]:
    """A fresh, empty `MemoryDatabase`, closed after the test."""
    async with MemoryDatabase() as db:
        yield db


@pytest.fixture(scope="session")
def rollback_dsn() -> str:
    """The database `rollback_db` runs on: ``$DATABASE_URL``, else the embedded server."""
    return resolve_dsn()


@pytest.fixture(scope="session")
def rollback_init() -> Callable[[asyncpg.Connection], Awaitable[None]] | None:
    """The ``init`` hook run on `rollback_db`'s connection, as on the pool's: none by default."""
    return None


@pytest.fixture
async def rollback_db(
    rollback_dsn: str, rollback_init: Callable[[asyncpg.Connection], Awaitable[None]] | None
) -> AsyncIterator[RollbackDatabase]:
    """A real database; everything the test does in it is rolled back afterwards."""
    async with rollback_database(rollback_dsn, init=rollback_init) as db:
        yield db
