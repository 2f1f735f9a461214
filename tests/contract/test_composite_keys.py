"""Composite primary keys, on both backends: every key-taking operation takes the tuple.

The tests' own schema: purchases, their lines keyed by ``(order_no, line_no)``
(versioned), shipments referencing a line by that pair, and exchange rates
keyed by an enum, a date and a uuid.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import attrs
import pytest

from repo import (
    Column,
    ForeignKey,
    ForeignKeyViolation,
    InvalidQuery,
    NotFound,
    NotNullViolation,
    Repository,
    StaleEntity,
    Table,
    UniqueViolation,
    UnitOfWork,
    UpsertResult,
    gt,
)

from .conftest import AnyDatabase
from .own_schema import own_schema, truncate


class Currency(enum.StrEnum):
    EUR = "eur"
    USD = "usd"


@attrs.frozen
class Purchase:
    order_no: int
    customer: str


@attrs.frozen
class PurchaseLine:
    order_no: int
    line_no: int
    sku: str
    qty: int = 1
    version: int = 0


@attrs.frozen
class Shipment:
    order_no: int
    line_no: int | None
    carrier: str
    shipment_id: int | None = None


@attrs.frozen
class Rate:
    currency: Currency
    day: dt.date
    owner: uuid.UUID
    rate: Decimal


PURCHASES = Table("purchase", Purchase, key="order_no")
LINES = Table(
    "purchase_line",
    PurchaseLine,
    key=("order_no", "line_no"),
    version="version",
    foreign_keys={"order_no": ForeignKey(PURCHASES, on_delete="CASCADE")},
)
SHIPMENTS = Table(
    "shipment",
    Shipment,
    key="shipment_id",
    foreign_keys={("order_no", "line_no"): LINES},
)
RATES = Table(
    "rate",
    Rate,
    key=("currency", "day", "owner"),
    columns={"rate": Column(type="numeric(10,4)")},
)
TABLES = (PURCHASES, LINES, SHIPMENTS, RATES)


class Purchases(Repository[Purchase]):
    table = PURCHASES


class Lines(Repository[PurchaseLine]):
    table = LINES


class Shipments(Repository[Shipment]):
    table = SHIPMENTS


class Rates(Repository[Rate]):
    table = RATES


class Shop(UnitOfWork):
    purchases: Purchases
    lines: Lines
    shipments: Shipments
    rates: Rates


@pytest.fixture(scope="module")
def composite_dsn(migrated_dsn: str) -> Iterator[str]:
    with own_schema(migrated_dsn, TABLES) as dsn:
        yield dsn


@pytest.fixture
def schema(backend_dsn: str | None, request: pytest.FixtureRequest) -> str | None:
    """The database holding the tests' tables on PostgreSQL (made once); None in memory."""
    return None if backend_dsn is None else str(request.getfixturevalue("composite_dsn"))


@pytest.fixture
async def shop(db: AnyDatabase, schema: str | None) -> AnyDatabase:
    """`db` with the tests' own tables, empty, and two purchases with three lines."""
    await truncate(schema, TABLES)
    async with Shop(db) as uow:
        await uow.purchases.add(Purchase(1, "ada"))
        await uow.purchases.add(Purchase(2, "bob"))
        await uow.lines.add_many(
            [PurchaseLine(1, 1, "anvil"), PurchaseLine(1, 2, "rope", 3), PurchaseLine(2, 1, "axe")]
        )
    return db


async def test_get_takes_and_returns_the_key_tuple(shop: AnyDatabase) -> None:
    """get((order_no, line_no)) finds the line; a list stands for the tuple too."""
    lines = shop.repository(Lines)
    assert await lines.get((1, 2)) == PurchaseLine(1, 2, "rope", 3)
    assert await lines.get([2, 1]) == PurchaseLine(2, 1, "axe")
    assert LINES.key == ("order_no", "line_no")
    assert LINES.key_of(PurchaseLine(1, 2, "rope")) == (1, 2)


async def test_not_found_carries_the_key_tuple(shop: AnyDatabase) -> None:
    """NotFound.key is the tuple asked for, and its message names every key field."""
    lines = shop.repository(Lines)
    with pytest.raises(NotFound) as got:
        await lines.get((2, 2))
    assert (got.value.table, got.value.key) == ("purchase_line", (2, 2))
    assert "(order_no, line_no)=(2, 2)" in str(got.value)
    with pytest.raises(NotFound) as many:
        await lines.get_many([(1, 1), (9, 9), (2, 5)])
    assert many.value.key == [(9, 9), (2, 5)]
    with pytest.raises(NotFound) as gone:
        await lines.delete((3, 1))
    assert gone.value.key == (3, 1)


@pytest.mark.parametrize(
    ("key", "words"),
    [
        (1, "give a tuple of 2 values, got 1 (int)"),
        ((1,), "give a tuple of 2 values, got 1: (1,)"),
        ((1, 2, 3), "give a tuple of 2 values, got 3"),
        ((1, "2"), "purchase_line.line_no is the key, which takes an int"),
        ((None, 1), "keys are never None"),
        ((True, 1), "purchase_line.order_no is the key"),
        ("12", "composite key (order_no, line_no)"),
    ],
)
async def test_a_key_of_the_wrong_arity_or_types_is_refused(
    shop: AnyDatabase, key: Any, words: str
) -> None:
    """get, get_many and delete refuse a key that is not one value per part, of its type."""
    lines = shop.repository(Lines)
    for call in (lines.get(key), lines.get_many([key]), lines.delete(key)):
        with pytest.raises(InvalidQuery, match=re.escape(words)):
            await call
    assert await lines.count() == 3


async def test_get_many_returns_rows_in_the_order_of_the_tuples(shop: AnyDatabase) -> None:
    """One round trip; rows come back in the order the keys were given."""
    lines = shop.repository(Lines)
    got = await lines.get_many([(2, 1), (1, 1), (1, 2)])
    assert [(x.order_no, x.line_no) for x in got] == [(2, 1), (1, 1), (1, 2)]
    assert await lines.get_many([]) == []


async def test_update_and_delete_by_the_key_tuple(shop: AnyDatabase) -> None:
    """update writes every non-key column by the pair (bumping the version); delete by it."""
    async with Shop(shop) as uow:
        line = await uow.lines.get((1, 2))
        moved = await uow.lines.update(attrs.evolve(line, qty=5))
        assert moved == PurchaseLine(1, 2, "rope", 5, version=1)
        with pytest.raises(StaleEntity, match=r"\(order_no, line_no\)=\(1, 2\)"):
            await uow.lines.update(attrs.evolve(line, qty=6))
        with pytest.raises(NotFound) as got:
            await uow.lines.update(PurchaseLine(1, 9, "ghost"))
        assert got.value.key == (1, 9)
        await uow.lines.delete((1, 1))
    lines = shop.repository(Lines)
    assert [(x.order_no, x.line_no, x.qty) for x in await lines.find(order_by="sku")] == [
        (2, 1, 1),
        (1, 2, 5),
    ]


async def test_update_needs_every_part_of_the_key(shop: AnyDatabase) -> None:
    """A line whose key part is None is refused before any SQL, naming the part."""
    with pytest.raises(NotNullViolation, match=r"purchase_line\.line_no is NOT NULL") as got:
        await shop.repository(Lines).update(PurchaseLine(1, None, "x"))  # type: ignore[arg-type]
    assert got.value.columns == ("line_no",)


async def test_the_primary_key_is_the_pair(shop: AnyDatabase) -> None:
    """A second line with the same pair is a UniqueViolation naming pk_<table> and both columns."""
    lines = shop.repository(Lines)
    await lines.add(PurchaseLine(2, 2, "saw"))  # same line_no, other order: fine
    with pytest.raises(UniqueViolation) as got:
        await lines.add(PurchaseLine(2, 2, "hammer"))
    assert (got.value.table, got.value.constraint, got.value.columns) == (
        "purchase_line",
        "pk_purchase_line",
        ("order_no", "line_no"),
    )


async def test_upsert_matches_on_the_key_tuple_by_default(shop: AnyDatabase) -> None:
    """upsert() with no `on` conflicts on the pair; the key parts are never overwritten."""
    lines = shop.repository(Lines)
    stored = await lines.upsert(PurchaseLine(1, 2, "rope", 9))
    assert stored == PurchaseLine(1, 2, "rope", 9, version=1)
    added = await lines.upsert(PurchaseLine(1, 3, "pick"))
    assert added == PurchaseLine(1, 3, "pick")
    result = await lines.upsert_many(
        [PurchaseLine(1, 3, "pick"), PurchaseLine(2, 1, "axe", 2), PurchaseLine(2, 4, "file")]
    )
    assert result == UpsertResult(inserted=1, updated=1, unchanged=1)
    assert await lines.count() == 5


async def test_pages_walk_the_key_tuple(shop: AnyDatabase) -> None:
    """Keyset pages order by (order_no, line_no); the token carries both parts."""
    lines = shop.repository(Lines)
    await lines.add_many([PurchaseLine(o, n, f"s{o}{n}") for o in (1, 2) for n in (5, 6, 7)])
    seen: list[tuple[int, int]] = []
    after = None
    while True:
        page = await lines.page(after=after, limit=2)
        seen += [(x.order_no, x.line_no) for x in page]
        if page.next is None:
            break
        after = page.next
    assert seen == sorted(seen)
    assert len(seen) == 9
    backwards = await lines.page(limit=4, order_by="-qty")
    assert [(x.qty, x.order_no, x.line_no) for x in backwards] == [
        (3, 1, 2),
        (1, 2, 7),
        (1, 2, 6),
        (1, 2, 5),
    ]
    rest = await lines.page(after=backwards.next, limit=10, order_by="-qty")
    assert [(x.order_no, x.line_no) for x in rest][:2] == [(2, 1), (1, 7)]
    by_line = await lines.page(limit=3, order_by="line_no")
    assert [(x.line_no, x.order_no) for x in by_line] == [(1, 1), (1, 2), (2, 1)]


async def test_streams_and_filters_on_key_parts(shop: AnyDatabase) -> None:
    """Each key part filters and orders like any field; a stream gives every row."""
    lines = shop.repository(Lines)
    assert [x.sku async for x in lines.stream(order_by=["-order_no", "line_no"], prefetch=1)] == [
        "axe",
        "anvil",
        "rope",
    ]
    assert await lines.count(order_no=1, line_no=gt(1)) == 1
    with pytest.raises(InvalidQuery, match="cannot change the key 'line_no'"):
        await lines.update_where({"line_no": 4}, order_no=1)


async def test_a_foreign_key_to_a_composite_key(shop: AnyDatabase) -> None:
    """A shipment references a line by both columns; a NULL part leaves it unchecked."""
    shipments = shop.repository(Shipments)
    await shipments.add(Shipment(1, 2, "post"))
    with pytest.raises(ForeignKeyViolation) as got:
        await shipments.add(Shipment(2, 2, "post"))  # order 2 has no line 2
    assert (got.value.constraint, got.value.columns) == (
        "fk_shipment_order_no_line_no_purchase_line",
        ("order_no", "line_no"),
    )
    await shipments.add(Shipment(7, None, "pigeon"))  # MATCH SIMPLE: a NULL part is not checked
    with pytest.raises(ForeignKeyViolation) as held:
        await shop.repository(Lines).delete((1, 2))
    assert (held.value.table, held.value.columns) == ("shipment", ("order_no", "line_no"))
    # Deleting a purchase cascades to its lines, but line (1, 2) is still shipped.
    with pytest.raises(ForeignKeyViolation):
        await shop.repository(Purchases).delete(1)
    await shop.repository(Purchases).delete(2)
    assert await shop.repository(Lines).count() == 2


async def test_keys_of_every_kind_of_part(shop: AnyDatabase) -> None:
    """An enum, a date and a uuid key: a label stands for its member, a str for its UUID."""
    rates = shop.repository(Rates)
    owner = uuid.UUID(int=42)
    day = dt.date(2026, 1, 31)
    stored = await rates.add(Rate(Currency.EUR, day, owner, Decimal("1.23456")))
    assert stored.rate == Decimal("1.2346")
    assert await rates.get(("eur", day, str(owner))) == stored
    assert await rates.get_many([(Currency.EUR, day, owner)]) == [stored]
    with pytest.raises(InvalidQuery, match=r"rate\.owner is the key"):
        await rates.get(("eur", day, "nope"))
    with pytest.raises(NotFound) as got:
        await rates.get(("usd", day, owner))
    assert got.value.key == (Currency.USD, day, owner)
    await rates.delete(("eur", day, owner.hex))
    assert await rates.count() == 0


def test_generated_parts_are_for_single_keys_only() -> None:
    """A composite key with a generated (identity) part is refused, saying what to do."""

    @attrs.frozen
    class Step:
        run_id: int
        step_id: int | None = None

    with pytest.raises(InvalidQuery, match="only a single key may be generated"):
        Table("step", Step, key=("run_id", "step_id"), generated=["step_id"])
    plain = Table("step", Step, key=("run_id", "step_id"))
    assert [c.field for c in plain.columns if c.generated] == []
    assert not plain.field("step_id").nullable


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ((), "key takes a field name"),
        (("order_no", "order_no"), "names a field twice"),
        (("order_no", "ghost"), "key 'ghost' is not a field"),
        (7, "key takes a field name"),
    ],
)
def test_a_bad_composite_key_is_refused(key: Any, words: str) -> None:
    """A key naming no field, a field twice or nothing at all is refused at Table()."""
    with pytest.raises(InvalidQuery, match=words):
        Table("purchase_line", PurchaseLine, key=key)


def test_a_foreign_key_must_match_the_target_key_arity() -> None:
    """Referencing a two-column key from one field is refused, naming both sides."""
    with pytest.raises(InvalidQuery, match="has 1 field"):
        Table("shipment", Shipment, key="shipment_id", foreign_keys={"order_no": LINES})
    explicit = Table(
        "shipment",
        Shipment,
        key="shipment_id",
        foreign_keys={("line_no", "order_no"): ForeignKey(LINES, columns=("line_no", "order_no"))},
    )
    assert explicit.foreign_keys[0].target_columns == ("line_no", "order_no")
