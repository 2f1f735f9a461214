"""Every column type the mapping supports, through every path, on both backends.

One table of the tests' own, ``typed``, holds a NOT NULL and a nullable
column of each supported type (the matrix below); small tables
``typed_key_<type>`` are keyed by each type a key can have. Each row of
the matrix lists the values written, edge values first, and where the value
read back is not the one given (a tuple for an array, the str of a uuid, a
jsonb int key) says what comes back. Each path writes the same rows and
every reader must give them back equal (NaN equal to NaN), on PostgreSQL
and in memory alike; filters, ordering, pages and keys are checked per type,
and the values no column can hold are refused before any SQL, naming the
table, the field and the value.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import math
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any

import attrs
import pytest

import repo._bulk
from repo import (
    Column,
    DataError,
    InvalidQuery,
    NotFound,
    Repository,
    Table,
    UniqueViolation,
    UpsertResult,
    between,
    ge,
    gt,
    in_,
    le,
    lt,
    ne,
    not_in,
)
from repo._bulk import screens
from repo._checks import shown
from repo._mapping import quote
from tests.conftest import _admin

from .conftest import AnyDatabase


class TypedMood(enum.StrEnum):
    """A PostgreSQL enum (``typed_mood``); its labels sort as they are declared."""

    LOW = "a_low"
    MID = "b_mid"
    HIGH = "c_high"


@attrs.frozen
class As:
    """A value written as `given` that comes back as `stored`."""

    given: Any
    stored: Any


@attrs.frozen
class Kind:
    """One column type: its annotation, declared SQL type, values, and what filters it.

    `edges` are written by every path (the edge values first); `big` only by
    the short ones. `ordered` are distinct values, ascending; `compare` is
    "order" (every filter, order_by and pages), "eq" (eq and ne only) or
    "none" (IS NULL only).
    """

    name: str
    annotation: Any
    sql: str | None
    edges: tuple[Any, ...]
    ordered: tuple[Any, ...]
    big: tuple[Any, ...] = ()
    compare: str = "order"


def tz(hours: int, minutes: int = 0, seconds: int = 0) -> dt.timezone:
    sign = -1 if hours < 0 else 1
    return dt.timezone(sign * dt.timedelta(hours=abs(hours), minutes=minutes, seconds=seconds))


UTC = dt.UTC
REAL_MAX = 3.4028234663852886e38
U = uuid.UUID("12345678-9abc-4def-8123-456789abcdef")
NAN, INF = math.nan, math.inf
BIG_DOCUMENT = {f"key {i}": [i, str(i), i / 4, {"even": i % 2 == 0}] for i in range(1_000)}
DEEP: Any = "bottom"
for _ in range(100):
    DEEP = {"down": [DEEP]}

MATRIX: tuple[Kind, ...] = (
    Kind(
        "text",
        str,
        None,
        ("", "plain", "e\u0301", "\U0001d11e\U0001f600", "ΟΔΟΣ ς ß", "tab\tnew\nline", "'; --"),
        ("a", "b", "c"),
        big=("x" * 20_000,),
    ),
    Kind("bigint", int, None, (-(2**63), 2**63 - 1, 0, -1), (-(2**63), 0, 2**63 - 1)),
    Kind("integer", int, "integer", (-(2**31), 2**31 - 1, 0), (-(2**31), 0, 2**31 - 1)),
    Kind("smallint", int, "smallint", (-(2**15), 2**15 - 1, 0), (-(2**15), 0, 2**15 - 1)),
    Kind(
        "numeric_12_2",
        Decimal,
        "numeric(12,2)",
        (
            Decimal("9999999999.99"),
            Decimal("-9999999999.99"),
            Decimal("0.00"),
            As(Decimal("9999999999.994"), Decimal("9999999999.99")),
            As(Decimal("0.125"), Decimal("0.13")),
            As(Decimal("-0.125"), Decimal("-0.13")),
            As(7, Decimal("7.00")),
            As(Decimal("-0.001"), Decimal("0.00")),  # no negative zero, rounded or not
            As(Decimal("-0.00"), Decimal("0.00")),
        ),
        (Decimal("-9999999999.99"), Decimal("0.01"), Decimal("9999999999.99")),
    ),
    Kind(
        "numeric",
        Decimal,
        None,
        (
            Decimal("NaN"),
            Decimal("Infinity"),
            Decimal("-Infinity"),
            Decimal("1E-30"),
            Decimal("123456789012345678901234567890.123456789"),
            Decimal("-1.50"),
            As(Decimal("-0.000"), Decimal("0.000")),
        ),
        (Decimal("-Infinity"), Decimal("-1.5"), Decimal("1E+20")),
    ),
    Kind(
        "float",
        float,
        None,
        (NAN, INF, -INF, -0.0, 5e-324, 1.7976931348623157e308, 0.1, As(3, 3.0)),
        (-1e308, 0.5, INF),
    ),
    Kind(
        "real",
        float,
        "real",
        (NAN, INF, -INF, 0.5, REAL_MAX, 1.401298464324817e-45, As(0.1, 0.10000000149011612)),
        (-1.5, 0.5, 3.0),
    ),
    Kind("bool", bool, None, (True, False), (False, True)),
    Kind(
        "timestamptz",
        dt.datetime,
        None,
        (
            dt.datetime.min.replace(tzinfo=tz(-5, 30)),
            dt.datetime.max.replace(tzinfo=tz(5, 45)),
            dt.datetime(2026, 3, 29, 1, 30, tzinfo=tz(5, 30, 15)),
            dt.datetime(2000, 2, 29, 23, 59, 59, 999_999, tzinfo=tz(14)),
            dt.datetime(1970, 1, 1, tzinfo=tz(-12)),
        ),
        (
            dt.datetime(1, 1, 2, tzinfo=UTC),
            dt.datetime(2026, 1, 1, 12, tzinfo=tz(2)),
            dt.datetime(2026, 1, 1, 11, 0, 1, tzinfo=UTC),
        ),
    ),
    Kind(
        "timestamp",
        dt.datetime,
        "timestamp",
        (dt.datetime.min, dt.datetime.max, dt.datetime(2000, 2, 29, 12, 0, 0, 1)),
        (dt.datetime.min, dt.datetime(2026, 1, 1), dt.datetime.max),
    ),
    Kind(
        "date",
        dt.date,
        None,
        (dt.date.min, dt.date.max, dt.date(2000, 2, 29)),
        (dt.date.min, dt.date(2026, 1, 1), dt.date.max),
    ),
    Kind(
        "time",
        dt.time,
        None,
        (dt.time.min, dt.time.max, dt.time(12, 30, 15, 123_456)),
        (dt.time.min, dt.time(12), dt.time.max),
    ),
    Kind(
        "timetz",
        dt.time,
        "timetz",
        (
            dt.time(0, 0, tzinfo=tz(15, 59)),
            dt.time(23, 59, 59, 999_999, tzinfo=tz(-15, 59)),
            dt.time(12, 0, tzinfo=tz(2)),
            dt.time(10, 0, tzinfo=UTC),  # 12:00+02's instant, yet not equal to it
            dt.time(9, 30, 15, tzinfo=tz(-5, 30)),
            As(dt.time(10, tzinfo=dt.timezone(dt.timedelta(0))), dt.time(10, tzinfo=UTC)),
        ),
        # In UTC, then east before west: 12:00+02 and 10:00+00 are both 10:00 UTC.
        (dt.time(12, 0, tzinfo=tz(2)), dt.time(10, 0, tzinfo=UTC), dt.time(23, tzinfo=tz(-5))),
    ),
    Kind(
        "interval",
        dt.timedelta,
        None,
        (
            dt.timedelta(0),
            dt.timedelta.max,
            dt.timedelta.min,
            dt.timedelta(microseconds=-1),
            dt.timedelta(days=-1, hours=25),
        ),
        (dt.timedelta.min, dt.timedelta(microseconds=1), dt.timedelta(days=1)),
    ),
    Kind(
        "uuid",
        uuid.UUID,
        None,
        (uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), As(str(U), U), As(U.hex.upper(), U)),
        (uuid.UUID(int=1), uuid.UUID(int=2**64), uuid.UUID(int=2**127)),
    ),
    Kind(
        "bytea",
        bytes,
        None,
        (
            b"",
            b"\x00\xff",
            bytes(range(256)),
            As(bytearray(b"ba"), b"ba"),
            As(memoryview(b"m"), b"m"),
        ),
        (b"", b"\x00", b"\xff"),
        big=(bytes(range(256)) * 200,),
    ),
    Kind(
        "json",
        Any,
        "json",
        (
            {"b": 1, "a": [1, 2.5, None, True, "x"]},
            [],
            "just a string",
            0,
            {"nul": "\x00"},
            As({1: "int key", "t": (1, 2)}, {"1": "int key", "t": [1, 2]}),
        ),
        ({"a": 1}, {"a": 2}, {"a": 3}),
        big=(BIG_DOCUMENT,),
        compare="none",
    ),
    Kind(
        "jsonb",
        dict[str, Any],
        None,
        (
            {},
            {"k": {"nested": [1, {"deep": [None, False]}]}, "é🙂": "\u2028", "": ""},
            As(
                {1: "a", 2.5: "b", False: "c", None: "d"},
                {"1": "a", "2.5": "b", "false": "c", "null": "d"},
            ),
            As({"t": (1, (2, 3))}, {"t": [1, [2, 3]]}),
            {"numbers": [0, -1, 10**30, 1.5, -0.25, 1e-07]},
        ),
        ({"a": 1}, {"a": [1]}, {"b": None}),
        big=(BIG_DOCUMENT, DEEP),
        compare="eq",
    ),
    Kind(
        "jsonb_list",
        list,
        None,
        ([], [1, "two", None, [3.5]], [{"a": 1}]),
        ([1], [2], [3]),
        compare="eq",
    ),
    Kind(
        "text_array",
        list[str],
        None,
        ([], ["a", "", "é", "\U0001d11e"], As(("x", "y"), ["x", "y"])),
        ([], ["a"], ["a", "b"]),
        big=(["word"] * 2_000,),
    ),
    Kind(
        "text_or_null_array",
        list[str | None],
        None,
        ([None], ["a", None, "b"], []),
        (["a"], ["a", None], [None]),
        compare="eq",  # PostgreSQL sorts a NULL element last; Python cannot compare it
    ),
    Kind("bigint_array", list[int], None, ([], [-(2**63), 2**63 - 1]), ([-1], [0], [0, 1])),
    Kind("integer_array", list[int], "integer[]", ([2**31 - 1, -(2**31)],), ([1], [2], [3])),
    Kind("smallint_array", list[int], "smallint[]", ([2**15 - 1],), ([1], [2], [3])),
    Kind("float_array", list[float], None, ([NAN, INF, -0.0, 0.1],), ([0.5], [1.5], [2.5])),
    Kind("real_array", list[float], "real[]", ([0.5, -INF],), ([0.5], [1.5], [2.5])),
    Kind(
        "numeric_array",
        list[Decimal],
        None,
        ([Decimal("1.5"), Decimal("NaN")],),
        ([Decimal(1)], [Decimal(2)], [Decimal(3)]),
    ),
    Kind(
        "numeric_5_2_array",
        list[Decimal],
        "numeric(5,2)[]",
        ([Decimal("999.99"), As(Decimal("0.005"), Decimal("0.01"))],),
        ([Decimal(1)], [Decimal(2)], [Decimal(3)]),
    ),
    Kind("bool_array", list[bool], None, ([True, False],), ([False], [True], [True, True])),
    Kind(
        "timestamptz_array",
        list[dt.datetime],
        None,
        ([dt.datetime(2026, 1, 1, tzinfo=tz(-3, 30))],),
        ([], [dt.datetime(2026, 1, 1, tzinfo=UTC)], [dt.datetime(2026, 1, 2, tzinfo=UTC)]),
    ),
    Kind(
        "timestamp_array",
        list[dt.datetime],
        "timestamp[]",
        ([dt.datetime.min, dt.datetime(2000, 1, 1)],),
        ([], [dt.datetime(2000, 1, 1)], [dt.datetime(2000, 1, 2)]),
    ),
    Kind(
        "date_array",
        list[dt.date],
        None,
        ([dt.date.max, dt.date.min],),
        ([], [dt.date.min], [dt.date.max]),
    ),
    Kind("time_array", list[dt.time], None, ([dt.time.max],), ([], [dt.time.min], [dt.time.max])),
    Kind(
        "interval_array",
        list[dt.timedelta],
        None,
        ([dt.timedelta(days=1, microseconds=1)],),
        ([], [dt.timedelta(0)], [dt.timedelta(1)]),
    ),
    Kind(
        "uuid_array",
        list[uuid.UUID],
        None,
        ([uuid.UUID(int=5), As(str(U), U)],),
        ([], [uuid.UUID(int=1)], [uuid.UUID(int=2)]),
    ),
    Kind("bytea_array", list[bytes], None, ([b"", b"\x00"],), ([], [b"a"], [b"b"])),
    Kind(
        "mood_array",
        list[TypedMood],
        None,
        ([TypedMood.LOW, As("c_high", TypedMood.HIGH)],),
        ([], [TypedMood.LOW], [TypedMood.HIGH]),
    ),
    Kind(
        "mood",
        TypedMood,
        None,
        (TypedMood.LOW, As("b_mid", TypedMood.MID), TypedMood.HIGH),
        (TypedMood.LOW, TypedMood.MID, TypedMood.HIGH),
    ),
)  # fmt: skip


def _entity_class(name: str, fields: dict[str, Any], defaults: dict[str, Any]) -> type:
    """An attrs class with real annotations (the mapping reads them), fields in order."""
    namespace = {"__annotations__": fields, "__module__": __name__, **defaults}
    return attrs.frozen(type(name, (), namespace))


def _nullable(kind: Kind) -> str:
    return f"{kind.name}_n"


Typed = _entity_class(
    "Typed",
    {
        "id": int,
        **{k.name: k.annotation for k in MATRIX},
        **{_nullable(k): k.annotation | None for k in MATRIX},
    },
    {_nullable(k): None for k in MATRIX},
)
TYPED: Table[Any] = Table(
    "typed",
    Typed,
    key="id",
    columns={
        name: Column(type=k.sql)
        for k in MATRIX
        if k.sql is not None
        for name in (k.name, _nullable(k))
    },
)


class TypedRepository(Repository[Any]):
    table = TYPED


@attrs.frozen
class KeyKind:
    """A key type: three keys ascending, other spellings of the first, and a wrong key."""

    name: str
    annotation: Any
    sql: str | None
    keys: tuple[Any, Any, Any]
    same_as_first: tuple[Any, ...]
    wrong: Any


KEYS: tuple[KeyKind, ...] = (
    KeyKind("text", str, None, ("", "a", "é"), (), 1),
    KeyKind("bigint", int, None, (-(2**63), 0, 2**63 - 1), (), "1"),
    KeyKind("integer", int, "integer", (-(2**31), 0, 2**31 - 1), (), 2**31),
    KeyKind("smallint", int, "smallint", (-(2**15), 0, 2**15 - 1), (), True),
    KeyKind(
        "numeric",
        Decimal,
        "numeric(12,2)",
        (Decimal("-1.5"), Decimal("0.00"), Decimal("9999999999.99")),
        (Decimal("-1.50"),),
        1.5,
    ),
    KeyKind(
        "timestamptz",
        dt.datetime,
        None,
        (
            dt.datetime(1, 1, 1, 12, tzinfo=UTC),
            dt.datetime(2026, 1, 1, tzinfo=UTC),
            dt.datetime.max.replace(tzinfo=tz(5, 45)),
        ),
        (dt.datetime(1, 1, 1, 14, tzinfo=tz(2)),),
        dt.datetime(2026, 1, 1),
    ),
    KeyKind(
        "timestamp",
        dt.datetime,
        "timestamp",
        (dt.datetime.min, dt.datetime(2026, 1, 1), dt.datetime.max),
        (),
        dt.datetime(2026, 1, 1, tzinfo=UTC),
    ),
    KeyKind(
        "date", dt.date, None, (dt.date.min, dt.date(2026, 1, 1), dt.date.max), (), "2026-01-01"
    ),
    KeyKind("time", dt.time, None, (dt.time.min, dt.time(12), dt.time.max), (), 12),
    KeyKind(
        "interval",
        dt.timedelta,
        None,
        (dt.timedelta(-1), dt.timedelta(0), dt.timedelta(days=1, microseconds=1)),
        (dt.timedelta(hours=-24),),
        86400,
    ),
    KeyKind(
        "uuid",
        uuid.UUID,
        None,
        (uuid.UUID(int=1), U, uuid.UUID(int=2**128 - 1)),
        (str(uuid.UUID(int=1)), uuid.UUID(int=1).hex),
        "not-a-uuid",
    ),
    KeyKind("bytea", bytes, None, (b"", b"\x00", b"\xff"), (bytearray(),), "x"),
    KeyKind(
        "mood",
        TypedMood,
        None,
        (TypedMood.LOW, TypedMood.MID, TypedMood.HIGH),
        ("a_low",),
        "nope",
    ),
)  # fmt: skip


def _keyed_table(key: KeyKind) -> Table[Any]:
    cls = _entity_class(f"Keyed_{key.name}", {"k": key.annotation, "v": str}, {"v": ""})
    columns = {"k": Column(type=key.sql)} if key.sql else {}
    return Table(f"typed_key_{key.name}", cls, key="k", columns=columns)


KEYED = {k.name: _keyed_table(k) for k in KEYS}


def _ddl(table: Table[Any]) -> str:
    columns = ", ".join(
        f"{quote(c.column)} {c.sql_type}{'' if c.nullable else ' NOT NULL'}" for c in table.columns
    )
    return f"CREATE TABLE {table.name} ({columns}, PRIMARY KEY ({quote(table.key_column)}))"


@attrs.frozen
class Zoned:
    id: int
    at: dt.time


ZONED = Table("typed_zoned", Zoned, key="id", columns={"at": Column(type="timetz")}, unique=["at"])
OWN = [TYPED.name, *(t.name for t in KEYED.values()), ZONED.name]


class ZonedRepository(Repository[Zoned]):
    table = ZONED


def drop_typed() -> list[str]:
    tables = ", ".join(OWN)
    return [f"DROP TABLE IF EXISTS {tables}", "DROP TYPE IF EXISTS typed_mood"]


def create_typed() -> list[str]:
    """The statements that (re)make the tests' own tables and enum type."""
    labels = ", ".join(f"'{m.value}'" for m in TypedMood)
    return [
        *drop_typed(),
        f"CREATE TYPE typed_mood AS ENUM ({labels})",
        _ddl(TYPED),
        *(_ddl(t) for t in KEYED.values()),
        "CREATE TABLE typed_zoned (id bigint PRIMARY KEY, at timetz NOT NULL UNIQUE)",
    ]


@pytest.fixture(scope="module")
def typed_schema(migrated_dsn: str) -> Iterator[str]:
    """The tests' own tables and enum type in the scratch database, for the module."""
    asyncio.run(_admin(migrated_dsn, *create_typed()))
    try:
        yield migrated_dsn
    finally:
        asyncio.run(_admin(migrated_dsn, *drop_typed()))


@pytest.fixture
def schema(backend_dsn: str | None, request: pytest.FixtureRequest) -> str | None:
    """The database holding the tests' tables on PostgreSQL (made once); None in memory."""
    if backend_dsn is None:
        return None
    dsn: str = request.getfixturevalue("typed_schema")
    return dsn


@pytest.fixture
async def tables(db: AnyDatabase, schema: str | None) -> AnyDatabase:
    """`db`, with the tests' own tables, empty."""
    if schema is not None:
        await _admin(schema, f"TRUNCATE {', '.join(OWN)}")
    return db


@pytest.fixture
def typed(tables: AnyDatabase) -> TypedRepository:
    """A repository on ``typed``, outside any unit of work."""
    return tables.repository(TypedRepository)


# -- rows and how they compare ------------------------------------------------


def given(value: Any) -> Any:
    """The value written (an `As` may stand for an element of a list)."""
    if isinstance(value, list):
        return [given(v) for v in value]
    return value.given if isinstance(value, As) else value


def stored(value: Any) -> Any:
    """The value read back."""
    if isinstance(value, list):
        return [stored(v) for v in value]
    return value.stored if isinstance(value, As) else value


def row(i: int, *, big: bool = True) -> dict[str, As]:
    """Row `i` of the matrix: every column, as (given, stored); NULL in every fourth."""
    values: dict[str, As] = {"id": As(i, i)}
    for k in MATRIX:
        pool = k.edges + (k.big if big else ())
        first = pool[i % len(pool)]
        second = None if i % 4 == 3 else pool[(i + 1) % len(pool)]
        values[k.name] = As(given(first), stored(first))
        values[_nullable(k)] = As(given(second), stored(second))
    return values


SHORT = max(len(k.edges) + len(k.big) for k in MATRIX) + 4


def entity(values: dict[str, As]) -> Any:
    return Typed(**{name: v.given for name, v in values.items()})


def canon(value: Any) -> Any:
    """`value` in a form that compares as the tests mean: by type and value, NaN equal to
    NaN, a float's zero by its sign and a Decimal by its digits (``7.00`` is not ``7``)."""
    if isinstance(value, float):
        return "float NaN" if math.isnan(value) else ("float", repr(value))
    if isinstance(value, Decimal):
        return "Decimal NaN" if value.is_nan() else ("Decimal", str(value))
    if isinstance(value, list | tuple):
        return (type(value).__name__, [canon(v) for v in value])
    if isinstance(value, dict):
        return {k: canon(v) for k, v in value.items()}
    return (type(value).__name__, value)


def as_read(e: Any) -> dict[str, Any]:
    return {name: canon(getattr(e, name)) for name in TYPED.field_names}


def as_stored(values: dict[str, As]) -> dict[str, Any]:
    return {name: canon(v.stored) for name, v in values.items()}


async def read_back_every_way(typed: TypedRepository, rows: Sequence[dict[str, As]]) -> None:
    """Every reader gives back `rows` as stored: get, get_many, find, stream, cursor, page."""
    want = [as_stored(r) for r in rows]
    ids = [r["id"].given for r in rows]
    assert [as_read(await typed.get(i)) for i in ids] == want
    assert [as_read(e) for e in await typed.get_many(ids)] == want
    assert [as_read(e) for e in await typed.find(order_by="id")] == want
    assert [as_read(e) async for e in typed.stream(order_by="id", prefetch=3)] == want
    async with typed.cursor(order_by="id") as cursor:
        assert [as_read(e) for e in await cursor.fetch(len(ids) + 1)] == want
    paged: list[Any] = []
    token = None
    while True:
        page = await typed.page(after=token, limit=4)
        paged.extend(page.items)
        if (token := page.next) is None:
            break
    assert [as_read(e) for e in paged] == want


# -- every path writes and reads back every type -----------------------------------


async def _add(typed: TypedRepository, rows: list[dict[str, As]]) -> list[Any]:
    return [await typed.add(entity(r)) for r in rows]


async def _add_many(typed: TypedRepository, rows: list[dict[str, As]]) -> None:
    assert await typed.add_many([entity(r) for r in rows]) == len(rows)


async def _add_many_returning(typed: TypedRepository, rows: list[dict[str, As]]) -> list[Any]:
    return await typed.add_many([entity(r) for r in rows], returning=True)


async def _add_many_async(typed: TypedRepository, rows: list[dict[str, As]]) -> list[Any]:
    async def produce() -> AsyncIterator[Any]:
        for r in rows:
            yield entity(r)

    return await typed.add_many(produce(), returning=True)


async def _upsert(typed: TypedRepository, rows: list[dict[str, As]]) -> list[Any]:
    return [await typed.upsert(entity(r)) for r in rows]


async def _upsert_many(typed: TypedRepository, rows: list[dict[str, As]]) -> None:
    assert await typed.upsert_many(entity(r) for r in rows) == UpsertResult(len(rows), 0, 0)


async def _upsert_many_returning(typed: TypedRepository, rows: list[dict[str, As]]) -> list[Any]:
    return await typed.upsert_many([entity(r) for r in rows], returning=True)


async def _placeholders(typed: TypedRepository, rows: list[dict[str, As]]) -> None:
    """Rows with the right ids and other values, for the update paths to overwrite."""
    ids = [r["id"].given for r in rows]
    await typed.add_many([attrs.evolve(entity(row(i + 1)), id=i) for i in ids])


async def _update(typed: TypedRepository, rows: list[dict[str, As]]) -> list[Any]:
    await _placeholders(typed, rows)
    return [await typed.update(entity(r)) for r in rows]


async def _update_where(typed: TypedRepository, rows: list[dict[str, As]]) -> None:
    await _placeholders(typed, rows)
    for r in rows:
        changes = {name: v.given for name, v in r.items() if name != "id"}
        assert await typed.update_where(changes, id=r["id"].given) == 1


WRITERS: dict[str, Callable[[TypedRepository, list[dict[str, As]]], Any]] = {
    "add": _add,
    "add_many": _add_many,
    "add_many returning": _add_many_returning,
    "add_many from an async iterable": _add_many_async,
    "upsert": _upsert,
    "upsert_many": _upsert_many,
    "upsert_many returning": _upsert_many_returning,
    "update": _update,
    "update_where": _update_where,
}


@pytest.mark.parametrize("writer", list(WRITERS))
async def test_every_type_written_by_each_path_reads_back_equal(
    typed: TypedRepository, writer: str
) -> None:
    """Each write path stores every type's edge values; what it returns and what every
    reader gives back equal them as stored (arrays as lists, a uuid's str as the UUID, ...)."""
    rows = [row(i) for i in range(SHORT)]
    returned = await WRITERS[writer](typed, rows)
    if returned is not None:
        assert [as_read(e) for e in returned] == [as_stored(r) for r in rows]
    await read_back_every_way(typed, rows)


async def test_long_lists_of_every_type_through_copy(
    typed: TypedRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lists past the length checked whole before sending (made 40 here, so that the
    test stays quick) take the screened COPY, and store every type as the short ones do;
    upserting them again leaves every row unchanged. The full-size run is
    tests/integration/test_bulk.py's 100,000 rows."""
    monkeypatch.setattr(repo._bulk, "CHECK_WHOLE_MAX", 40)
    base = [row(i, big=False) for i in range(SHORT)]
    made = [entity(r) for r in base]
    stored_as = [as_stored(r) for r in base]

    def long(start: int, count: int) -> tuple[list[Any], list[dict[str, Any]]]:
        """`count` rows from id `start`: the short rows over and over, as given and stored."""
        ids = range(start, start + count)
        given = [attrs.evolve(made[i % SHORT], id=i) for i in ids]
        return given, [stored_as[i % SHORT] | {"id": canon(i)} for i in ids]

    count = 100
    assert screens([None] * count)
    entities, want = long(0, count)
    assert await typed.add_many(entities) == count
    assert [as_read(e) for e in await typed.find(order_by="id")] == want
    again = await typed.upsert_many(entities)
    assert again == UpsertResult(inserted=0, updated=0, unchanged=count)
    more, want = long(count, count)
    returned = await typed.add_many(more, returning=True)
    assert [as_read(e) for e in returned] == want
    assert await typed.count() == 2 * count


async def test_upserting_the_same_values_changes_nothing(typed: TypedRepository) -> None:
    """Re-upserting stored rows, given as first written (NaN, json, a tuple, a uuid's str,
    an unrounded numeric, another time zone), leaves every one unchanged; a changed value
    is an update, and returning gives every row back, as stored, in the order given."""
    rows = [row(i) for i in range(SHORT)]
    await typed.add_many([entity(r) for r in rows])
    result = await typed.upsert_many([entity(r) for r in rows])
    assert result == UpsertResult(inserted=0, updated=0, unchanged=len(rows))
    for r in rows:
        assert as_read(await typed.upsert(entity(r))) == as_stored(r)
    changed = [*reversed(rows[:3]), row(SHORT)]
    changed[1] = {**changed[1], "text": As("changed", "changed")}
    returned = await typed.upsert_many([entity(r) for r in changed], returning=True)
    assert [as_read(e) for e in returned] == [as_stored(r) for r in changed]
    result = await typed.upsert_many([entity(r) for r in changed])
    assert result == UpsertResult(inserted=0, updated=0, unchanged=4)


# -- filters, order and pages per type ------------------------------------------------


def _compared_rows() -> list[dict[str, As]]:
    """Four rows holding the `ordered` values at index 0, 1, 2, 1 (the nullable one NULL)."""
    rows = []
    for j, at in enumerate((0, 1, 2, 1)):
        values = row(j)
        for k in MATRIX:
            value = k.ordered[at % len(k.ordered)]
            values[k.name] = As(value, value)
            values[_nullable(k)] = As(None, None) if j == 3 else As(value, value)
        rows.append(values)
    return rows


def _count(indices: Sequence[int | None], test: Callable[[int], bool]) -> int:
    return sum(1 for i in indices if i is not None and test(i))


@pytest.mark.parametrize("kind", MATRIX, ids=[k.name for k in MATRIX])
async def test_filters_compare_each_type(typed: TypedRepository, kind: Kind) -> None:
    """eq, ne, lt, le, gt, ge, in_, not_in, between and IS [NOT] NULL count the same rows as
    the values' order says; filters a type has no operator for are refused before any SQL."""
    await typed.add_many([entity(r) for r in _compared_rows()])
    o = kind.ordered
    k = 1
    for name, at in ((kind.name, [0, 1, 2, 1]), (_nullable(kind), [0, 1, 2, None])):
        indices = [None if i is None else i % len(o) for i in at]
        assert await typed.count(**{name: None}) == indices.count(None)
        assert await typed.count(**{name: ne(None)}) == 4 - indices.count(None)
        cases: list[tuple[Any, int]] = [
            (o[k], _count(indices, lambda i: i == k)),
            (ne(o[k]), _count(indices, lambda i: i != k)),
        ]
        ordering = [
            (lt(o[k]), _count(indices, lambda i: i < k)),
            (le(o[k]), _count(indices, lambda i: i <= k)),
            (gt(o[k]), _count(indices, lambda i: i > k)),
            (ge(o[k]), _count(indices, lambda i: i >= k)),
            (between(o[0], o[k]), _count(indices, lambda i: i <= k)),
        ]
        many = [
            (in_([o[0], o[-1]]), _count(indices, lambda i: i in (0, len(o) - 1))),
            (not_in([o[0]]), _count(indices, lambda i: i != 0)),
        ]
        spec = TYPED.field(name)
        json = spec.kind in ("json", "jsonb")
        groups = (
            # (filters, whether the test expects them to work, whether repo refuses them)
            (cases, kind.compare != "none", spec.kind == "json"),
            (ordering, kind.compare == "order", json),
            (many, not (spec.array or json), spec.array or json),
        )
        for group, works, refused in groups:
            for op, expected in group:
                if works:
                    assert await typed.count(**{name: op}) == expected, (name, op)
                elif refused:
                    with pytest.raises(InvalidQuery, match=name):
                        await typed.count(**{name: op})


ORDERED = [k for k in MATRIX if k.compare == "order"]


@pytest.mark.parametrize("kind", ORDERED, ids=[k.name for k in ORDERED])
async def test_order_stream_and_pages_by_each_orderable_type(
    typed: TypedRepository, kind: Kind
) -> None:
    """order_by, stream and keyset pages sort by each orderable type as its values order."""
    await typed.add_many([entity(r) for r in _compared_rows()])
    at = [i % len(kind.ordered) for i in (0, 1, 2, 1)]
    ascending = sorted(range(4), key=lambda j: (at[j], j))
    found = await typed.find(order_by=[kind.name, "id"])
    assert [e.id for e in found] == ascending
    found = await typed.find(order_by=[f"-{kind.name}", "-id"])
    assert [e.id for e in found] == ascending[::-1]
    streamed = [e.id async for e in typed.stream(order_by=[kind.name, "id"], prefetch=1)]
    assert streamed == ascending
    paged: list[int] = []
    token = None
    while True:
        page = await typed.page(after=token, limit=1, order_by=kind.name)
        paged.extend(e.id for e in page)
        if (token := page.next) is None:
            break
    assert paged == ascending


JSON = [k for k in MATRIX if TYPED.field(k.name).kind in ("json", "jsonb")]


@pytest.mark.parametrize("kind", JSON, ids=[k.name for k in JSON])
async def test_types_without_an_order_are_refused_in_order_by(
    typed: TypedRepository, kind: Kind
) -> None:
    """order_by and page() on json or jsonb are refused before any SQL: no shared order."""
    with pytest.raises(InvalidQuery, match=kind.name):
        await typed.find(order_by=kind.name)
    with pytest.raises(InvalidQuery, match=kind.name):
        await typed.page(order_by=kind.name)


# -- keys of each type ------------------------------------------------------------------


class _Keyed(Repository[Any]):
    pass


async def test_a_unique_timetz_holds_one_instant_at_two_offsets(tables: AnyDatabase) -> None:
    """12:00+02 and 10:00+00 are the same instant but not equal: a unique timetz takes both,
    and refuses the same time at the same offset."""
    zoned = tables.repository(ZonedRepository)
    await zoned.add(Zoned(1, dt.time(12, tzinfo=tz(2))))
    await zoned.add(Zoned(2, dt.time(10, tzinfo=UTC)))
    with pytest.raises(UniqueViolation):
        await zoned.add(Zoned(3, dt.time(12, tzinfo=dt.timezone(dt.timedelta(hours=2), "CEST"))))
    assert [z.id for z in await zoned.find(at=dt.time(10, tzinfo=UTC))] == [2]
    assert [z.id for z in await zoned.find(order_by="at")] == [1, 2]


@pytest.mark.parametrize("key", KEYS, ids=[k.name for k in KEYS])
async def test_get_get_many_and_delete_by_a_key_of_each_type(
    tables: AnyDatabase, key: KeyKind
) -> None:
    """Rows keyed by each type are found by their key (and by its other spellings: a uuid's
    str, a bytearray, an enum label, the same instant elsewhere), and deleted by it; a key
    of the wrong type is refused with InvalidQuery naming it."""
    table = KEYED[key.name]
    kind: type[_Keyed] = type(f"Keyed_{key.name}Repository", (_Keyed,), {"table": table})
    repo: _Keyed = tables.repository(kind)
    cls: Any = table.entity
    for n, k in enumerate(key.keys):
        await repo.add(cls(k, f"v{n}"))
    for n, k in enumerate(key.keys):
        assert (await repo.get(k)).v == f"v{n}"
    for other in key.same_as_first:
        assert (await repo.get(other)).v == "v0"
        assert await repo.count(k=other) == 1
    found = await repo.get_many([key.keys[2], *key.same_as_first, key.keys[0]])
    assert [e.v for e in found] == ["v2", *("v0" for _ in key.same_as_first), "v0"]
    assert [e.v for e in await repo.find(order_by="k")] == ["v0", "v1", "v2"]
    await repo.delete(key.keys[1])
    with pytest.raises(NotFound):
        await repo.get(key.keys[1])
    for call in (
        lambda: repo.get(key.wrong),
        lambda: repo.delete(key.wrong),
        lambda: repo.get_many([key.keys[0], key.wrong]),
    ):
        with pytest.raises(InvalidQuery) as got:
            await call()
        assert f"{table.name}.k is the key" in str(got.value)
        assert shown(key.wrong) in str(got.value)
    assert await repo.count() == 2


# -- values no column can hold ---------------------------------------------------------

REFUSED: list[tuple[str, Any, str]] = [
    ("uuid", "not-a-uuid", "8-4-4-4-12"),
    ("uuid", "{12345678-9abc-4def-8123-456789abcdef}", "8-4-4-4-12"),
    ("text_array", "abc", "a list"),
    ("text_array", [1, 2], "element #0"),
    ("text_array", ["a\x00"], "NUL"),
    ("text_array", ["a", None], "element #1 is None"),
    ("bigint_array", [True], "element #0"),
    ("bigint_array", [[1], [2]], "flat list"),
    ("jsonb", {"x": NAN}, "JSON"),
    ("jsonb", {"x": "a\x00"}, "NUL"),
    ("jsonb", {"a\x00": 1}, "NUL"),
    ("jsonb", {"s": {1, 2}}, "set"),
    ("jsonb", {"at": dt.datetime(2026, 1, 1)}, "datetime"),
    ("jsonb", {"price": Decimal("1.5")}, "Decimal"),
    ("jsonb", {(1, 2): "a tuple key"}, "keys must be"),
    ("jsonb", {"s": "\ud800"}, "surrogate"),
    ("jsonb_list", [INF], "JSON"),
    ("json", {"x": -INF}, "JSON"),
    ("timestamptz", dt.datetime.min.replace(tzinfo=tz(5)), "outside the years"),
    ("timestamptz", dt.datetime.max.replace(tzinfo=tz(-5)), "outside the years"),
    ("timestamptz", dt.datetime(2026, 1, 1), "naive"),
    ("timestamptz", dt.datetime.max.replace(tzinfo=UTC), "infinity"),
    ("timestamptz", dt.datetime(1, 1, 1, 1, tzinfo=tz(1)), "infinity"),
    ("timestamp", dt.datetime(2026, 1, 1, tzinfo=UTC), "aware"),
    ("numeric_12_2", Decimal("9999999999.995"), "overflows once rounded"),
    ("numeric_12_2", Decimal("-9999999999.995"), "overflows once rounded"),
    ("numeric_12_2", Decimal("NaN"), "finite"),
    ("numeric_12_2", 0.5, "floats are refused"),
    ("text", "a\x00b", "NUL"),
    ("text", "bad \ud800", "surrogate"),
    ("bigint", 2**63, "out of range"),
    ("integer", 2**31, "out of range"),
    ("smallint", -(2**15) - 1, "out of range"),
    ("real", 1e39, "out of range"),
    ("float", 2**1024, "too large"),
    ("float", Decimal("1.5"), "a float"),
    ("bool", 1, "a bool"),
    ("mood", "nope", "TypedMood member"),
    ("bytea", "text", "bytes"),
    ("date", dt.datetime(2026, 1, 1), "not a datetime"),
    ("interval", 5, "a timedelta"),
    ("time", "12:00", "a time"),
    ("timetz", dt.time(12, 0), "naive"),
    ("timetz", dt.time(12, 0, tzinfo=tz(16)), "within ±15:59"),
    ("timetz", dt.time(12, 0, tzinfo=tz(5, 30, 15)), "whole minutes"),
]


@pytest.mark.parametrize(
    ("field", "bad", "words"), REFUSED, ids=[f"{f}={shown(b, 30)}" for f, b, _ in REFUSED]
)
async def test_values_no_column_can_hold_are_refused_naming_them(
    typed: TypedRepository, field: str, bad: Any, words: str
) -> None:
    """add, add_many, update_where and a filter refuse the value with a DataError naming
    the table, the field and the value, and store nothing."""
    good = entity(row(0))
    bad_entity = attrs.evolve(entity(row(1)), **{field: bad})
    calls: list[Callable[[], Any]] = [
        lambda: typed.add(bad_entity),
        lambda: typed.add_many([good, bad_entity]),
        lambda: typed.upsert_many([good, bad_entity]),
        lambda: typed.update_where({field: bad}, id=0),
    ]
    # A filter is not stored: a numeric past the column's precision is a fair
    # comparison (its bind parameter is plain numeric), pinned in test_parity.
    if TYPED.field(field).kind != "json" and words != "overflows once rounded":
        calls.append(lambda: typed.count(**{field: bad}))
    for call in calls:
        with pytest.raises(DataError) as got:
            await call()
        message = str(got.value)
        assert f"typed.{field} takes" in message
        assert words in message
        assert shown(bad) in message
    with pytest.raises(DataError, match="entity #1"):
        await typed.add_many([good, bad_entity])
    assert await typed.count() == 0


@pytest.mark.parametrize(
    ("field", "bad", "words"), REFUSED, ids=[f"{f}={shown(b, 30)}" for f, b, _ in REFUSED]
)
async def test_values_refused_in_long_lists_only_screened(
    typed: TypedRepository, monkeypatch: pytest.MonkeyPatch, field: str, bad: Any, words: str
) -> None:
    """Past the length checked whole (made 6 here), add_many and upsert_many only screen
    what they send; a value no column can hold is still refused with the full check's
    DataError, naming the entity, and nothing is stored."""
    monkeypatch.setattr(repo._bulk, "CHECK_WHOLE_MAX", 6)
    goods = [attrs.evolve(entity(row(i % SHORT, big=False)), id=i) for i in range(8)]
    bad_entity = attrs.evolve(goods[-1], id=99, **{field: bad})
    assert screens([*goods, bad_entity])
    for load in (typed.add_many, typed.upsert_many):
        with pytest.raises(DataError) as got:
            await load([*goods, bad_entity])
        message = str(got.value)
        assert f"typed.{field} takes" in message
        assert words in message
        assert "entity #8" in message
    assert await typed.count() == 0
