"""MemoryDatabase and server defaults: what it evaluates, and what it refuses at first use."""

from __future__ import annotations

import datetime as dt
import decimal
import re
from typing import Any

import attrs
import pytest

from repo import Column, ForeignKey, InvalidQuery, NotSupportedInMemory, Repository, Table
from repo.testing import MemoryDatabase


@attrs.frozen
class Counter:
    name: str
    counter_id: int | None = None
    serial: int | None = None


def _repository(table: Table[Any]) -> type[Repository[Any]]:
    made: type[Repository[Any]] = type("Made", (Repository,), {"table": table})
    return made


@pytest.mark.parametrize(
    ("default", "why"),
    [
        ("nextval('counter_serial_seq')", "neither a constant nor one of the functions"),
        ("random()", "neither a constant nor one of the functions"),
        ("1 + 1", "neither a constant nor one of the functions"),
        ("'abc'::bigint", "not a value of the column's type bigint"),
        ("gen_random_uuid()", "it makes a uuid, and the column is bigint"),
        ("now()", "it makes a timestamptz, and the column is bigint"),
    ],
)
async def test_a_default_it_cannot_evaluate_is_refused_at_first_use(default: str, why: str) -> None:
    """The table's first use (a repository on it) raises NotSupportedInMemory naming the
    table, the column, the expression, why, and what to do instead; nothing is guessed."""
    table = Table(
        "counter",
        Counter,
        key="counter_id",
        columns={"serial": Column(generated=True, server_default=default)},
    )
    db = MemoryDatabase()
    for _ in range(2):
        with pytest.raises(NotSupportedInMemory) as got:
            db.repository(_repository(table))
        message = str(got.value)
        assert f"counter.serial ({default!r})" in message
        assert why in message
        assert "give the field a value in the entity" in message
        assert re.search(r"gen_random_uuid\(\), now\(\)", message)


async def test_a_default_it_never_needs_is_not_read() -> None:
    """A column that always gets its value from the entity may have any default."""
    table = Table(
        "counter",
        Counter,
        key="counter_id",
        columns={"serial": Column(server_default="nextval('s')")},
    )
    counters = MemoryDatabase().repository(_repository(table))
    assert (await counters.add(Counter("a", serial=7))).serial == 7


@attrs.frozen
class Reading:
    reading_id: int
    at: dt.datetime | None = None
    value: decimal.Decimal | None = None
    label: str | None = None
    ok: bool | None = None
    codes: list[int | None] | None = None
    tags: list[str] | None = None


async def test_constants_and_casts_are_stored_as_the_column_stores_them() -> None:
    """'2.345'::numeric into numeric(6,2) is rounded; '' escapes a quote; (true) is true;
    an array literal is a list of its elements; clock_timestamp() is a UTC time of its own."""
    table = Table(
        "reading",
        Reading,
        key="reading_id",
        columns={
            "at": Column(generated=True, server_default="clock_timestamp()"),
            "value": Column(type="numeric(6,2)", generated=True, server_default="'2.345'::numeric"),
            "label": Column(generated=True, server_default="'it''s'::character varying"),
            "ok": Column(generated=True, server_default="(true)"),
            "codes": Column(generated=True, server_default="'{1, NULL,3}'::bigint[]"),
            "tags": Column(generated=True, server_default="'{}'::text[]"),
        },
    )

    got = await MemoryDatabase().repository(_repository(table)).add(Reading(1))
    assert (got.value, got.label, got.ok) == (decimal.Decimal("2.35"), "it's", True)
    assert (got.codes, got.tags) == ([1, None, 3], [])
    assert got.at is not None
    assert got.at.tzinfo == dt.UTC


@attrs.frozen
class Child:
    child_id: int
    parent_id: int | None = None


async def test_a_set_default_column_needs_a_default_it_can_evaluate() -> None:
    """ON DELETE SET DEFAULT reads the column's default: one it cannot evaluate is refused."""
    parents = Table("parent", Child, key="child_id")
    table = Table(
        "child",
        Child,
        key="child_id",
        columns={"parent_id": Column(server_default="current_setting('x')::int")},
        foreign_keys={"parent_id": ForeignKey(parents, on_delete="SET DEFAULT")},
    )

    with pytest.raises(NotSupportedInMemory, match=r"child\.parent_id"):
        MemoryDatabase().repository(_repository(table))


def test_an_unknown_on_delete_action_is_refused() -> None:
    """A misspelt action would be NO ACTION in memory and an error in the migration."""
    with pytest.raises(InvalidQuery, match=r"CASCADES.*use one of NO ACTION, RESTRICT"):
        ForeignKey("parent", "child_id", on_delete="CASCADES")
    assert ForeignKey("parent", "child_id", on_delete="set  null").on_delete == "set  null"
