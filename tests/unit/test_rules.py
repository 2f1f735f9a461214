"""`Check` and `Index` as declared: refused early when they cannot work, named, written as SQL.

And what `MemoryDatabase` does with a check it cannot evaluate: it refuses,
naming the check, rather than guess.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any

import attrs
import pytest

from repo import (
    Check,
    CheckViolation,
    Column,
    DataError,
    Index,
    InvalidQuery,
    NotSupportedInMemory,
    Repository,
    Table,
    UniqueViolation,
    UnitOfWork,
    between,
    eq,
    ge,
    gt,
    in_,
    like,
    ne,
    not_in,
)
from repo.testing import MemoryDatabase


class Colour(enum.StrEnum):
    RED = "red"
    BLUE = "blue"


@attrs.frozen
class Thing:
    name: str
    n: int = 0
    price: Decimal | None = None
    ratio: float | None = None
    at: dt.datetime | None = None
    day: dt.date | None = None
    span: dt.timedelta | None = None
    ref: uuid.UUID | None = None
    colour: Colour = Colour.RED
    flag: bool = False
    data: dict[str, Any] | None = None
    tags: list[str] | None = None
    blob: bytes | None = None
    thing_id: int | None = None


def table(**rules: Any) -> Table[Thing]:
    return Table("thing", Thing, key="thing_id", **rules)


def sql_of(**filters: Any) -> str:
    return table(checks=[Check("c", **filters)]).checks[0].sql


@pytest.mark.parametrize(
    ("filters", "sql"),
    [
        ({"n": ge(0)}, """"n" >= '0'"""),
        ({"n": 5}, """"n" = '5'"""),
        ({"name": None}, """"name" IS NULL"""),
        ({"name": ne(None)}, """"name" IS NOT NULL"""),
        ({"name": ne("it's")}, """"name" <> 'it''s'"""),
        ({"name": in_(["a", "ünï ✓"])}, """"name" IN ('a', 'ünï ✓')"""),
        ({"name": not_in(["x"])}, """"name" NOT IN ('x')"""),
        ({"name": like("a\\%%")}, """"name" LIKE 'a\\%%'"""),
        ({"n": between(1, 9)}, """"n" BETWEEN '1' AND '9'"""),
        ({"price": gt(Decimal("0.10"))}, """"price" > '0.10'"""),
        ({"ratio": ne(float("nan"))}, """"ratio" <> 'NaN'"""),
        ({"ratio": gt(float("-inf"))}, """"ratio" > '-Infinity'"""),
        ({"ratio": eq(0.1)}, """"ratio" = '0.1'"""),
        (
            {"at": ge(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))},
            """"at" >= '2000-01-01T00:00:00+00:00'""",
        ),
        ({"day": ge(dt.date(2000, 2, 29))}, """"day" >= '2000-02-29'"""),
        (
            {"span": ge(dt.timedelta(days=1, microseconds=5))},
            """"span" >= '1 days 0 seconds 5 microseconds'""",
        ),
        ({"ref": ne(uuid.UUID(int=1))}, """"ref" <> '00000000-0000-0000-0000-000000000001'"""),
        ({"colour": in_([Colour.RED])}, """"colour" IN ('red')"""),
        ({"flag": True}, """"flag" = 'true'"""),
        ({"n": ge(0), "name": ne("")}, """"n" >= '0' AND "name" <> ''"""),
    ],
)
def test_a_check_written_with_filters_becomes_sql_with_literals(
    filters: dict[str, Any], sql: str
) -> None:
    """Each literal is quoted text the server reads as the column's type; filters are ANDed."""
    assert sql_of(**filters) == sql


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Check("c"), "says nothing to check"),
        (lambda: Check("c", n=ge(0), sql="n > 0"), "not both"),
        (lambda: Check("c", n=ge(0), test=bool), "not both"),
        (lambda: Check("c", sql=""), "sql= takes"),
        (lambda: Check("c", sql="n > 0", test="n > 0"), "test= takes a predicate"),  # type: ignore[arg-type]
        (lambda: Check("bad name", n=ge(0)), "not a plain SQL identifier"),
        (Index, "needs its fields"),
        (lambda: Index("n", unique="yes"), "unique= takes"),  # type: ignore[arg-type]
        (lambda: Index("n", where=["n"]), "where= takes filters"),  # type: ignore[arg-type]
        (lambda: Index("n", name="bad name"), "not a plain SQL identifier"),
        (lambda: table(checks=[Check("c", nope=1)]), "no field 'nope'"),
        (lambda: table(checks=["n >= 0"]), "checks= takes Check"),
        (lambda: table(checks=[Check("c", name=in_([]))]), "is empty"),
        (lambda: table(checks=[Check("c", data=None)]), "Check\\(name, sql=..., test=...\\)"),
        (lambda: table(checks=[Check("c", tags=None)]), "Check\\(name, sql=..., test=...\\)"),
        (lambda: table(checks=[Check("c", blob=None)]), "Check\\(name, sql=..., test=...\\)"),
        (lambda: table(indexes=[Index("nope")]), "no field 'nope'"),
        (lambda: table(indexes=[Index("n", "n")]), "names a field twice"),
        (lambda: table(indexes=[Index("n", where={"nope": 1})]), "no field 'nope'"),
        (lambda: table(checks=[Check("c", n=1), Check("c", n=2)]), "named 'ck_thing_c'"),
        (lambda: table(indexes=["n", Index("n")]), "named 'ix_thing_n'"),
        (lambda: table(unique=["n"], indexes=[Index("n", unique=True)]), "uq_thing_n"),
    ],
)
def test_a_rule_that_cannot_work_is_refused_when_declared(make: Any, match: str) -> None:
    """InvalidQuery, saying what to write instead, before any table or SQL exists."""
    with pytest.raises(InvalidQuery, match=match):
        make()


def test_names_follow_the_convention_and_the_63_byte_limit() -> None:
    """ck_<table>_<name>; ix_ or uq_<table>_<columns> (column names); name= wins; cut at 63."""
    things = table(
        columns={"n": Column(name="count")},
        checks=[Check("n_positive", n=gt(0))],
        indexes=[
            Index("n", "name"),
            Index("name", unique=True, where={"flag": True}),
            Index("n", unique=True, name="n_once"),
        ],
    )
    assert [c.name for c in things.checks] == ["ck_thing_n_positive"]
    assert things.checks[0].columns == ("count",)
    assert [i.name for i in things.indexes] == ["ix_thing_count_name", "uq_thing_name", "n_once"]
    assert things.constraint("uq_thing_name") == ("thing", ("name",))
    assert things.constraint("n_once") == ("thing", ("count",))
    assert things.constraint("ix_thing_count_name") is None
    long = Table("t" * 55, Thing, key="thing_id", checks=[Check("x" * 20, n=gt(0))])
    name = long.checks[0].name
    assert name == ("ck_" + "t" * 55 + "_" + "x" * 20)[:63]
    assert long.constraint(name) == ("t" * 55, ("n",))


def test_a_value_the_column_cannot_hold_is_refused_like_a_filters() -> None:
    """The same DataError a find() filter with that value raises."""
    with pytest.raises(DataError, match=r"thing\.n takes an int"):
        table(checks=[Check("c", n=ge("x"))])


class Things(Repository[Thing]):
    table = table(checks=[Check("name_sane", sql="name ~ '^[a-z]+$'")])


class PredicatedThings(Repository[Thing]):
    table = table(
        checks=[
            Check(
                "name_sane",
                sql="name ~ '^[a-z]+$'",
                test=lambda t: t.name.isalpha() or None if t.name else False,
            )
        ]
    )


async def test_memory_refuses_a_sql_check_without_a_test_naming_it() -> None:
    """NotSupportedInMemory at the first write to the table, rather than a guess."""
    async with MemoryDatabase() as db:
        things = db.repository(Things)
        assert await things.count() == 0
        with pytest.raises(NotSupportedInMemory, match="ck_thing_name_sane"):
            await things.add(Thing("abc"))


async def test_memory_runs_a_sql_checks_test_on_the_entity() -> None:
    """The predicate gets the entity; False is a violation, None (like NULL) passes."""
    async with MemoryDatabase() as db:
        things = db.repository(PredicatedThings)
        await things.add(Thing("abc"))
        await things.add(Thing("a1"))  # the test says None: unknown passes
        with pytest.raises(CheckViolation) as exc:
            await things.add(Thing(""))
        assert (exc.value.table, exc.value.constraint, exc.value.columns) == (
            "thing",
            "ck_thing_name_sane",
            (),
        )


def test_a_plain_index_name_is_cut_to_63_bytes_too() -> None:
    """indexes=["n"] on a long table name: ix_<table>_<column> cut like the server cuts it."""
    long = Table("t" * 57, Thing, key="thing_id", indexes=["n", Index("name")])
    assert [i.name for i in long.indexes] == ["ix_" + "t" * 57 + "_n", "ix_" + "t" * 57 + "_na"]
    # Cut to one name, two indexes would be one to the server: refused.
    with pytest.raises(InvalidQuery, match="two constraints or indexes are named"):
        Table("t" * 60, Thing, key="thing_id", indexes=["n", "name"])


class Codes(Repository[Thing]):
    table = table(indexes=[Index("name", unique=True, where={"flag": False})])


class CodeUnit(UnitOfWork):
    codes: Codes


async def test_the_later_of_two_units_taking_a_partial_unique_value_fails_at_commit() -> None:
    """Two open units add one name to the partial index: the second to commit is refused.

    A row outside the index's WHERE (flag set) never conflicts, at commit or before.
    """
    async with MemoryDatabase() as db:
        first = await CodeUnit(db).__aenter__()
        second = await CodeUnit(db).__aenter__()
        third = await CodeUnit(db).__aenter__()
        await first.codes.add(Thing("abc"))
        await second.codes.add(Thing("abc"))
        await third.codes.add(Thing("abc", flag=True))
        await first.commit()
        with pytest.raises(UniqueViolation, match="at commit") as exc:
            await second.commit()
        assert exc.value.constraint == "uq_thing_name"
        await third.commit()
        assert sorted(t.flag for t in await db.repository(Codes).find()) == [False, True]
