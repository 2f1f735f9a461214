"""Coalesced lookups on PostgreSQL: pool-level gets pending together are one statement.

Counted twice: as `StatementEvent`s (one per batch, `callers` the calls it
answered) and as round trips on the wire (`Wiretap`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import attrs
import pytest

from repo import (
    Database,
    DatabaseError,
    NotFound,
    Repository,
    StatementEvent,
    Table,
    UnitOfWork,
)
from repo._postgres import coalesce as coalesce_module
from repo._postgres import pool as pool_module
from repo._postgres import sessions as sessions_module
from tests.contract.own_schema import own_schema, truncate
from tests.wire import Wiretap


def _not_bad(_instance: object, _attribute: object, value: str) -> None:
    if value == "bad":
        msg = "a widget is never called 'bad'"
        raise ValueError(msg)


@attrs.frozen
class Widget:
    name: str = attrs.field(validator=_not_bad)
    id: int | None = None


WIDGETS = Table("coalesce_widget", Widget, key="id")


class WidgetRepository(Repository[Widget]):
    table = WIDGETS


@attrs.frozen
class Pair:
    a: int
    b: str
    note: str


PAIRS = Table("coalesce_pair", Pair, key=("a", "b"))


class PairRepository(Repository[Pair]):
    table = PAIRS


@attrs.frozen
class Padded:
    code: str
    label: str


PADDED = Table("coalesce_padded", Padded, key="code")


class PaddedRepository(Repository[Padded]):
    table = PADDED


class WidgetUnit(UnitOfWork):
    widgets: WidgetRepository


@pytest.fixture(scope="module")
def schema(migrated_dsn: str) -> Iterator[str]:
    with own_schema(migrated_dsn, [WIDGETS, PAIRS]) as dsn:
        # A char(4) key, read back blank-padded: Python's 'ab' is not 'ab  '.
        asyncio.run(
            _execute(dsn, "CREATE TABLE coalesce_padded (code char(4) PRIMARY KEY, label text)")
        )
        try:
            yield dsn
        finally:
            asyncio.run(_execute(dsn, "DROP TABLE IF EXISTS coalesce_padded"))


async def _execute(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture
async def loaded(schema: str) -> str:
    """60 widgets (ids 1..60; id 30 named 'bad', stored behind the mapping's back)."""
    await truncate(schema, [WIDGETS, PAIRS])
    await _execute(
        schema,
        "INSERT INTO coalesce_widget (name) "
        "SELECT CASE WHEN i = 30 THEN 'bad' ELSE 'w' || i END FROM generate_series(1, 60) i",
        "INSERT INTO coalesce_pair (a, b, note) SELECT i, 'k' || i, 'n' || i "
        "FROM generate_series(1, 20) i",
        "TRUNCATE coalesce_padded",
        "INSERT INTO coalesce_padded VALUES ('ab', 'two'), ('abcd', 'four')",
    )
    return schema


class Events:
    def __init__(self) -> None:
        self.statements: list[StatementEvent] = []

    def __call__(self, event: object) -> None:
        if isinstance(event, StatementEvent):
            self.statements.append(event)


@pytest.fixture
async def events() -> Events:
    return Events()


@pytest.fixture
async def db(loaded: str, events: Events) -> AsyncIterator[Database]:
    async with Database.connect(loaded, min_size=10, max_size=10, on_event=events) as database:
        # Warm: every connection open, the statements prepared.
        await database.repository(WidgetRepository).get(1)
        events.statements.clear()
        yield database


async def test_100_concurrent_gets_on_a_pool_of_10_are_at_most_10_statements(
    db: Database, events: Events
) -> None:
    widgets = db.repository(WidgetRepository)
    keys = list(range(1, 101))  # 61..100 absent; 30 does not convert
    tasks = [asyncio.ensure_future(widgets.get(k)) for k in keys]
    await asyncio.sleep(0)  # every caller has joined its batch, not yet sent
    tasks[6].cancel()  # key 7: before the batch is sent
    for _ in range(3):
        await asyncio.sleep(0)  # the batch is on the wire
    cancelled = {7, 45, 99}
    tasks[44].cancel()
    tasks[98].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)

    assert 1 <= len(events.statements) <= 10, events.statements
    # Key 7's caller left before its batch went: the others were answered.
    assert sum(e.callers for e in events.statements) == 99
    for key, result in zip(keys, results, strict=True):
        if key in cancelled:
            assert isinstance(result, asyncio.CancelledError), (key, result)
        elif key == 30:
            assert isinstance(result, ValueError), result
        elif key > 60:
            assert isinstance(result, NotFound), (key, result)
            assert result.key == key
        else:
            assert result == Widget(f"w{key}", key)


async def test_a_batch_is_one_round_trip_on_the_wire(loaded: str) -> None:
    async with (
        Wiretap(loaded) as tap,
        Database.connect(tap.dsn, min_size=2, max_size=2) as db,
    ):
        widgets = db.repository(WidgetRepository)
        await asyncio.gather(*(widgets.get(k) for k in (1, 2)))  # warm both connections
        tap.clear()
        found = await asyncio.gather(*(widgets.get(k) for k in range(1, 51) if k != 30))
        assert [w.id for w in found] == [k for k in range(1, 51) if k != 30]
        trips = tap.clear()
        assert len(trips) == 1, trips
        assert trips[0].startswith(
            'SELECT "name", "id" FROM "coalesce_widget" WHERE "id" = ANY($1)'
        )


async def test_a_lone_get_sends_its_own_statement_and_waits_for_nothing(
    loaded: str, events: Events, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No timer: the statement leaves on the loop's next turn, counted in turns, not time;
    a lone get takes its connection and gives it back, as uncoalesced (nothing is held
    for sequential code, whose next statement may be anything)."""
    ticks = 0
    sent_at: list[int] = []

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    def counted(call: Any) -> Any:
        async def sent(*args: Any, **kwargs: Any) -> Any:
            sent_at.append(ticks)
            return await call(*args, **kwargs)

        return sent

    for module in (sessions_module, coalesce_module):
        monkeypatch.setattr(module, "call", counted(module.call))
    take = pool_module.Pool.take
    takes = 0

    async def counted_take(self: pool_module.Pool) -> Any:
        nonlocal takes
        takes += 1
        return await take(self)

    monkeypatch.setattr(pool_module.Pool, "take", counted_take)
    turns: dict[tuple[bool, bool], int] = {}
    ticking = asyncio.ensure_future(ticker())
    try:
        for coalesce in (False, True):
            async with Database.connect(
                loaded, min_size=1, max_size=1, on_event=events, coalesce=coalesce
            ) as db:
                widgets = db.repository(WidgetRepository)
                for after_another in (True, False):
                    if not after_another:
                        # Long enough for any sender to have given its connection back.
                        for _ in range(5):
                            await asyncio.sleep(0)
                    else:
                        await widgets.get(1)
                    events.statements.clear()
                    sent_at.clear()
                    takes = 0
                    start = ticks
                    assert await widgets.get(2) == Widget("w2", 2)
                    turns[coalesce, after_another] = sent_at[0] - start
                    assert len(events.statements) == 1
                    event = events.statements[0]
                    assert event.callers == 1
                    # The uncoalesced statement itself, not a batch of one.
                    assert event.sql.endswith('WHERE "id" = $1')
                    assert takes == 1
                assert db.pool.get_idle_size() == db.pool.get_size()
    finally:
        ticking.cancel()
    assert turns[False, True] == turns[False, False] == 0
    assert turns[True, True] <= 1, turns
    assert turns[True, False] <= 1, turns


async def test_off_every_call_is_its_own_statement(loaded: str, events: Events) -> None:
    async with Database.connect(
        loaded, min_size=5, max_size=5, on_event=events, coalesce=False
    ) as db:
        widgets = db.repository(WidgetRepository)
        found = await asyncio.gather(*(widgets.get(k) for k in range(1, 21)))
        assert [w.id for w in found] == list(range(1, 21))
        assert len(events.statements) == 20
        assert {e.callers for e in events.statements} == {1}


async def test_units_of_work_never_coalesce(db: Database, events: Events) -> None:
    async with WidgetUnit(db, readonly=True) as uow:
        found = await asyncio.gather(*(uow.widgets.get(k) for k in range(1, 11)))
    assert [w.id for w in found] == list(range(1, 11))
    gets = [e for e in events.statements if "coalesce_widget" in e.sql]
    assert len(gets) == 10
    assert {e.callers for e in gets} == {1}


async def test_get_many_and_find_one_join_the_batch(db: Database, events: Events) -> None:
    widgets = db.repository(WidgetRepository)
    got = await asyncio.gather(
        widgets.get(1),
        widgets.get_many([2, 3, 2]),
        widgets.find_one(id=4),
        widgets.find_one(id=999),
        widgets.get_many([5, 998]),
        widgets.get(1),
        return_exceptions=True,
    )
    assert got[0] == Widget("w1", 1)
    assert got[1] == [Widget("w2", 2), Widget("w3", 3), Widget("w2", 2)]
    assert got[2] == Widget("w4", 4)
    assert got[3] is None
    assert isinstance(got[4], NotFound)
    assert got[4].key == [998]
    assert got[5] == Widget("w1", 1)
    assert len(events.statements) == 1
    assert events.statements[0].callers == 6
    # find_one on something else than the key alone is not a lookup.
    events.statements.clear()
    assert await widgets.find_one(name="w9") == Widget("w9", 9)
    assert "ANY" not in events.statements[0].sql


async def test_composite_keys_coalesce(db: Database, events: Events) -> None:
    pairs = db.repository(PairRepository)
    got = await asyncio.gather(
        pairs.get((1, "k1")),
        pairs.get((2, "k2")),
        pairs.get((2, "k1")),
        pairs.get_many([(3, "k3"), (4, "k4")]),
        return_exceptions=True,
    )
    assert got[0] == Pair(1, "k1", "n1")
    assert got[1] == Pair(2, "k2", "n2")
    assert isinstance(got[2], NotFound)
    assert got[2].key == (2, "k1")
    assert got[3] == [Pair(3, "k3", "n3"), Pair(4, "k4", "n4")]
    assert len(events.statements) == 1


async def test_keys_python_and_the_server_compare_differently(db: Database, events: Events) -> None:
    """char(4) pads: the server finds 'ab' as 'ab  ', which Python does not match to 'ab'."""
    padded = db.repository(PaddedRepository)
    got = await asyncio.gather(
        padded.get("ab"), padded.get("abcd"), padded.get("zz"), return_exceptions=True
    )
    assert got[0] == Padded("ab  ", "two")
    assert got[1] == Padded("abcd", "four")
    assert isinstance(got[2], NotFound)
    # Separately, as each would have been: the same answers.
    assert await padded.get("ab") == got[0]


async def test_a_failing_batch_fails_its_callers_only(db: Database) -> None:
    missing = Table("coalesce_no_such_table", Widget, key="id")

    class Missing(Repository[Widget]):
        table = missing

    widgets = db.repository(WidgetRepository)
    nowhere = db.repository(Missing)
    got = await asyncio.gather(
        nowhere.get(1), widgets.get(1), nowhere.get(2), widgets.get(2), return_exceptions=True
    )
    assert isinstance(got[0], DatabaseError), got[0]
    assert isinstance(got[2], DatabaseError), got[2]
    assert got[1] == Widget("w1", 1)
    assert got[3] == Widget("w2", 2)


async def test_every_caller_cancelled_sends_nothing(db: Database, events: Events) -> None:
    widgets = db.repository(WidgetRepository)
    tasks = [asyncio.ensure_future(widgets.get(k)) for k in range(1, 5)]
    await asyncio.sleep(0)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(0.01)
    assert events.statements == []
    assert await widgets.get(5) == Widget("w5", 5)
