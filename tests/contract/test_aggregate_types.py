"""Every built-in column type through an aggregate's reads of many roots, on both backends.

A root and its children have a column of each type repo maps (and arrays),
so that on PostgreSQL each root column shares the slot of its children's
column of the same type in the flat rows (`aggregate_layout.py`); the
values are the edges of each type. Every read of many roots must give,
value for value and type for type, what `get` gives.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import attrs
import pytest

from repo import Aggregate, AggregateRepository, Column, Repository, Table
from repo._postgres.aggregate import aggregate_statements

from .conftest import AnyDatabase
from .own_schema import own_schema, truncate

KIEV = dt.timezone(dt.timedelta(hours=2))


@attrs.frozen
class Values:
    """A column of each type (every one optional, so that NULL is an edge)."""

    i2: int | None = None
    i4: int | None = None
    i8: int | None = None
    f4: float | None = None
    f8: float | None = None
    num: Decimal | None = None
    flag: bool | None = None
    txt: str | None = None
    day: dt.date | None = None
    naive: dt.datetime | None = None
    aware: dt.datetime | None = None
    clock: dt.time | None = None
    zoned: dt.time | None = None
    span: dt.timedelta | None = None
    uid: uuid.UUID | None = None
    raw: bytes | None = None
    doc: Any = None
    docb: Any = None
    ints: list[int] | None = None
    words: list[str] | None = None


@attrs.frozen
class Probe(Values):
    name: str = attrs.field(kw_only=True)
    probe_id: int | None = attrs.field(default=None, kw_only=True)


@attrs.frozen
class Item(Values):
    probe_id: int = attrs.field(kw_only=True)
    item_id: int | None = attrs.field(default=None, kw_only=True)


# Where the database's type is not the one an annotation maps to by default.
TYPES = {
    "i2": Column(type="smallint", nullable=True),
    "i4": Column(type="integer", nullable=True),
    "f4": Column(type="real", nullable=True),
    "naive": Column(type="timestamp", nullable=True),
    "zoned": Column(type="timetz", nullable=True),
    "doc": Column(type="json", nullable=True),
    "docb": Column(type="jsonb", nullable=True),
}
PROBES = Table("ty_probe", Probe, key="probe_id", columns=TYPES)
ITEMS = Table("ty_item", Item, key="item_id", columns=TYPES, foreign_keys={"probe_id": PROBES})
TABLES = (PROBES, ITEMS)
SHARED = [
    *[("i2", "int2"), ("i4", "int4"), ("i8", "int8"), ("f4", "float4"), ("f8", "float8")],
    *[("num", "numeric"), ("flag", "bool"), ("day", "date"), ("naive", "timestamp")],
    *[("aware", "timestamptz"), ("clock", "time"), ("zoned", "timetz"), ("span", "interval")],
    *[("uid", "uuid"), ("raw", "bytea"), ("doc", "json"), ("docb", "jsonb")],
    *[("ints", "int8[]"), ("words", "text[]")],
]


@attrs.frozen
class ProbeDetail:
    probe: Probe
    items: list[Item]


class Details(AggregateRepository[ProbeDetail]):
    aggregate = Aggregate(ProbeDetail, root=PROBES, many={"items": ITEMS})


class Probes(Repository[Probe]):
    table = PROBES


class Items(Repository[Item]):
    table = ITEMS


EDGES: list[dict[str, Any]] = [
    {},  # every column NULL
    {
        "i2": -32768,
        "i4": 2147483647,
        "i8": -9223372036854775808,
        "f4": -0.0,
        "f8": math.nan,
        "num": Decimal("NaN"),
        "flag": False,
        "txt": "",
        "day": dt.date(1, 1, 1),
        "naive": dt.datetime(1970, 1, 1),
        "aware": dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=KIEV),
        "clock": dt.time(0, 0),
        "zoned": dt.time(23, 59, 59, 999999, tzinfo=KIEV),
        "span": dt.timedelta(days=-1, microseconds=1),
        "uid": uuid.UUID(int=0),
        "raw": b"\x00\xff\x00",
        "doc": {"b": 1, "a": [None, "é"]},
        "docb": "a bare string",
        "ints": [],
        "words": ["", "☃", "a,b", '"q"'],
    },
    {
        "i2": 32767,
        "i4": -2147483648,
        "i8": 9223372036854775807,
        "f4": math.inf,
        "f8": -0.0,
        "num": Decimal("-0.000"),
        "flag": True,
        "txt": "naïve ☃ \\ '\"",
        "day": dt.date(9999, 12, 31),
        "naive": dt.datetime(2038, 1, 19, 3, 14, 8, 1),
        "aware": dt.datetime(1969, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
        "clock": dt.time(23, 59, 59, 999999),
        "zoned": dt.time(0, 0, tzinfo=dt.timezone(dt.timedelta(hours=-11))),
        "span": dt.timedelta(days=36500, seconds=1),
        "uid": uuid.UUID("ffffffff-ffff-ffff-ffff-ffffffffffff"),
        "raw": b"",
        "doc": [],
        "docb": {"deep": {"er": [1.5, True, None]}},
        "ints": [0, -1, 9223372036854775807],
        "words": [],
    },
    {"f8": 5e-324, "num": Decimal("123456789012345678901234567890.000000001"), "f4": 1.5},
]


@pytest.fixture(scope="module")
def types_dsn(migrated_dsn: str) -> Iterator[str]:
    with own_schema(migrated_dsn, TABLES) as dsn:
        yield dsn


@pytest.fixture
def schema(backend_dsn: str | None, request: pytest.FixtureRequest) -> str | None:
    return None if backend_dsn is None else str(request.getfixturevalue("types_dsn"))


async def test_every_type_reads_the_same_from_shared_slots(
    db: AnyDatabase, schema: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    await truncate(schema, TABLES)
    keys: list[int] = []
    for i, root in enumerate(EDGES):
        probe = await db.repository(Probes).add(Probe(name=f"p{i}", **root))
        keys.append(probe.probe_id or 0)
        for values in EDGES[::-1]:  # each kind of value beside each other kind
            await db.repository(Items).add(Item(probe_id=keys[-1], **values))
    details = db.repository(Details)
    alone = [await details.get(k) for k in keys]
    assert [len(d.items) for d in alone] == [len(EDGES)] * len(EDGES)
    reads = {
        "get_many": await details.get_many(keys[::-1]),
        "find": await details.find(order_by="-name"),
        "page": (await details.page(limit=len(keys), order_by="-name")).items,
    }
    for read, found in reads.items():
        # NaN equals nothing, itself included: reprs show it, and every type
        assert [repr(d) for d in found] == [repr(d) for d in alone[::-1]], read
    # The edges are there: the probe's own, and its items' (added in reverse, read by key)
    assert alone[1].probe.i8 == alone[1].items[2].i8 == -9223372036854775808
    assert alone[2].items[1].raw == b""
    assert alone[2].items[2].raw == b"\x00\xff\x00"
    if schema is not None:
        flat = aggregate_statements(Details.aggregate).flat
        assert flat.layout.share  # not one column drifted
        statement = flat.wrap("SELECT 1", ())
        for field, type_ in SHARED:  # each in the slot of an item's column of its type
            assert f'_k0."{field}"::{type_}' in statement, field
        assert not [r for r in caplog.records if r.name == "repo"]
