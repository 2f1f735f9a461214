"""Fixtures: a scratch database per test session, migrated with Alembic.

The server is $DATABASE_URL's, else the embedded one. The session makes its
own database on it (never touching the data already there), runs
``alembic upgrade head``, and drops it at the end. Each test starts from
empty tables (TRUNCATE ... RESTART IDENTITY), so tests run in any order.
"""

from __future__ import annotations

import asyncio
import os
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from repo import Database
from repo._postgres.dsn import resolve_dsn, with_database
from repo.migrations import upgrade

pytest_plugins = ["repo.testing.pytest_plugin"]

ROOT = Path(__file__).resolve().parent.parent

CATALOG_TABLES = ("sku", "product", "product_color", "product_size", "brand")


def via_bouncer(dsn: str) -> str:
    """`dsn` as the library under test reaches it.

    That is `dsn` itself, or through the PgBouncer listening on
    ``$REPO_TEST_PGBOUNCER_PORT`` when tests/integration/test_pgbouncer.py runs
    a test module through one. Setup (databases, migrations) and the tests'
    own raw connections always go straight to the server.
    """
    port = os.environ.get("REPO_TEST_PGBOUNCER_PORT")
    if not port:
        return dsn
    parts = urllib.parse.urlsplit(dsn)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


async def _admin(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def create_database(server_dsn: str, prefix: str) -> str:
    """Make an empty scratch database on the server; return its DSN."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(server_dsn, f'CREATE DATABASE "{name}"'))
    return with_database(server_dsn, name)


def drop_database(server_dsn: str, dsn: str) -> None:
    name = urllib.parse.urlsplit(dsn).path.lstrip("/")
    asyncio.run(_admin(server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def server_dsn() -> str:
    """The server under test: $DATABASE_URL's, else the embedded one."""
    return resolve_dsn()


@pytest.fixture(scope="session")
def migrated_dsn(server_dsn: str) -> Iterator[str]:
    """A scratch database at Alembic head, for the whole session."""
    dsn = create_database(server_dsn, "repo_test")
    try:
        upgrade(dsn, "head")
        yield dsn
    finally:
        drop_database(server_dsn, dsn)


@pytest.fixture(scope="session")
def rollback_dsn(migrated_dsn: str) -> str:
    """`rollback_db` (from repo.testing's plugin) runs on the migrated scratch database."""
    return migrated_dsn


@pytest.fixture
async def dsn(migrated_dsn: str) -> str:
    """The scratch database's DSN, its catalog tables emptied for this test."""
    tables = ", ".join(CATALOG_TABLES)
    await _admin(migrated_dsn, f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    return via_bouncer(migrated_dsn)


@pytest.fixture
async def db(dsn: str) -> AsyncIterator[Database]:
    """An open pool (up to 5 connections) on empty catalog tables."""
    async with Database.connect(dsn, min_size=1, max_size=5, acquire_timeout=5) as database:
        yield database


@pytest.fixture
async def conn(dsn: str, migrated_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A second, independent connection (straight to the server): to see what others see."""
    connection = await asyncpg.connect(migrated_dsn)
    try:
        yield connection
    finally:
        await connection.close()


BIG = 200_000


async def _load_brands(dsn: str, count: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "brand", records=((f"brand {i:06}",) for i in range(count)), columns=["brand_name"]
        )
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def big_dsn(server_dsn: str) -> Iterator[str]:
    """A scratch database at head holding 200,000 brands, read-only for the module's tests."""
    dsn = create_database(server_dsn, "repo_big")
    try:
        upgrade(dsn, "head")
        asyncio.run(_load_brands(dsn, BIG))
        yield dsn
    finally:
        drop_database(server_dsn, dsn)


async def sessions_in_transaction(dsn: str) -> int:
    """Server sessions on `dsn`'s database sitting 'idle in transaction'."""
    # No named statements: `dsn` may lead through PgBouncer.
    conn = await asyncpg.connect(dsn, statement_cache_size=0)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND state LIKE 'idle in transaction%' "
            "AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return count


def pool_is_idle(db: Database) -> bool:
    """Every connection of `db` is back in its pool."""
    return db.pool.get_idle_size() == db.pool.get_size()


# Under pytest-xdist (tasks.py runs the suite on several workers), tests that
# start the embedded default share its data directory, so they run on one
# worker, one after another; so do the heavy fault, load and cluster tests,
# whose timings a second heavy test beside them would distort.
EMBEDDED_MODULES = frozenset({"test_embedded.py", "test_other_path.py", "test_demo.py"})


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Before pytest-xdist's own hook (--dist loadgroup), which reads the groups
    # into the node ids (test_demo.py checks that it did).
    for item in items:
        if item.path.name in EMBEDDED_MODULES:
            item.add_marker(pytest.mark.xdist_group("embedded"))
        elif item.get_closest_marker("reliability") or item.get_closest_marker("cluster"):
            item.add_marker(pytest.mark.xdist_group("heavy"))


def other_path_env(server_dsn: str) -> dict[str, str]:
    """The environment of the database path this run does not use.

    With $DATABASE_URL set: without it (the embedded default). Without it:
    $DATABASE_URL pointing at this run's (embedded) server.
    """
    env = dict(os.environ, REPO_OTHER_PATH="1")
    if env.pop("DATABASE_URL", None) is None:
        env["DATABASE_URL"] = server_dsn
    return env
