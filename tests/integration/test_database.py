"""The pool: connect, concurrency, bounded waits, options, and the password kept secret."""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from typing import Any, cast

import asyncpg
import pytest

from repo import (
    ConfigurationError,
    ConnectionLost,
    Database,
    InvalidState,
    PoolEvent,
    PoolTimeout,
    ReadOnlyViolation,
)
from repo._postgres.dsn import with_database
from repo.catalog import Brand, BrandRepository, CatalogUnitOfWork

pytestmark = pytest.mark.smoke

PASSWORD = "s3cr3t-Pa55word"


def with_password(dsn: str, password: str = PASSWORD) -> str:
    parts = urllib.parse.urlsplit(dsn)
    user = parts.username or "postgres"
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


async def test_connect_with_await_and_close(dsn: str) -> None:
    """Database.connect() works with await + close() as well as async with."""
    db = await Database.connect(dsn, min_size=2)
    try:
        assert db.pool.get_size() == 2
        assert await db.repository(BrandRepository).count() == 0
    finally:
        await db.close()
    with pytest.raises(InvalidState):
        _ = db.pool


async def test_connect_uses_database_url(dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no DSN argument, $DATABASE_URL is used."""
    monkeypatch.setenv("DATABASE_URL", dsn)
    async with Database.connect() as db:
        assert await db.repository(BrandRepository).count() == 0
        assert urllib.parse.urlsplit(dsn).path in db.dsn


async def test_gather_over_50_reads_on_a_pool_of_5(db: Database) -> None:
    """50 pooled reads gathered on a pool of 5 all complete, each with the right row."""
    brands = db.repository(BrandRepository)
    added = [await brands.add(Brand(f"brand {i}")) for i in range(50)]
    got = await asyncio.gather(*(brands.get(b.brand_id) for b in added))
    assert got == added
    assert db.pool.get_size() <= 5


async def test_pool_reads_really_run_concurrently(dsn: str) -> None:
    """Pool-level calls each take their own connection: 5 sleeps of 0.3 s overlap."""
    async with Database.connect(dsn, min_size=5, max_size=5) as db:
        brands = db.repository(BrandRepository)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.gather(*(brands.scalar("SELECT pg_sleep(0.3)") for _ in range(5)))
        elapsed = loop.time() - start
    # Sequentially this is 1.5 s; concurrently about 0.3 s. The bound is loose
    # on purpose: it tells overlap from no overlap, not speed.
    assert elapsed < 1.2


async def test_pool_timeout_when_exhausted(dsn: str) -> None:
    """With every connection held, the next acquire raises PoolTimeout instead of hanging."""
    async with Database.connect(dsn, min_size=1, max_size=2, acquire_timeout=0.2) as db:
        async with CatalogUnitOfWork(db), CatalogUnitOfWork(db):
            with pytest.raises(PoolTimeout, match="raise max_size"):
                async with CatalogUnitOfWork(db):
                    pass
            with pytest.raises(PoolTimeout):
                await db.repository(BrandRepository).count()
            with pytest.raises(TimeoutError):
                await db.repository(BrandRepository).count()
        assert await db.repository(BrandRepository).count() == 0


def test_unbounded_acquire_timeout_is_refused() -> None:
    """acquire_timeout must be bounded."""
    with pytest.raises(ConfigurationError, match="acquire_timeout"):
        Database.connect("postgresql://x@localhost/db", acquire_timeout=None)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="max_size"):
        Database.connect("postgresql://x@localhost/db", min_size=3, max_size=2)


async def test_password_absent_from_repr_logs_and_errors(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """repr(db), log lines and connection errors show *** instead of the password."""
    caplog.set_level(logging.DEBUG, logger="repo")
    secret_dsn = with_password(dsn)
    async with Database.connect(secret_dsn) as db:
        assert PASSWORD not in repr(db)
        assert "***" in repr(db)
        assert PASSWORD not in db.dsn
    assert caplog.records
    assert all(PASSWORD not in r.getMessage() for r in caplog.records)

    unreachable = with_password("postgresql://postgres@127.0.0.1:1/nowhere")
    with pytest.raises(ConnectionLost) as got:
        await Database.connect(unreachable, connect_timeout=2)
    assert PASSWORD not in str(got.value)
    assert "127.0.0.1:1" in str(got.value)

    missing_db = with_password(with_database(dsn, "no_such_database_here"))
    with pytest.raises(ConfigurationError) as bad:
        await Database.connect(missing_db)
    assert PASSWORD not in str(bad.value)
    assert "no_such_database_here" in str(bad.value)


@pytest.mark.parametrize(
    "bad",
    ["", "mysql://u:pw@h/db", "host=localhost password=pw", "postgresql://u:pw@h:notaport/db"],
)
def test_bad_dsn_syntax_is_a_configuration_error(bad: str) -> None:
    """A DSN that is not a postgresql:// URI is refused up front, without its password."""
    with pytest.raises(ConfigurationError) as got:
        Database.connect(bad)
    assert "pw" not in str(got.value).replace("postgresql", "")


async def test_json_is_decoded_and_encoded_by_default(db: Database) -> None:
    """json and jsonb columns round-trip Python objects."""
    async with db.acquire() as conn:
        value = {"a": [1, 2, {"b": None}], "c": "d"}
        assert await conn.fetchval("SELECT $1::jsonb", value) == value
        assert await conn.fetchval("SELECT '[1, 2]'::json") == [1, 2]


async def test_init_hook_and_server_settings(dsn: str) -> None:
    """init runs on every new connection; server_settings reach the session."""
    seen: list[int] = []

    async def init(conn: asyncpg.Connection) -> None:
        seen.append(conn.get_server_pid())

    async with (
        Database.connect(
            dsn,
            min_size=2,
            max_size=2,
            init=init,
            server_settings={"application_name": "repo-test"},
        ) as db,
        db.acquire() as conn,
    ):
        assert await conn.fetchval("SHOW application_name") == "repo-test"
    assert len(seen) == 2


async def test_max_queries_replaces_connections(dsn: str) -> None:
    """After max_queries a connection is replaced by a new backend."""
    async with Database.connect(dsn, min_size=1, max_size=1, max_queries=2) as db:
        pids = set()
        for _ in range(6):
            async with db.acquire() as conn:
                pids.add(await conn.fetchval("SELECT pg_backend_pid()"))
    assert len(pids) >= 3


async def test_statement_cache_size_zero_is_honoured(dsn: str) -> None:
    """statement_cache_size=0 reaches asyncpg (needed behind PgBouncer)."""
    async with Database.connect(dsn, statement_cache_size=0) as db:
        brands = db.repository(BrandRepository)
        await brands.add(Brand("a"))
        assert await brands.count() == 1
        async with db.acquire() as conn:
            raw: Any = conn
            assert raw._con._stmt_cache.get_max_size() == 0


async def test_raw_connection_escape_hatch(db: Database) -> None:
    """db.acquire() lends a raw asyncpg connection and takes it back."""
    async with db.acquire() as conn:
        assert isinstance(cast(object, conn), asyncpg.Connection)
        assert await conn.fetchval("SELECT 1") == 1
    assert db.pool.get_idle_size() == db.pool.get_size()


def test_repository_takes_a_repository_class() -> None:
    """db.repository() refuses anything but a Repository subclass."""
    db = Database.connect("postgresql://x@localhost/db")
    with pytest.raises(InvalidState):
        db.repository(Brand)


async def test_a_pool_level_write_refused_as_read_only_replaces_its_connection(dsn: str) -> None:
    """A write answered with 25006 (a primary demoted to a standby) never reuses the connection.

    Here every session is read-only, as every session of a demoted primary is:
    each refused write, single or bulk, terminates its connection rather than
    hand it to the next caller.
    """
    events: list[PoolEvent] = []

    def hook(event: object) -> None:
        if isinstance(event, PoolEvent) and event.kind == "connection_replaced":
            events.append(event)

    async with Database.connect(
        dsn,
        min_size=1,
        max_size=2,
        server_settings={"default_transaction_read_only": "on"},
        on_event=hook,
    ) as db:
        brands = db.repository(BrandRepository)
        with pytest.raises(ReadOnlyViolation):
            await brands.add(Brand("acme"))
        with pytest.raises(ReadOnlyViolation):
            await brands.add_many([Brand("a"), Brand("b")])
        assert len(events) == 2
        assert await brands.count() == 0
