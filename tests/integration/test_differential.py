"""The differential fuzzer: MemoryDatabase and PostgreSQL, the same random values, side by side.

For every supported column type, Hypothesis draws a batch of values, edge
values weighted in (NaN, ±inf, -0.0, NUL, lone surrogates, integer limits
and one past them, datetime limits, odd UTC offsets, Unicode case pairs,
long strings, other spellings such as a uuid's str or a tuple for an
array), writes them one by one or in one ``add_many`` (COPY on the server)
into a table of that type on both backends, and compares, step by step:

- the outcome of each write (the value stored, or the class of the error);
- the rows read back, ordered by the value both ways (NULLs included);
- for a few probe values: the ids ``find`` returns under eq, ne, lt, le,
  gt, ge, between, in_ and not_in, and like/ilike patterns on text.

It fails on the first difference, unless that difference is one of
`KNOWN`: each entry names one difference the in-memory backend is known to
have (being fixed elsewhere) and the fuzzer tolerates exactly that case,
so the rest stays checked. ``REPO_FUZZ_EXAMPLES`` sets the examples per
type (default 16: 544 per run), drawn the same on every run unless
``REPO_FUZZ_RANDOM=1``; text is fuzzed twice, on a "C" and
on an ``en_US.UTF-8`` database (``MemoryDatabase(collation=...)``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import json
import math
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from functools import partial
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from repo import (
    Column,
    Database,
    Repository,
    Table,
    between,
    eq,
    ge,
    gt,
    ilike,
    in_,
    le,
    like,
    lt,
    ne,
    not_in,
)
from repo.testing import MemoryDatabase
from tests.conftest import _admin
from tests.contract.own_schema import create_statements, drop_statements
from tests.locales import locale_database

EXAMPLES = int(os.environ.get("REPO_FUZZ_EXAMPLES", "16"))
# CI draws the same examples on every run (a red build is never luck);
# REPO_FUZZ_RANDOM=1 draws new ones, to search.
RANDOM = os.environ.get("REPO_FUZZ_RANDOM") == "1"


class FuzzMood(enum.StrEnum):
    """A PostgreSQL enum whose declaration order is not its labels' alphabetical order."""

    HIGH = "high"
    LOW = "low"
    MID = "mid"


# -- values ---------------------------------------------------------------------------

CASE_PAIRS = (
    "\u03c2",
    "\u03a3",
    "\u03c3",
    "\u00df",
    "\u1e9e",
    "\u017f",
    "s",
    "S",
    "\u0131",
    "\u0130",
    "i",
    "I",
    "\u212a",
    "k",
    "\u01c5",
    "\ufb01",
)  # fmt: skip  (final and capital sigma, sharp s, long s, dotless and dotted i, Kelvin)
TEXT_EDGES = (
    "",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfff",
    "ΟΔΟΣ",
    "\u0131\u0131",
    "\u017fun",
    "%",
    "_",
    "\\",
    "a\\",
    "e\u0301",
    "é",
    "🙂",
    "\u0378",
    "\u0379",
    "x" * 5_000,
    "ß" * 3_000,
)


def _text() -> st.SearchStrategy[str]:
    chars = st.one_of(
        st.characters(codec="utf-8", exclude_categories=["Cs"]),
        st.characters(min_codepoint=0, max_codepoint=0xDFFF),  # NUL and lone surrogates
        st.sampled_from((*CASE_PAIRS, "a", "A", "b", "B", "%", "_", "\\", " ", "-")),
    )
    return st.one_of(
        st.sampled_from(TEXT_EDGES),
        st.text(chars, max_size=8),
        st.text(st.sampled_from("aAbB -é"), max_size=5),
    )


def _ints(bits: int) -> st.SearchStrategy[int]:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return st.one_of(
        st.sampled_from([low, high, low - 1, high + 1, 0, -1]),
        st.integers(min_value=low, max_value=high),
        st.integers(min_value=-10, max_value=10),
    )


def _floats() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 1.7976931348623157e308]),
        st.floats(),
        st.integers(min_value=-(2**53), max_value=2**53),
    )


def _reals() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from([math.nan, math.inf, -math.inf, 3.4028234663852886e38, 3.5e38, 1e-46]),
        st.floats(width=32),
        st.floats(),
    )


def _numeric(scale: int | None) -> st.SearchStrategy[Any]:
    edges = [Decimal("0.125"), Decimal("-0.125"), Decimal("9999999999.995"), Decimal("1E-30")]
    if scale is None:
        edges += [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")]
    return st.one_of(
        st.sampled_from(edges),
        st.decimals(allow_nan=scale is None, allow_infinity=scale is None, places=3),
        st.decimals(min_value=-(10**12), max_value=10**12, places=scale or 4),
        st.integers(min_value=-(10**12), max_value=10**12),
    )


OFFSETS = st.one_of(
    st.sampled_from(
        [dt.UTC, dt.timezone(dt.timedelta(hours=14)), dt.timezone(-dt.timedelta(hours=12))]
    ),
    st.builds(
        dt.timezone,
        st.timedeltas(
            min_value=-dt.timedelta(hours=23, minutes=59),
            max_value=dt.timedelta(hours=23, minutes=59),
        ),
    ),
)
INTERVALS = (dt.timedelta.max, dt.timedelta.min, dt.timedelta(microseconds=-1))
DATETIME_EDGES = (dt.datetime.min, dt.datetime.max, dt.datetime(2000, 2, 29, 23, 59, 59, 999_999))


def _timestamps(aware: bool) -> st.SearchStrategy[dt.datetime]:
    plain = st.one_of(st.sampled_from(DATETIME_EDGES), st.datetimes())
    if not aware:
        return plain
    return st.builds(lambda d, tz: d.replace(tzinfo=tz), plain, OFFSETS)


def _times() -> st.SearchStrategy[dt.time]:
    return st.one_of(
        st.sampled_from([dt.time.min, dt.time.max]),
        st.times(),
        st.builds(lambda t, tz: t.replace(tzinfo=tz), st.times(), OFFSETS),
    )


def _uuids() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.uuids(),
        st.sampled_from([uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)]),
        st.uuids().map(str),
        st.uuids().map(lambda u: u.hex.upper()),
        st.sampled_from(["not-a-uuid", "", "{12345678-9abc-4def-8123-456789abcdef}"]),
    )


def _view(data: bytes) -> memoryview:
    return memoryview(data)


def _bytes() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.binary(max_size=16),
        st.sampled_from([b"", b"\x00", b"\xff" * 3_000]),
        st.binary(max_size=4).map(bytearray),
        st.binary(max_size=4).map(_view),
    )


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=4),
    st.sampled_from(["\x00", "\ud800", Decimal("1.5"), math.nan]),
)


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.one_of(st.integers(-3, 3), st.booleans(), st.none())
    return st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=3), inner, max_size=3),
        st.dictionaries(keys, inner, max_size=2),
    )


def _json() -> st.SearchStrategy[Any]:
    return st.recursive(JSON_SCALARS, _containers, max_leaves=6)


def _arrays(element: st.SearchStrategy[Any], *, nulls: bool = False) -> st.SearchStrategy[Any]:
    items = st.one_of(element, st.none()) if nulls else element
    return st.one_of(
        st.lists(items, max_size=4),
        st.lists(items, max_size=3).map(tuple),
        st.sampled_from(["abc", [None]]),
    )


def _moods() -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(list(FuzzMood)), st.sampled_from(["low", "nope", ""]))


@attrs.frozen
class Kind:
    """A column type the fuzzer writes: its annotation, SQL type, values, and what filters it."""

    name: str
    annotation: Any
    sql: str | None
    values: st.SearchStrategy[Any]
    compare: str = "order"  # "order": every filter and order_by; "eq": eq/ne/in; "none"
    text: bool = False


KINDS: tuple[Kind, ...] = (
    Kind("text", str, None, _text(), text=True),
    Kind("varchar", str, "varchar(12)", _text(), text=True),
    Kind("bigint", int, None, _ints(64)),
    Kind("integer", int, "integer", _ints(32)),
    Kind("smallint", int, "smallint", _ints(16)),
    Kind("float", float, None, _floats()),
    Kind("real", float, "real", _reals()),
    Kind("numeric", Decimal, None, _numeric(None)),
    Kind("numeric_12_2", Decimal, "numeric(12,2)", _numeric(2)),
    Kind("bool", bool, None, st.one_of(st.booleans(), st.sampled_from([0, 1, "t"]))),
    Kind("timestamptz", dt.datetime, None, _timestamps(aware=True)),
    Kind("timestamp", dt.datetime, "timestamp", _timestamps(aware=False)),
    Kind("date", dt.date, None, st.one_of(st.sampled_from([dt.date.min, dt.date.max]), st.dates())),
    Kind("time", dt.time, None, _times()),
    Kind("timetz", dt.time, "timetz", _times()),
    Kind("interval", dt.timedelta, None, st.one_of(st.sampled_from(INTERVALS), st.timedeltas())),
    Kind("uuid", uuid.UUID, None, _uuids()),
    Kind("bytea", bytes, None, _bytes()),
    Kind("jsonb", Any, None, _json(), compare="eq"),
    Kind("json", Any, "json", _json(), compare="none"),
    Kind("mood", FuzzMood, None, _moods()),
    Kind("text_array", list[str], None, _arrays(_text())),
    Kind("text_or_null_array", list[str | None], None, _arrays(_text(), nulls=True), compare="eq"),
    Kind("bigint_array", list[int], None, _arrays(_ints(64))),
    Kind("float_array", list[float], None, _arrays(_floats())),
    Kind("numeric_array", list[Decimal], None, _arrays(_numeric(None))),
    Kind("bool_array", list[bool], None, _arrays(st.booleans())),
    Kind("timestamptz_array", list[dt.datetime], None, _arrays(_timestamps(aware=True))),
    Kind("date_array", list[dt.date], None, _arrays(st.dates())),
    Kind("uuid_array", list[uuid.UUID], None, _arrays(_uuids())),
    Kind("bytea_array", list[bytes], None, _arrays(_bytes())),
    Kind("mood_array", list[FuzzMood], None, _arrays(_moods())),
)  # fmt: skip


# -- known differences ------------------------------------------------------------------


def _walk(value: Any) -> Iterator[Any]:
    """`value` and, for lists, tuples and dicts, everything inside it."""
    yield value
    if isinstance(value, list | tuple):
        for v in value:
            yield from _walk(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(k)
            yield from _walk(v)


def _exponent_float(value: Any) -> bool:
    return any(isinstance(v, float) and "e+" in repr(v) for v in _walk(value))


def _whole_10000(value: Any) -> bool:
    """A nonzero whole number of scale 0 that is a multiple of 10,000 (one base-10000 digit 0)."""
    return any(
        isinstance(v, int | Decimal)
        and not isinstance(v, bool)
        and (not isinstance(v, Decimal) or (v.is_finite() and v.as_tuple().exponent >= 0))  # type: ignore[operator]
        and v != 0
        and int(v) % 10_000 == 0
        for v in _walk(value)
    )


def _jsonb_key(key: str) -> tuple[int, bytes]:
    raw = key.encode("utf-8", "surrogatepass")
    return (len(raw), raw)


def _unsorted_keys(value: Any) -> bool:
    """A dict of two or more keys that jsonb would order otherwise (shorter first, then bytes)."""
    for v in _walk(value):
        if isinstance(v, dict) and len(v) > 1:
            keys = [json_key(k) for k in v]
            if keys != sorted(keys, key=_jsonb_key):
                return True
    return False


def json_key(key: Any) -> str:
    """A dict key as JSON spells it (what json.dumps makes of None, a bool, a number)."""
    if isinstance(key, str):
        return key
    return json.dumps(key)


FILTERS = frozenset({"eq", "ne", "in", "not_in", "lt", "le", "gt", "ge", "between"})
ORDERING = frozenset({"read", "lt", "le", "gt", "ge", "between"})


@attrs.frozen
class Known:
    """One difference the in-memory backend is known to have, and the one case it covers.

    `applies(kind, step, value, batch)` says whether a difference seen at
    `step` (``"write"``, ``"read"``, or a filter's name) with `value` (the
    value written, the order, or the probe), on a table holding `batch`, is
    this one.
    """

    reason: str
    applies: Callable[[str, str, Any, list[Any]], bool]


# Each entry is being fixed elsewhere (the `values` work on repo/testing/_values.py,
# _eval.py and repo/_checks.py); remove it when its fix lands and the fuzzer stays green.
KNOWN: tuple[Known, ...] = (
    Known(
        "jsonb: a float whose JSON has a positive exponent (1e+16) is a numeric the server "
        "prints without one, so it reads back as an int; memory keeps the float",
        lambda kind, step, value, batch: (
            kind == "jsonb" and (_exponent_float(value) or _exponent_float(batch))
        ),
    ),
    Known(
        "numeric (no scale): asyncpg's binary codec returns a whole multiple of 10,000 in "
        "exponent form (20000 -> Decimal('2E+4')); memory keeps Decimal('20000'): equal, "
        "but str() differs",
        lambda kind, step, value, batch: (
            kind in ("numeric", "numeric_array") and (_whole_10000(value) or _whole_10000(batch))
        ),
    ),
    Known(
        "jsonb: the server orders an object's keys (shorter first, then by bytes); memory "
        "keeps the order given",
        lambda kind, step, value, batch: (
            kind == "jsonb" and (_unsorted_keys(value) or _unsorted_keys(batch))
        ),
    ),
)


def known(kind: str, step: str, value: Any, batch: list[Any]) -> str | None:
    """The reason of the known difference this is, or None if it is a new one."""
    for entry in KNOWN:
        if entry.applies(kind, step, value, batch):
            return entry.reason
    return None


# -- the tables ------------------------------------------------------------------------


def _table(kind: Kind) -> Table[Any]:
    namespace = {
        "__annotations__": {"id": int, "v": kind.annotation | None},
        "__module__": __name__,
        "v": None,
    }
    cls = attrs.frozen(type(f"Fuzz_{kind.name}", (), namespace))
    columns = {"v": Column(type=f"{kind.sql}")} if kind.sql else {}
    return Table(f"fuzzed_{kind.name}", cls, key="id", columns=columns)


TABLES = {k.name: _table(k) for k in KINDS}
REPOSITORIES = {
    name: type(f"Fuzz_{name}_repository", (Repository,), {"table": table})
    for name, table in TABLES.items()
}


# -- comparing ----------------------------------------------------------------------------


def canon(value: Any) -> Any:
    """`value` as a comparable, exact description: type included, NaN equal to NaN, -0.0 not 0."""
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else repr(value))
    if isinstance(value, Decimal):
        return ("numeric", "nan" if value.is_nan() else str(value))
    if isinstance(value, dict):
        return ("dict", tuple((canon(k), canon(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(canon(v) for v in value))
    if isinstance(value, dt.datetime | dt.time):
        return (type(value).__name__, value.isoformat(), repr(value.tzinfo))
    if attrs.has(type(value)):
        return ("row", value.id, canon(value.v))
    return (type(value).__name__, repr(value))


async def outcome(make: Callable[[Any], Awaitable[Any]], side: Any) -> Any:
    """What a step gave: ("ok", its canonical result), or ("error", the error's class)."""
    try:
        return ("ok", canon(await make(side)))
    except Exception as exc:  # any error class is an outcome to compare
        return ("error", type(exc).__name__)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 300 else f"{text[:300]}... ({len(text)} characters)"


class Pair:
    """One table on both backends, the same steps on each, their outcomes compared."""

    def __init__(self, kind: Kind, pg: Any, memory: MemoryDatabase) -> None:
        self.kind = kind
        self.repo_class = REPOSITORIES[kind.name]
        self.sides: tuple[Any, Any] = (memory.repository(self.repo_class), pg)
        self.batch: list[Any] = []

    async def both(self, step: str, value: Any, make: Callable[[Any], Awaitable[Any]]) -> bool:
        """Run `make(repository)` on each side; True if they agree, or differ in a known way."""
        memory, postgres = [await outcome(make, side) for side in self.sides]
        if memory == postgres:
            return True
        reason = known(self.kind.name, step, value, self.batch)
        if reason is None:
            msg = (
                f"{self.kind.name}: {step} with {_short(value)} differs\n"
                f"  memory:     {_short(memory)}\n  postgresql: {_short(postgres)}"
            )
            raise AssertionError(msg)
        event(f"known difference: {reason.partition(':')[0]}")
        return False


def _probes(kind: Kind) -> list[tuple[str, Callable[[Any], Any]]]:
    if kind.compare == "none":
        return []
    found: list[tuple[str, Callable[[Any], Any]]] = [("eq", eq), ("ne", ne)]
    found += [("in", lambda p: in_([p])), ("not_in", lambda p: not_in([p]))]
    if kind.compare == "order":
        found += [("lt", lt), ("le", le), ("gt", gt), ("ge", ge)]
    return found


async def example(
    pair: Pair, values: list[Any], path: str, probes: list[Any], patterns: list[str]
) -> None:
    """One example: write `values` by `path`, read them back, filter by each probe."""
    cls = TABLES[pair.kind.name].entity
    entities = [cls(id=i, v=v) for i, v in enumerate(values)]
    pair.batch = list(values)
    if path == "add_many":
        if not await pair.both("write", values, partial(_add_many, entities=entities)):
            return
    else:
        for e in entities:
            if not await pair.both("write", e.v, partial(_add, entity=e)):
                await asyncio.gather(*(_forget(side, e.id) for side in pair.sides))
    orders = [["id"]]
    if pair.kind.compare == "order":
        orders += [["v", "id"], ["-v", "id"]]
    for order in orders:
        await pair.both("read", order, partial(_find, order=order))
    for probe in probes:
        for name, op in _probes(pair.kind):
            await pair.both(name, probe, partial(_where, make=partial(op, probe)))
        if pair.kind.compare == "order" and values:
            low = values[0]
            span = partial(between, low, probe)
            await pair.both("between", (low, probe), partial(_where, make=span))
    if pair.kind.compare != "none":
        several = [v for v in values if v is not None][:3]
        for name, given, where in (
            ("in", several, in_),
            ("not_in", several, not_in),
            ("in_empty", [], in_),
            ("not_in_empty", [], not_in),
        ):
            await pair.both(name, given, partial(_where, make=partial(where, given)))
    for pattern in patterns:
        await pair.both("like", pattern, partial(_where, make=partial(like, pattern)))
        await pair.both("ilike", pattern, partial(_where, make=partial(ilike, pattern)))
    if probes and entities:
        # update_where: the other write path (a value set on rows a filter chose).
        pair.batch.append(probes[0])
        if await pair.both("write", probes[0], partial(_set_first, value=probes[0])):
            await pair.both("read", ["id"], partial(_find, order=["id"]))


async def _add(repository: Any, entity: Any) -> Any:
    return await repository.add(entity)


async def _add_many(repository: Any, entities: list[Any]) -> Any:
    return await repository.add_many(entities, returning=True)


async def _find(repository: Any, order: list[str]) -> Any:
    return await repository.find(order_by=order)


async def _set_first(repository: Any, value: Any) -> Any:
    return await repository.update_where({"v": value}, id=0)


async def _where(repository: Any, make: Callable[[], Any]) -> list[int]:
    """The ids of the rows whose value passes the filter `make()` (made here: it may raise)."""
    return [e.id for e in await repository.find(v=make(), order_by="id")]


async def _forget(repository: Any, key: int) -> None:
    await repository.delete_where(id=key)


# -- the runs ------------------------------------------------------------------------------


class Bench:
    """An event loop and a pool on a database holding the fuzzer's tables, for a module."""

    def __init__(self, dsn: str, collation: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.collation = collation
        self.pg = self.run(Database.connect(dsn, min_size=1, max_size=2, acquire_timeout=10).open())
        # One connection held for the module: a pooled call's acquire and reset cost
        # four times its statement, and every call here is autocommit anyway.
        self.held = self.pg.acquire()
        self.conn = self.run(self.held.__aenter__())

    def run(self, step: Awaitable[Any]) -> Any:
        return self.loop.run_until_complete(step)

    def close(self) -> None:
        self.run(self.held.__aexit__(None, None, None))
        self.run(self.pg.close())
        self.loop.close()

    async def pair(self, kind: Kind) -> Pair:
        await self.conn.execute(f'DELETE FROM "{TABLES[kind.name].name}"')
        postgres = self.pg.repository(REPOSITORIES[kind.name], connection=self.conn)
        return Pair(kind, postgres, MemoryDatabase(collation=self.collation))


@contextmanager
def _bench(dsn: str, collation: str, tables: list[Table[Any]]) -> Iterator[Bench]:
    asyncio.run(_admin(dsn, *drop_statements(tables), *create_statements(tables)))
    bench = Bench(dsn, collation)
    try:
        yield bench
    finally:
        bench.close()
        asyncio.run(_admin(dsn, *drop_statements(tables)))


@pytest.fixture(scope="module")
def bench(migrated_dsn: str) -> Iterator[Bench]:
    """Every kind's table in the scratch database ("C.UTF-8": code point order, as "C")."""
    with _bench(migrated_dsn, "C", list(TABLES.values())) as made:
        yield made


@pytest.fixture(scope="module")
def en_us_bench(server_dsn: str) -> Iterator[Bench]:
    """The text tables in a database created with LOCALE 'en_US.UTF-8'."""
    texts = [TABLES["text"], TABLES["text_array"]]
    with (
        locale_database(server_dsn, "en_US.UTF-8") as dsn,
        _bench(dsn, "en_US.UTF-8", texts) as made,
    ):
        yield made


def _fuzz(bench: Bench, kind: Kind) -> None:
    @settings(
        max_examples=EXAMPLES,
        derandomize=not RANDOM,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        some = st.one_of(kind.values, kind.values, kind.values, st.none())
        values = data.draw(st.lists(some, min_size=1, max_size=6), label="values")
        path = data.draw(st.sampled_from(["add", "add_many"]), label="path")
        probes = data.draw(
            st.lists(st.one_of(st.sampled_from(values), some), max_size=2), label="probes"
        )
        patterns: list[str] = []
        if kind.text:
            pieces = st.one_of(
                st.sampled_from(["%", "_", "\\", "\\%"]), _text().map(lambda s: s[:3])
            )
            patterns = data.draw(st.lists(st.lists(pieces, max_size=4).map("".join), max_size=2))
        pair = bench.run(bench.pair(kind))
        bench.run(example(pair, values, path, probes, patterns))

    run()


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_memory_and_postgres_store_filter_and_order_alike(bench: Bench, kind: Kind) -> None:
    """Random values of the type (edges included): same stored values, results and errors."""
    _fuzz(bench, kind)


@pytest.mark.parametrize(
    "kind", [k for k in KINDS if k.name in ("text", "text_array")], ids=lambda k: k.name
)
def test_text_under_en_us_collation_alike(en_us_bench: Bench, kind: Kind) -> None:
    """Random text on an en_US.UTF-8 database and on MemoryDatabase(collation='en_US.UTF-8')."""
    _fuzz(en_us_bench, kind)
