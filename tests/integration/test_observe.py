"""Observability: the ``repo.sql`` logger and the event hooks, on a real server."""

from __future__ import annotations

import asyncio
import logging
import re
import urllib.parse
from collections.abc import AsyncIterator

import asyncpg
import pytest

from repo import ConfigurationError, Database, PoolEvent, StatementEvent, UniqueViolation
from repo.catalog import Brand, BrandRepository, CatalogUnitOfWork

PASSWORD = "s3cr3t-pw"
SECRET = "hunter2-secret-brand"


def with_password(dsn: str) -> str:
    parts = urllib.parse.urlsplit(dsn)
    user = parts.username or "postgres"
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:{PASSWORD}@{host}"))


def sql_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "repo.sql"]


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every record's message, arguments and traceback, as one text."""
    parts = []
    for r in caplog.records:
        parts += [r.getMessage(), repr(r.args), r.exc_text or ""]
    return "\n".join(parts)


@pytest.fixture
async def debug_db(dsn: str, caplog: pytest.LogCaptureFixture) -> AsyncIterator[Database]:
    caplog.set_level(logging.DEBUG, logger="repo.sql")
    async with Database.connect(with_password(dsn), max_size=2) as db:
        yield db


async def test_statement_logged_at_debug(
    debug_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Each statement is one DEBUG record on repo.sql: the SQL, its duration and rows."""
    brands = debug_db.repository(BrandRepository)
    added = await brands.add(Brand("acme"))
    caplog.clear()
    await brands.get(added.brand_id)
    [record] = sql_records(caplog)
    assert (record.levelno, record.name) == (logging.DEBUG, "repo.sql")
    pattern = r'"SELECT .* FROM .*brand.* WHERE .*brand_id.* = \$1" took \d+\.\d\d ms, 1 row'
    assert re.fullmatch(pattern, record.getMessage()), record.getMessage()
    caplog.clear()
    assert await brands.find(brand_name="nobody") == []
    [record] = sql_records(caplog)
    assert record.getMessage().endswith(" 0 rows")


async def test_statements_collapsed_to_one_line(
    debug_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """A multi-line statement is logged on one line, a long one cut at 500 characters."""
    brands = debug_db.repository(BrandRepository)
    await brands.scalar("SELECT\n    1\n    + 1")
    assert sql_records(caplog)[-1].getMessage().startswith('"SELECT 1 + 1" took ')
    long_sql = "SELECT " + " + ".join(["1"] * 400)
    await brands.scalar(long_sql)
    message = sql_records(caplog)[-1].getMessage()
    assert message.startswith('"SELECT 1 + 1 + ')
    assert len(message.split('"')[1]) == 500
    assert message.split('"')[1].endswith("...")


async def test_unit_of_work_statements(
    debug_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """BEGIN, SAVEPOINT, ROLLBACK TO and COMMIT are logged like any statement."""
    async with CatalogUnitOfWork(debug_db) as uow:
        await uow.brands.add(Brand("acme"))
        with pytest.raises(UniqueViolation):
            async with uow.savepoint():
                await uow.brands.add(Brand("acme"))
    messages = [r.getMessage() for r in sql_records(caplog)]
    starts = [m.split('"')[1].split()[0] for m in messages]
    assert starts == ["BEGIN", "INSERT", "SAVEPOINT", "INSERT", "ROLLBACK", "COMMIT"]
    assert "failed after" in messages[3]
    assert messages[3].endswith("UniqueViolationError")
    assert messages[1].endswith("1 row")


async def test_stream_batches_logged(debug_db: Database, caplog: pytest.LogCaptureFixture) -> None:
    """A pool-level stream logs its BEGIN, the cursor's query, each FETCH batch, its ROLLBACK."""
    brands = debug_db.repository(BrandRepository)
    await brands.add_many([Brand(f"b{i}") for i in range(5)])
    caplog.clear()
    assert len([b async for b in brands.stream(prefetch=2)]) == 5
    messages = [m for m in (r.getMessage() for r in sql_records(caplog)) if m.startswith('"')]
    assert messages[0].startswith('"BEGIN READ ONLY" took ')
    assert messages[1].startswith('"SELECT "brand_name", "brand_id" FROM "brand"')
    fetches = [m for m in messages if m.startswith('"FETCH 2 FROM cursor for SELECT')]
    assert [m.rpartition(", ")[2] for m in fetches] == ["2 rows", "2 rows", "1 row"]
    assert messages[-1].startswith('"ROLLBACK" took ')


async def test_failing_statement_logged(
    debug_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """A failed statement is logged with the driver's error class, never its values."""
    brands = debug_db.repository(BrandRepository)
    await brands.add(Brand(SECRET))
    caplog.clear()
    with pytest.raises(UniqueViolation):
        await brands.add(Brand(SECRET))
    [record] = sql_records(caplog)
    assert record.levelno == logging.DEBUG
    assert re.fullmatch(
        r'"INSERT INTO .*" failed after \d+\.\d\d ms: UniqueViolationError', record.getMessage()
    )
    assert SECRET not in everything_logged(caplog)


async def test_slow_statement_is_a_warning(dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    """A statement over slow_statement is a WARNING even with DEBUG off."""
    caplog.set_level(logging.WARNING, logger="repo.sql")
    # A threshold far above what a count takes even on a loaded machine, so
    # that only the sleep crosses it.
    async with Database.connect(dsn, slow_statement=0.5) as db:
        brands = db.repository(BrandRepository)
        await brands.count()
        assert sql_records(caplog) == []
        await brands.execute("SELECT pg_sleep(0.6)")
    [record] = sql_records(caplog)
    assert record.levelno == logging.WARNING
    assert re.fullmatch(
        r'"SELECT pg_sleep\(0.6\)" took \d+\.\d\d ms, 1 row \(slow: over 0.5s\)',
        record.getMessage(),
    )


async def test_slow_statement_off(dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    """slow_statement=None never warns; a negative threshold is refused."""
    caplog.set_level(logging.WARNING, logger="repo.sql")
    async with Database.connect(dsn, slow_statement=None) as db:
        await db.repository(BrandRepository).execute("SELECT pg_sleep(0.02)")
    assert sql_records(caplog) == []
    with pytest.raises(ConfigurationError, match="slow_statement"):
        Database.connect(dsn, slow_statement=-1)


async def test_no_parameter_value_or_password_by_default(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With the default settings no parameter value and no password appears in any record."""
    caplog.set_level(logging.DEBUG)
    seen: list[StatementEvent | PoolEvent] = []
    async with Database.connect(with_password(dsn), slow_statement=0, on_event=seen.append) as db:
        brands = db.repository(BrandRepository)
        added = await brands.add(Brand(SECRET))
        await brands.find_one(brand_name=SECRET)
        await brands.add_many([Brand(f"{SECRET}-{i}") for i in range(3)])
        with pytest.raises(UniqueViolation):
            await brands.add(Brand(SECRET))
        async with CatalogUnitOfWork(db, readonly=True) as uow:
            assert [b async for b in uow.brands.stream(brand_name=SECRET)] == [added]
    text = everything_logged(caplog)
    assert "repo.sql" in {r.name for r in caplog.records}
    assert any(r.levelno == logging.WARNING for r in sql_records(caplog))
    assert "COPY" in text
    assert "FETCH" in text
    assert SECRET not in text
    assert PASSWORD not in text
    assert SECRET not in repr(seen)
    assert PASSWORD not in repr(seen)


async def test_log_parameters_shows_them(dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    """log_parameters=True adds the values to the records (and only then)."""
    caplog.set_level(logging.DEBUG, logger="repo.sql")
    async with Database.connect(dsn, log_parameters=True) as db:
        await db.repository(BrandRepository).find_one(brand_name=SECRET)
    [record] = [r for r in sql_records(caplog) if "SELECT" in r.getMessage()]
    assert record.getMessage().endswith(f"; parameters: ('{SECRET}', 2)")


async def test_hook_receives_structured_events(dsn: str) -> None:
    """on_event gets a StatementEvent per statement with the rows and parameter count."""
    seen: list[StatementEvent | PoolEvent] = []
    async with Database.connect(dsn, on_event=seen.append) as db:
        brands = db.repository(BrandRepository)
        seen.clear()
        added = await brands.add(Brand(SECRET))
        await brands.get(added.brand_id)
        await brands.add_many([Brand("a"), Brand("b")])
        with pytest.raises(UniqueViolation):
            await brands.add(Brand("a"))
        updated = await brands.execute("UPDATE brand SET brand_name = brand_name || '!'")
    statements = [e for e in seen if isinstance(e, StatementEvent)]
    assert updated == "UPDATE 3"
    assert [(e.sql.split()[0], e.rows, e.parameters, e.error) for e in statements] == [
        ("INSERT", 1, 1, None),
        ("SELECT", 1, 1, None),
        ("BEGIN", None, 0, None),
        ("COPY", 2, 0, None),
        ("COMMIT", None, 0, None),
        ("INSERT", None, 1, "UniqueViolationError"),
        ("UPDATE", 3, 0, None),
    ]
    assert all(e.duration > 0 and not e.slow for e in statements)


async def test_hooks_added_and_removed(dsn: str) -> None:
    """add_event_hook and remove_event_hook change who receives events."""
    first: list[StatementEvent | PoolEvent] = []
    second: list[StatementEvent | PoolEvent] = []
    async with Database.connect(dsn) as db:
        brands = db.repository(BrandRepository)
        db.add_event_hook(first.append)
        db.add_event_hook(second.append)
        await brands.count()
        db.remove_event_hook(first.append)
        await brands.count()
        with pytest.raises(ValueError, match=r"not an event hook"):
            db.remove_event_hook(first.append)
    assert (len(first), len(second)) == (1, 2)


async def test_raising_hook_does_not_break_the_query(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A hook that raises is logged once at WARNING with its traceback; queries go on."""
    caplog.set_level(logging.INFO, logger="repo.sql")

    def broken(event: StatementEvent | PoolEvent) -> None:
        raise RuntimeError("hook bug")

    async with Database.connect(dsn, on_event=broken) as db:
        brands = db.repository(BrandRepository)
        await brands.add(Brand("acme"))
        assert await brands.count() == 1
    [record] = [r for r in sql_records(caplog) if r.levelno == logging.WARNING]
    assert "the event hook" in record.getMessage()
    assert re.search(r"raised on a (Pool|Statement)Event; ignored", record.getMessage())
    assert "RuntimeError: hook bug" in (record.exc_text or "")


async def test_acquire_wait_is_a_pool_event(dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    """With a pool of 1, a second user waits: an INFO record and an acquire_wait event."""
    caplog.set_level(logging.INFO, logger="repo.sql")
    seen: list[StatementEvent | PoolEvent] = []
    async with Database.connect(dsn, min_size=1, max_size=1, on_event=seen.append) as db:
        brands = db.repository(BrandRepository)
        await brands.count()
        assert [r for r in sql_records(caplog) if r.levelno >= logging.INFO] == []

        async def hold() -> None:
            async with CatalogUnitOfWork(db) as uow:
                await uow.brands.execute("SELECT pg_sleep(0.05)")

        await asyncio.gather(hold(), brands.count())
    [record] = [r for r in sql_records(caplog) if r.levelno == logging.INFO]
    assert re.fullmatch(
        r"waited \d+\.\d\d ms for a connection: the pool was exhausted \(all 1 in use\)",
        record.getMessage(),
    )
    [event] = [e for e in seen if isinstance(e, PoolEvent) and e.kind == "acquire_wait"]
    assert event.duration is not None
    assert event.duration > 0.02


async def test_new_connection_is_an_acquire_wait(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An acquire that opens a connection is a wait; one served from an idle one is not."""
    caplog.set_level(logging.DEBUG, logger="repo.sql")
    async with Database.connect(dsn, min_size=0, max_size=1) as db:
        brands = db.repository(BrandRepository)
        await brands.count()
        await brands.count()
    pool = [r.getMessage() for r in sql_records(caplog) if '"' not in r.getMessage()]
    assert pool[0].startswith("opened a connection: to postgresql://")
    assert re.fullmatch(
        r"waited \d+\.\d\d ms for a connection: a new connection had to be opened", pool[1]
    )
    assert len([m for m in pool if m.startswith("waited")]) == 1


async def test_replaced_connection_is_a_pool_event(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A connection lost under a unit of work is replaced: an INFO record with the reason."""
    caplog.set_level(logging.INFO, logger="repo.sql")
    seen: list[StatementEvent | PoolEvent] = []
    async with Database.connect(dsn, max_size=1, on_event=seen.append) as db:
        with pytest.raises(Exception):  # noqa: B017, PT011 - which error is not the point here
            async with CatalogUnitOfWork(db) as uow:
                pid = await uow.brands.scalar("SELECT pg_backend_pid()")
                killer = await asyncpg.connect(dsn)
                try:
                    await killer.execute("SELECT pg_terminate_backend($1)", pid)
                finally:
                    await killer.close()
                await uow.brands.count()
        assert await db.repository(BrandRepository).count() == 0
    replaced = [r for r in sql_records(caplog) if r.getMessage().startswith("replaced")]
    assert [(r.levelno, r.getMessage()) for r in replaced] == [
        (logging.INFO, "replaced a connection: it was lost or closed while in use")
    ]
    kinds = [e.kind for e in seen if isinstance(e, PoolEvent)]
    assert "connection_replaced" in kinds
    assert "connection_closed" in kinds


async def test_left_in_transaction_is_replaced(dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    """A connection given back inside a transaction is terminated, and says why."""
    caplog.set_level(logging.INFO, logger="repo.sql")
    async with Database.connect(dsn, max_size=1) as db, db.acquire() as conn:
        await conn.execute("BEGIN")
    assert [r.getMessage() for r in sql_records(caplog)] == [
        "replaced a connection: it was left inside a transaction"
    ]


async def test_raw_connections_are_not_observed(
    debug_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Statements on a connection from db.acquire() are the user's own: not logged by repo."""
    async with debug_db.acquire() as conn:
        caplog.clear()
        await conn.fetchval("SELECT 1")
    assert sql_records(caplog) == []
