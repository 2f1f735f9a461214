"""CHECK constraints and (unique, partial) indexes, on both backends: the same errors.

The tests' own schema: items whose price, quantity, kind, name and shelf
date are checked (written with the filters' helpers, and once as SQL with a
Python test), with a unique index on the sku, a partial unique index "one
live item per code", and a table whose long name makes the server cut its
check's name to 63 bytes.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterator
from decimal import Decimal

import attrs
import pytest

from repo import (
    Check,
    CheckViolation,
    Column,
    Index,
    InvalidQuery,
    Repository,
    Table,
    UniqueViolation,
    UnitOfWork,
    between,
    ge,
    in_,
    like,
    lt,
    ne,
    not_in,
)

from .conftest import AnyDatabase
from .own_schema import own_schema, truncate

UTC = dt.UTC
OPENED = dt.datetime(2000, 1, 1, tzinfo=UTC)


class Kind(enum.StrEnum):
    BOOK = "book"
    DVD = "dvd"
    RETIRED = "retired"


@attrs.frozen
class Item:
    name: str
    qty: int = 0
    kind: Kind = Kind.BOOK
    price: Decimal | None = None
    code: str | None = None
    sku: str | None = None
    shelved_at: dt.datetime | None = None
    removed_at: dt.datetime | None = None
    ratio: float | None = None
    item_id: int | None = None


@attrs.frozen
class Note:
    body: str
    note_id: int | None = None


ITEMS = Table(
    "item",
    Item,
    key="item_id",
    columns={"price": Column(type="numeric(10,2)")},
    checks=[
        Check("price_not_negative", price=ge(0)),
        Check("qty_in_range", qty=between(0, 1000)),
        Check("kind_on_sale", kind=in_([Kind.BOOK, Kind.DVD])),
        Check("code_shape", code=like("C-%")),
        Check("name_allowed", name=not_in(["it's", "ünïcode ✓"]), qty=ne(13)),
        Check("shelved_after_opening", shelved_at=ge(OPENED)),
        Check("ratio_at_least_zero", ratio=ge(0.0)),
        Check("ratio_below_ten", ratio=lt(10.0)),
        Check(
            "name_short",
            sql="length(name) <= 20",
            test=lambda item: len(item.name) <= 20,
        ),
    ],
    indexes=[
        Index("sku", unique=True),
        Index("code", unique=True, where={"removed_at": None}),
        Index("kind", "qty"),
    ],
)
LONG = "n" * 50
NOTES = Table(
    LONG,
    Note,
    key="note_id",
    checks=[Check("body_not_empty_and_rather_long_name", body=ne(""))],
)
TABLES = (ITEMS, NOTES)


class Items(Repository[Item]):
    table = ITEMS


class Notes(Repository[Note]):
    table = NOTES


class Shop(UnitOfWork):
    items: Items
    notes: Notes


@pytest.fixture(scope="module")
def checks_dsn(migrated_dsn: str) -> Iterator[str]:
    with own_schema(migrated_dsn, TABLES) as dsn:
        yield dsn


@pytest.fixture
def schema(backend_dsn: str | None, request: pytest.FixtureRequest) -> str | None:
    """The database holding the tests' tables on PostgreSQL (made once); None in memory."""
    return None if backend_dsn is None else str(request.getfixturevalue("checks_dsn"))


@pytest.fixture
async def shop(db: AnyDatabase, schema: str | None) -> AnyDatabase:
    """`db` with the tests' own tables, empty."""
    await truncate(schema, TABLES)
    return db


async def add(db: AnyDatabase, item: Item) -> Item:
    async with Shop(db) as uow:
        return await uow.items.add(item)


async def refused(db: AnyDatabase, item: Item) -> CheckViolation:
    with pytest.raises(CheckViolation) as exc:
        await add(db, item)
    return exc.value


@pytest.mark.parametrize(
    ("item", "constraint", "columns"),
    [
        (Item("a", price=Decimal("-0.01")), "ck_item_price_not_negative", ("price",)),
        (Item("a", qty=-1), "ck_item_qty_in_range", ("qty",)),
        (Item("a", qty=1001), "ck_item_qty_in_range", ("qty",)),
        (Item("a", kind=Kind.RETIRED), "ck_item_kind_on_sale", ("kind",)),
        (Item("a", code="X-1"), "ck_item_code_shape", ("code",)),
        (Item("it's"), "ck_item_name_allowed", ("name", "qty")),
        (Item("ünïcode ✓"), "ck_item_name_allowed", ("name", "qty")),
        (Item("a", qty=13), "ck_item_name_allowed", ("name", "qty")),
        (
            Item("a", shelved_at=OPENED - dt.timedelta(microseconds=1)),
            "ck_item_shelved_after_opening",
            ("shelved_at",),
        ),
        (Item("x" * 21), "ck_item_name_short", ()),
    ],
)
async def test_a_row_breaking_a_check_is_refused_naming_it(
    shop: AnyDatabase, item: Item, constraint: str, columns: tuple[str, ...]
) -> None:
    """CheckViolation with the constraint's name, its table and the columns its filters name."""
    exc = await refused(shop, item)
    assert (exc.table, exc.constraint, exc.columns) == ("item", constraint, columns)
    assert exc.sqlstate == "23514"
    assert constraint in str(exc)
    async with Shop(shop) as uow:
        assert await uow.items.count() == 0


async def test_the_limits_themselves_pass(shop: AnyDatabase) -> None:
    """Bounds are inclusive where the operator says so: 0, 1000, the opening instant, 20 chars."""
    for item in (
        Item("a", qty=0, price=Decimal("0.00")),
        Item("b", qty=1000, code="C-", shelved_at=OPENED),
        Item("y" * 20, kind=Kind.DVD, code="C-é"),
        Item("its", qty=12),
    ):
        assert (await add(shop, item)).item_id is not None


async def test_a_check_whose_condition_is_null_passes(shop: AnyDatabase) -> None:
    """As in SQL: NULL price, code and shelf date make their checks unknown, and a row passes."""
    stored = await add(shop, Item("a", price=None, code=None, shelved_at=None))
    assert (stored.price, stored.code, stored.shelved_at) == (None, None, None)


async def test_updates_and_upserts_are_checked_too(shop: AnyDatabase) -> None:
    """update, update_where and upsert write rows the checks refuse, like add."""
    item = await add(shop, Item("a", qty=1, sku="S1"))
    with pytest.raises(CheckViolation) as exc:
        async with Shop(shop) as uow:
            await uow.items.update(attrs.evolve(item, price=Decimal("-1")))
    assert exc.value.constraint == "ck_item_price_not_negative"
    with pytest.raises(CheckViolation) as exc:
        async with Shop(shop) as uow:
            await uow.items.update_where({"qty": 5000}, name="a")
    assert exc.value.constraint == "ck_item_qty_in_range"
    with pytest.raises(CheckViolation) as exc:
        async with Shop(shop) as uow:
            await uow.items.upsert(Item("a", qty=-5, sku="S1"), on="sku")
    assert exc.value.constraint == "ck_item_qty_in_range"
    async with Shop(shop) as uow:
        assert await uow.items.get(item.item_id) == item


async def test_add_many_refuses_the_batch(shop: AnyDatabase) -> None:
    """One bad row among many: nothing of the batch is stored."""
    with pytest.raises(CheckViolation) as exc:
        async with Shop(shop) as uow:
            await uow.items.add_many([Item("a"), Item("b", qty=-1), Item("c")])
    assert exc.value.constraint == "ck_item_qty_in_range"
    async with Shop(shop) as uow:
        assert await uow.items.count() == 0


async def test_checks_are_checked_in_name_order(shop: AnyDatabase) -> None:
    """A row breaking two checks is refused by the first by name, as PostgreSQL orders them."""
    exc = await refused(shop, Item("a", qty=-1, price=Decimal(-1)))
    assert exc.constraint == "ck_item_price_not_negative"
    exc = await refused(shop, Item("it's", qty=-1))
    assert exc.constraint == "ck_item_name_allowed"


async def test_a_long_name_is_cut_to_63_bytes_like_the_server(shop: AnyDatabase) -> None:
    """ck_<50 n>_<name> is longer than 63 bytes: both backends report the cut name."""
    with pytest.raises(CheckViolation) as exc:
        async with Shop(shop) as uow:
            await uow.notes.add(Note(""))
    name = f"ck_{LONG}_body_not_empty_and_rather_long_name"[:63]
    assert (exc.value.table, exc.value.constraint, exc.value.columns) == (LONG, name, ("body",))
    assert NOTES.checks[0].name == name


async def test_a_partial_unique_index_allows_one_live_row_per_code(shop: AnyDatabase) -> None:
    """Two live items may not share a code; removed ones may, and NULL codes never conflict."""
    live = await add(shop, Item("a", code="C-1"))
    with pytest.raises(UniqueViolation) as exc:
        await add(shop, Item("b", code="C-1"))
    assert (exc.value.table, exc.value.constraint, exc.value.columns) == (
        "item",
        "uq_item_code",
        ("code",),
    )
    await add(shop, Item("c", code="C-1", removed_at=OPENED))
    await add(shop, Item("d", code="C-1", removed_at=OPENED))
    await add(shop, Item("e"))
    await add(shop, Item("f"))
    async with Shop(shop) as uow:
        await uow.items.update(attrs.evolve(live, removed_at=OPENED))
        await uow.items.add(Item("g", code="C-1"))
    async with Shop(shop) as uow:
        assert await uow.items.count(code="C-1") == 4
        assert await uow.items.count(code="C-1", removed_at=None) == 1
    removed = (await shop.repository(Items).find(name="c"))[0]
    with pytest.raises(UniqueViolation) as exc:
        async with Shop(shop) as uow:
            await uow.items.update(attrs.evolve(removed, removed_at=None))
    assert exc.value.constraint == "uq_item_code"


async def test_a_unique_index_refuses_a_duplicate_and_serves_upsert(shop: AnyDatabase) -> None:
    """Index(unique=True): a second row with the sku is refused; upsert(on="sku") updates it."""
    await add(shop, Item("a", sku="S1"))
    with pytest.raises(UniqueViolation) as exc:
        await add(shop, Item("b", sku="S1"))
    assert (exc.value.constraint, exc.value.columns) == ("uq_item_sku", ("sku",))
    async with Shop(shop) as uow:
        stored = await uow.items.upsert(Item("b", qty=2, sku="S1"), on="sku")
        assert (stored.name, stored.qty) == ("b", 2)
        assert await uow.items.count() == 1


async def test_upsert_on_a_partial_unique_index_is_refused(shop: AnyDatabase) -> None:
    """ON CONFLICT cannot pick a partial index without its WHERE: InvalidQuery, before any SQL."""
    with pytest.raises(InvalidQuery, match=r"uq_item_code.*partial"):
        async with Shop(shop) as uow:
            await uow.items.upsert(Item("a", code="C-1"), on="code")


@pytest.mark.parametrize(
    ("ratio", "constraint"),
    [
        (9.5, None),
        (-0.0, None),
        (0.0, None),
        # NaN >= 0 holds (the check before by name), NaN < 10 does not.
        (float("nan"), "ck_item_ratio_below_ten"),
        (float("inf"), "ck_item_ratio_below_ten"),
        (float("-inf"), "ck_item_ratio_at_least_zero"),
        (-1e-300, "ck_item_ratio_at_least_zero"),
    ],
)
async def test_floats_are_checked_as_postgresql_orders_them(
    shop: AnyDatabase, ratio: float, constraint: str | None
) -> None:
    """NaN is equal to itself and above every number, infinities are numbers, -0 is 0."""
    if constraint is None:
        assert (await add(shop, Item("a", ratio=ratio))).ratio == ratio
    else:
        assert (await refused(shop, Item("a", ratio=ratio))).constraint == constraint
