"""Values on a real PostgreSQL: json in bulk, codec failures, refusals that send nothing.

The tests make their own table with json and jsonb columns (``doc_values``)
in the session's scratch database, and drop it afterwards.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import asyncpg
import attrs
import pytest

from repo import (
    Column,
    Database,
    DataError,
    InvalidQuery,
    PoolEvent,
    Repository,
    StatementEvent,
    Table,
    UpsertResult,
)
from repo._bulk import CHECK_WHOLE_MAX
from repo.catalog import CatalogUnitOfWork, SkuRepository, load_catalog
from repo.testing import rollback_database
from tests.conftest import _admin
from tests.contract.test_types import (
    SHORT,
    TypedRepository,
    as_read,
    as_stored,
    create_typed,
    drop_typed,
    entity,
    read_back_every_way,
    row,
)


@attrs.frozen
class Doc:
    doc_id: int
    body: dict[str, Any]
    tags: list[str]
    raw: Any | None = None
    note: str | None = None


DOCS = Table("doc_values", Doc, key="doc_id", columns={"raw": Column(type="json")})


class DocRepository(Repository[Doc]):
    table = DOCS


@pytest.fixture
async def docs_dsn(migrated_dsn: str) -> AsyncIterator[str]:
    """The scratch database, with an empty ``doc_values`` table."""
    await _admin(
        migrated_dsn,
        "DROP TABLE IF EXISTS doc_values",
        "CREATE TABLE doc_values (doc_id bigint PRIMARY KEY, body jsonb NOT NULL, "
        "tags text[] NOT NULL, raw json, note text)",
    )
    try:
        yield migrated_dsn
    finally:
        await _admin(migrated_dsn, "DROP TABLE IF EXISTS doc_values")


def doc(i: int) -> Doc:
    body = {"n": i, "name": f"doc {i}", "tags": ["a", "b"], "price": i / 4, "ok": i % 2 == 0}
    return Doc(i, body, [f"t{i % 7}"], {"raw": [i, None]})


async def test_copy_100k_rows_with_jsonb_columns(docs_dsn: str) -> None:
    """add_many COPYs 100,000 rows with json and jsonb columns under the default settings;
    every value reads back, and upserting them all again changes nothing."""
    async with Database.connect(docs_dsn, min_size=1, max_size=2) as db:
        docs = db.repository(DocRepository)
        start = time.perf_counter()
        assert await docs.add_many(doc(i) for i in range(100_000)) == 100_000
        loaded = time.perf_counter() - start
        assert await docs.count() == 100_000
        assert await docs.get(99_999) == doc(99_999)
        assert await docs.find(body=doc(7).body) == [doc(7)]
        listed = [doc(i) for i in range(100_000)]
        start = time.perf_counter()
        result = await docs.upsert_many(listed)
        upserted = time.perf_counter() - start
        assert result == UpsertResult(inserted=0, updated=0, unchanged=100_000)
    print(f"100,000 jsonb rows: COPY {loaded:.2f} s, upsert_many unchanged {upserted:.2f} s")


async def test_the_query_path_reads_and_writes_json_and_jsonb(docs_dsn: str) -> None:
    """add, get, update_where and filters carry json and jsonb as Python objects."""
    async with Database.connect(docs_dsn, min_size=1, max_size=1) as db:
        docs = db.repository(DocRepository)
        stored = await docs.add(Doc(1, {"k": [1, 2.5, None]}, ["x"], {"b": 1, "a": 2}))
        assert stored.raw == {"b": 1, "a": 2}
        assert await docs.update_where({"body": {"k": "v"}}, doc_id=1) == 1
        assert [d.doc_id for d in await docs.find(body={"k": "v"})] == [1]
        async with db.acquire() as conn:
            text = await conn.fetchval("SELECT raw::text FROM doc_values")
        assert text == '{"b":1,"a":2}'


async def test_a_text_codec_from_init_is_a_data_error_and_keeps_the_connection(
    docs_dsn: str,
) -> None:
    """An init hook that sets a text-format jsonb codec: COPY cannot use it, which is a
    DataError naming the table, not ConnectionLost; the connection is not discarded."""

    async def text_codec(conn: asyncpg.Connection) -> None:
        await conn.set_type_codec(
            "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )

    events: list[PoolEvent] = []
    async with Database.connect(docs_dsn, min_size=1, max_size=1, init=text_codec) as db:
        db.add_event_hook(lambda e: events.append(e) if isinstance(e, PoolEvent) else None)
        docs = db.repository(DocRepository)
        pid = await docs.scalar("SELECT pg_backend_pid()")
        with pytest.raises(DataError) as got:
            await docs.add_many([doc(1), doc(2)])
        assert "COPY into doc_values" in str(got.value)
        assert "jsonb" in str(got.value)
        assert await docs.scalar("SELECT pg_backend_pid()") == pid
        assert await docs.count() == 0
    assert not [e for e in events if e.kind == "connection_replaced"]


async def test_a_value_the_driver_cannot_encode_names_the_entity_and_field(
    docs_dsn: str,
) -> None:
    """With json_codecs=False the driver's own jsonb codec takes JSON text only: a dict
    passes the checks, fails to encode, and the DataError names entity #n and the field."""
    async with Database.connect(docs_dsn, min_size=1, max_size=1, json_codecs=False) as db:
        docs = db.repository(DocRepository)
        pid = await docs.scalar("SELECT pg_backend_pid()")
        good = Doc(1, '{"n": 1}', ["a"])  # type: ignore[arg-type]
        bad = Doc(2, {"n": 2}, ["b"])
        with pytest.raises(DataError) as got:
            await docs.add_many(iter([good, bad]))
        message = str(got.value)
        assert "COPY into doc_values: entity #1" in message
        assert "doc_values.body" in message
        assert await docs.scalar("SELECT pg_backend_pid()") == pid
        assert await docs.add_many([good]) == 1


async def test_a_long_load_with_a_value_jsonb_cannot_hold_names_it(docs_dsn: str) -> None:
    """A long list is only screened as it is sent: the strict json codec refuses a NaN
    deep inside, and the full check then names the entity and the field; nothing is stored."""
    rows = [doc(i) for i in range(CHECK_WHOLE_MAX + 10)]
    rows[CHECK_WHOLE_MAX + 5] = attrs.evolve(rows[CHECK_WHOLE_MAX + 5], body={"x": math.nan})
    async with Database.connect(docs_dsn, min_size=1, max_size=1) as db:
        docs = db.repository(DocRepository)
        pid = await docs.scalar("SELECT pg_backend_pid()")
        with pytest.raises(DataError) as got:
            await docs.add_many(rows)
        assert f"entity #{CHECK_WHOLE_MAX + 5}" in str(got.value)
        assert "doc_values.body takes a value JSON can hold" in str(got.value)
        assert await docs.count() == 0
        assert await docs.scalar("SELECT pg_backend_pid()") == pid


BAD_CALLS: list[tuple[str, Callable[[DocRepository], Awaitable[Any]], type[Exception]]] = [
    ("NaN in jsonb", lambda d: d.add(Doc(1, {"x": math.nan}, [])), DataError),
    ("a set in jsonb", lambda d: d.add(Doc(1, {"x": {1}}, [])), DataError),
    ("NUL in a jsonb key", lambda d: d.add(Doc(1, {"\x00": 1}, [])), DataError),
    ("a Decimal in jsonb", lambda d: d.add(Doc(1, {"x": Decimal(1)}, [])), DataError),
    ("a datetime in json", lambda d: d.add(Doc(1, {}, [], dt.datetime(2026, 1, 1))), DataError),
    ("a str for text[]", lambda d: d.add(Doc(1, {}, "abc")), DataError),  # type: ignore[arg-type]
    ("ints in text[]", lambda d: d.add(Doc(1, {}, [1, 2])), DataError),  # type: ignore[list-item]
    ("NUL in text[]", lambda d: d.add(Doc(1, {}, ["a\x00"])), DataError),
    ("in bulk", lambda d: d.add_many([Doc(1, {}, []), Doc(2, {"x": math.inf}, [])]), DataError),
    ("in a filter", lambda d: d.count(body={"x": math.nan}), DataError),
    ("json equality", lambda d: d.count(raw={"a": 1}), InvalidQuery),
    ("get('1')", lambda d: d.get("1"), InvalidQuery),
    ("get_many", lambda d: d.get_many([1, 2.0]), InvalidQuery),
    ("delete(True)", lambda d: d.delete(True), InvalidQuery),
]


@pytest.mark.parametrize(
    ("call", "error"), [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS]
)
async def test_values_the_server_would_refuse_send_no_sql(
    docs_dsn: str, call: Callable[[DocRepository], Awaitable[Any]], error: type[Exception]
) -> None:
    """Each bad value or key is refused before any statement reaches the server, naming
    the table and field (the event hook sees no statement at all)."""
    seen: list[StatementEvent] = []
    async with Database.connect(docs_dsn, min_size=1, max_size=1) as db:
        db.add_event_hook(lambda e: seen.append(e) if isinstance(e, StatementEvent) else None)
        with pytest.raises(error) as got:
            await call(db.repository(DocRepository))
        assert "doc_values." in str(got.value)
        assert seen == []


async def test_rollback_database_sets_its_connection_up_like_the_pool(docs_dsn: str) -> None:
    """rollback_database has the json codecs (bulk loads into jsonb work) and runs `init`."""
    ran: list[int] = []

    async def init(conn: asyncpg.Connection) -> None:
        ran.append(conn.get_server_pid())

    async with rollback_database(docs_dsn, init=init) as rdb:
        docs = rdb.repository(DocRepository)
        assert await docs.add_many([doc(1), doc(2)]) == 2
        assert await docs.upsert_many([doc(1)], returning=True) == [doc(1)]
        assert await docs.get(2) == doc(2)
    assert len(ran) == 1
    async with Database.connect(docs_dsn, min_size=1, max_size=1) as db:
        assert await db.repository(DocRepository).count() == 0


async def test_an_unchanged_upsert_writes_no_row_version(db: Database) -> None:
    """An upsert whose values are already stored leaves the row as it was: same xmin (no
    new row version), same version column; a changed one writes and bumps the version."""
    async with CatalogUnitOfWork(db) as uow:
        await load_catalog(uow, brands=1, products=1, skus=2)
    skus = db.repository(SkuRepository)
    first = (await skus.find(order_by="sku_id"))[0]
    xmin = "SELECT xmin::text FROM sku WHERE sku_id = $1"
    before = await skus.scalar(xmin, first.sku_id)
    same = await skus.upsert(first)
    assert same == first
    assert await skus.scalar(xmin, first.sku_id) == before
    result = await skus.upsert_many([first])
    assert result == UpsertResult(inserted=0, updated=0, unchanged=1)
    assert await skus.scalar(xmin, first.sku_id) == before
    changed = await skus.upsert(attrs.evolve(first, stock=5))
    assert (changed.stock, changed.version) == (5, first.version + 1)
    assert await skus.scalar(xmin, first.sku_id) != before


@pytest.fixture
async def typed_dsn(migrated_dsn: str) -> AsyncIterator[str]:
    """The scratch database, with the type matrix's tables (tests/contract/test_types.py)."""
    await _admin(migrated_dsn, *create_typed())
    try:
        yield migrated_dsn
    finally:
        await _admin(migrated_dsn, *drop_typed())


async def test_every_type_through_the_rollback_fixture(typed_dsn: str) -> None:
    """The type matrix of tests/contract/test_types.py, on a rollback database: every
    type written by COPY and upserts reads back equal every way, and nothing is kept."""
    rows = [row(i) for i in range(SHORT)]
    async with rollback_database(typed_dsn) as rdb:
        typed = rdb.repository(TypedRepository)
        assert await typed.add_many([entity(r) for r in rows]) == len(rows)
        await read_back_every_way(typed, rows)
        again = await typed.upsert_many([entity(r) for r in rows], returning=True)
        assert [as_read(e) for e in again] == [as_stored(r) for r in rows]
        assert as_read(await typed.upsert(entity(rows[0]))) == as_stored(rows[0])
    async with rollback_database(typed_dsn) as rdb:
        assert await rdb.repository(TypedRepository).count() == 0
