"""Aggregates on both backends: a root with its parents and children, read and written whole.

The tests' own schema: customers; products (numeric, jsonb); orders
(timestamptz, versioned) referencing a customer or none; their lines keyed
by ``(order_no, line_no)`` referencing a product; and notes on a line,
referencing it by that pair. An order's aggregate nests: its lines, each
with its product and its notes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import attrs
import pytest

from repo import (
    Aggregate,
    AggregateRepository,
    Column,
    ForeignKey,
    InvalidQuery,
    NotFound,
    NotNullViolation,
    Repository,
    StaleEntity,
    Table,
    UnitOfWork,
    gt,
)
from repo.catalog import CatalogUnitOfWork, SkuRepository, add_product, create_brand

from .conftest import AnyDatabase
from .own_schema import own_schema, truncate

UTC = dt.UTC


@attrs.frozen
class Customer:
    name: str
    customer_id: int | None = None


@attrs.frozen
class Product:
    name: str
    price: Decimal
    attributes: Any = None
    product_id: int | None = None


@attrs.frozen
class Order:
    order_no: int
    placed_at: dt.datetime
    customer_id: int | None = None
    version: int = 0


@attrs.frozen
class Line:
    order_no: int
    line_no: int
    product_id: int
    qty: int = 1
    meta: Any = None


@attrs.frozen
class Note:
    order_no: int
    line_no: int
    text: str
    note_id: int | None = None


CUSTOMERS = Table("agg_customer", Customer, key="customer_id")
PRODUCTS = Table(
    "agg_product",
    Product,
    key="product_id",
    columns={
        "price": Column(type="numeric(10,2)"),
        "attributes": Column(type="jsonb", nullable=True),
    },
)
ORDERS = Table(
    "agg_order",
    Order,
    key="order_no",
    version="version",
    foreign_keys={"customer_id": CUSTOMERS},
)
LINES = Table(
    "agg_line",
    Line,
    key=("order_no", "line_no"),
    columns={"meta": Column(type="jsonb", nullable=True)},
    foreign_keys={"order_no": ForeignKey(ORDERS, on_delete="CASCADE"), "product_id": PRODUCTS},
)
NOTES = Table("agg_note", Note, key="note_id", foreign_keys={("order_no", "line_no"): LINES})
TABLES = (CUSTOMERS, PRODUCTS, ORDERS, LINES, NOTES)


@attrs.frozen
class LineDetail:
    line: Line
    product: Product
    notes: list[Note]


@attrs.frozen
class OrderDetail:
    order: Order
    customer: Customer | None
    lines: list[LineDetail]


LINE_DETAIL = Aggregate(
    LineDetail,
    root=LINES,
    one={"product": PRODUCTS},
    many={"notes": NOTES},
    order_by={"notes": "-text"},
)
ORDER_DETAIL = Aggregate(
    OrderDetail, root=ORDERS, one={"customer": CUSTOMERS}, many={"lines": LINE_DETAIL}
)


class OrderDetails(AggregateRepository[OrderDetail]):
    aggregate = ORDER_DETAIL


class Customers(AggregateRepository[Any]):
    aggregate = Aggregate(
        attrs.make_class("CustomerOnly", {"customer": attrs.field()}, frozen=True),
        root=CUSTOMERS,
    )


@pytest.fixture(scope="module")
def aggregate_dsn(migrated_dsn: str) -> Iterator[str]:
    with own_schema(migrated_dsn, TABLES) as dsn:
        yield dsn


@pytest.fixture
def schema(backend_dsn: str | None, request: pytest.FixtureRequest) -> str | None:
    """The database holding the tests' tables on PostgreSQL (made once); None in memory."""
    return None if backend_dsn is None else str(request.getfixturevalue("aggregate_dsn"))


class C(Repository[Customer]):
    table = CUSTOMERS


class P(Repository[Product]):
    table = PRODUCTS


class Shop(UnitOfWork):
    details: OrderDetails
    customers: C


@pytest.fixture
async def shop(db: AnyDatabase, schema: str | None) -> Any:
    """`db` with the tables, empty but for two customers and three products."""
    await truncate(schema, TABLES)

    customers = [await db.repository(C).add(Customer(n)) for n in ("ada", "bob")]
    products = [
        await db.repository(P).add(Product("anvil", Decimal("9.99"), {"kg": 50, "tags": ["x"]})),
        await db.repository(P).add(Product("rope", Decimal("0.10"), None)),
        await db.repository(P).add(Product("naïve ☃", Decimal("-1.00"), ["\u00e9", 1.5])),
    ]
    return db, customers, products


WHEN = dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)


def order(no: int, customer: Customer | None, products: list[Product], n: int) -> OrderDetail:
    lines = [
        LineDetail(
            Line(0, i, products[i % len(products)].product_id or 0, qty=i, meta={"i": i}),
            products[i % len(products)],
            [Note(0, 0, f"note {j}") for j in range(i % 3)],
        )
        for i in range(1, n + 1)
    ]
    placed = WHEN.astimezone(dt.timezone(dt.timedelta(hours=5, minutes=30)))
    return OrderDetail(
        Order(no, placed, customer.customer_id if customer else None), customer, lines
    )


async def test_add_then_get_returns_the_whole_aggregate(shop: Any) -> None:
    """add() stores the root, lines and notes; get() reads them back, children ordered."""
    db, (ada, _), products = shop
    details = db.repository(OrderDetails)
    stored = await details.add(order(1, ada, products, 4))
    assert stored == await details.get(1)
    assert stored.customer == ada
    assert stored.order.placed_at == WHEN
    assert [d.line.line_no for d in stored.lines] == [1, 2, 3, 4]
    assert all(d.line.order_no == 1 for d in stored.lines)
    assert stored.lines[0].product == products[1]
    assert stored.lines[1].product.attributes == ["\u00e9", 1.5]
    assert stored.lines[2].product.attributes == {"kg": 50, "tags": ["x"]}
    assert [n.text for n in stored.lines[1].notes] == ["note 1", "note 0"]
    assert all(n.note_id is not None for d in stored.lines for n in d.notes)
    assert stored.lines[1].line.meta == {"i": 2}


async def test_a_missing_parent_is_none_and_no_children_an_empty_list(shop: Any) -> None:
    """A root referencing no parent reads it as None; one with no children, as []."""
    db, _, products = shop
    details = db.repository(OrderDetails)
    stored = await details.add(order(5, None, products, 0))
    assert stored == OrderDetail(Order(5, WHEN, None), None, [])
    with pytest.raises(NotFound) as missing:
        await details.get(6)
    assert missing.value.key == 6


async def test_reads_by_many_keys_filters_pages_and_streams(shop: Any) -> None:
    """get_many keeps the order given; find filters the root; page and stream walk them all."""
    db, (ada, bob), products = shop
    details = db.repository(OrderDetails)
    for no in range(1, 8):
        await details.add(order(no, ada if no % 2 else bob, products, no % 4))
    many = await details.get_many([3, 1, 7])
    assert [d.order.order_no for d in many] == [3, 1, 7]
    assert many[0] == await details.get(3)
    with pytest.raises(NotFound):
        await details.get_many([1, 99])
    found = await details.find(customer_id=bob.customer_id, order_by="-order_no")
    assert [d.order.order_no for d in found] == [6, 4, 2]
    assert all(d.customer == bob for d in found)
    assert [d.order.order_no for d in await details.find(order_no=gt(5), limit=1)] == [6]
    assert await details.find_one(order_no=4) == await details.get(4)
    seen: list[OrderDetail] = []
    after = None
    while True:
        page = await details.page(after=after, limit=3)
        seen += page.items
        if page.next is None:
            break
        after = page.next
    assert seen == await details.get_many(range(1, 8))
    streamed = [d async for d in details.stream(prefetch=2, order_by="order_no")]
    assert streamed == seen
    assert await details.count(customer_id=ada.customer_id) == 4


async def test_update_writes_only_the_difference(shop: Any) -> None:
    """update() changes the root, inserts new lines, updates changed ones, deletes the rest."""
    db, (ada, bob), products = shop
    async with Shop(db) as uow:
        stored = await uow.details.add(order(1, ada, products, 3))
    first, second, third = stored.lines
    changed = attrs.evolve(
        stored,
        order=attrs.evolve(stored.order, customer_id=None),
        customer=bob,
        lines=[
            attrs.evolve(
                first, line=attrs.evolve(first.line, qty=99), notes=[*first.notes, Note(0, 0, "z")]
            ),
            LineDetail(Line(1, 7, products[0].product_id or 0), products[0], [Note(1, 7, "new")]),
            attrs.evolve(third, notes=[Note(0, 0, "added")]),
        ],
    )
    async with Shop(db) as uow:
        updated = await uow.details.update(changed)
    assert updated == await db.repository(OrderDetails).get(1)
    assert updated.customer == bob
    assert updated.order.version == stored.order.version + 1
    assert [d.line.line_no for d in updated.lines] == [1, 3, 7]
    assert updated.lines[0].line.qty == 99
    assert [n.text for n in updated.lines[0].notes] == ["z", "note 0"]
    assert updated.lines[0].notes[1] == first.notes[0]
    assert [n.text for n in updated.lines[1].notes] == ["added"]
    assert [n.text for n in updated.lines[2].notes] == ["new"]
    assert second.line.line_no not in [d.line.line_no for d in updated.lines]
    with pytest.raises(StaleEntity):
        await db.repository(OrderDetails).update(changed)


async def test_delete_removes_children_first(shop: Any) -> None:
    """delete(key) removes notes, lines and the order; NotFound for a key not stored."""
    db, (ada, _), products = shop
    details = db.repository(OrderDetails)
    await details.add(order(1, ada, products, 3))
    await details.add(order(2, ada, products, 2))
    await details.delete(1)
    with pytest.raises(NotFound):
        await details.get(1)
    assert len((await details.get(2)).lines) == 2
    with pytest.raises(NotFound):
        await details.delete(1)


async def test_a_failed_write_leaves_nothing(shop: Any) -> None:
    """A pool-level add whose child fails stores nothing; a mismatched parent is refused."""
    db, (ada, bob), products = shop
    details = db.repository(OrderDetails)
    bad = order(1, ada, products, 2)
    bad = attrs.evolve(bad, lines=[*bad.lines, bad.lines[0]])  # the same line twice
    with pytest.raises(Exception):  # noqa: B017, PT011 -- the duplicate key's error
        await details.add(bad)
    with pytest.raises(NotFound):
        await details.get(1)
    with pytest.raises(InvalidQuery, match="make them agree"):
        await details.add(attrs.evolve(order(2, ada, products, 0), customer=bob))


async def test_an_aggregate_without_children_is_its_root(shop: Any) -> None:
    """An aggregate of only a root reads and writes like a repository."""
    db, (ada, bob), _ = shop
    customers = db.repository(Customers)
    assert (await customers.get(ada.customer_id)).customer == ada
    both = await customers.get_many([bob.customer_id, ada.customer_id])
    assert [c.customer for c in both] == [bob, ada]
    assert [c.customer for c in await customers.find(order_by="-name")] == [bob, ada]
    assert [c.customer for c in (await customers.page(limit=1)).items] == [ada]


class LineDetails(AggregateRepository[LineDetail]):
    aggregate = LINE_DETAIL


async def test_many_aggregates_by_composite_keys(shop: Any) -> None:
    """get_many of aggregates keyed (order_no, line_no): in the order given, NotFound listing
    the absent pairs; find and pages on the composite root agree with get."""
    db, (ada, _), products = shop
    await db.repository(OrderDetails).add(order(1, ada, products, 3))
    await db.repository(OrderDetails).add(order(2, ada, products, 2))
    lines = db.repository(LineDetails)
    keys = [(2, 1), (1, 3), (1, 1), (2, 2)]
    found = await lines.get_many(keys)
    assert [(d.line.order_no, d.line.line_no) for d in found] == keys
    assert found == [await lines.get(k) for k in keys]
    assert [n.text for n in found[1].notes] == []
    assert [n.text for n in found[2].notes] == ["note 0"]
    with pytest.raises(NotFound) as missing:
        await lines.get_many([(1, 1), (3, 1), (1, 9)])
    assert missing.value.key == [(3, 1), (1, 9)]
    by_order = await lines.find(order_no=1, order_by="-line_no")
    assert [d.line.line_no for d in by_order] == [3, 2, 1]
    page = await lines.page(limit=4)
    assert [(d.line.order_no, d.line.line_no) for d in page.items] == [
        (1, 1),
        (1, 2),
        (1, 3),
        (2, 1),
    ]
    assert page.items == [await lines.get(k) for k in [(1, 1), (1, 2), (1, 3), (2, 1)]]


async def test_a_repository_reaches_an_aggregate_repository_of_its_unit(shop: Any) -> None:
    """repository.repository(OrderDetails) reads in the same unit, its uncommitted work included."""
    db, (ada, _), products = shop
    async with Shop(db) as uow:
        await uow.details.add(order(1, ada, products, 2))
        sibling = uow.customers.repository(OrderDetails)
        assert (await sibling.get(1)).customer == ada  # the unit's own, uncommitted work
        assert await db.repository(C).repository(OrderDetails).count() == 0  # the pool's
    assert await db.repository(C).repository(OrderDetails).count() == 1


async def test_update_many_is_update_of_each(db: AnyDatabase) -> None:
    """TableOps.update_many (an aggregate's changed children): versions bumped and matched,
    StaleEntity for a stale one, NotFound for an absent one, as update() does."""
    async with CatalogUnitOfWork(db) as uow:
        brand = await create_brand(uow, "acme")
        _, skus = await add_product(uow, brand.brand_id or 0, "anvil", [("s", "a"), ("m", "a")])
    ops = db.repository(SkuRepository).ops
    updated = await ops.update_many([attrs.evolve(s, stock=7) for s in skus])
    assert [(s.stock, s.version) for s in updated] == [(7, 1), (7, 1)]
    with pytest.raises(StaleEntity):
        await ops.update_many([attrs.evolve(updated[0], stock=8), skus[1]])
    current = await db.repository(SkuRepository).get(skus[1].sku_id)
    with pytest.raises(NotFound):
        await ops.update_many([current, attrs.evolve(current, sku_id=99)])


async def test_references_to_the_parent_are_filled_in_before_values_are_checked(
    shop: Any,
) -> None:
    """Children whose reference to their parent is None are stored under it; a wrong class
    anywhere is refused with InvalidQuery, a None where none may be with NotNullViolation."""
    db, (ada, _), products = shop
    details = db.repository(OrderDetails)
    unset: Any = None
    product = products[0]
    line = LineDetail(Line(unset, 1, product.product_id or 0), product, [Note(unset, unset, "x")])
    stored = await details.add(OrderDetail(Order(1, WHEN, unset), ada, [line]))
    assert stored.order.customer_id == ada.customer_id
    assert stored.lines[0].notes[0].order_no == 1
    assert stored.lines[0].notes[0].line_no == 1
    with pytest.raises(InvalidQuery, match="stores Note objects"):
        await details.update(attrs.evolve(stored, lines=[attrs.evolve(line, notes=[ada])]))
    with pytest.raises(NotNullViolation):
        no_qty = attrs.evolve(line, line=attrs.evolve(line.line, qty=unset))
        await details.update(attrs.evolve(stored, lines=[no_qty]))
    assert await details.get(1) == stored


async def test_a_unit_streams_aggregates_in_its_transaction(shop: Any) -> None:
    """stream() inside a unit of work reads the unit's own uncommitted aggregates."""
    db, (ada, bob), products = shop
    async with Shop(db) as uow:
        for no in (3, 1, 2):
            await uow.details.add(order(no, ada if no % 2 else bob, products, no))
        streamed = [d async for d in uow.details.stream(order_by="-order_no", prefetch=1)]
        assert streamed == await uow.details.get_many([3, 2, 1])
        assert [len(d.lines) for d in streamed] == [3, 2, 1]
