"""Random aggregates written, changed and read on MemoryDatabase and PostgreSQL side by side.

Hypothesis draws a script of orders added (lines with jsonb, notes), updated
(lines kept, changed, dropped and added, notes replaced, the customer
changed, sometimes from a stale read), deleted and read; each step runs on
both backends and must give the same aggregates, or errors of the same
class. After each step every stored order is read back on both, by
`get_many`, `find` and pages, and compared.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repo import Database, RepoError
from repo.testing import MemoryDatabase
from tests.conftest import via_bouncer

from .own_schema import own_schema, truncate
from .test_aggregates import (
    TABLES,
    WHEN,
    C,
    Customer,
    Line,
    LineDetail,
    Note,
    Order,
    OrderDetail,
    OrderDetails,
    P,
    Product,
)

TEXTS = st.text(alphabet="ab é☃", max_size=3)
META = st.one_of(st.none(), st.integers(-5, 5), st.lists(st.integers(0, 3), max_size=2))
LINE = st.tuples(
    st.integers(1, 4), st.integers(0, 2), st.integers(0, 9), META, st.lists(TEXTS, max_size=2)
)
ADD = st.tuples(
    st.just("add"), st.integers(1, 4), st.sampled_from([None, 0, 1]), st.lists(LINE, max_size=3)
)
UPDATE = st.tuples(
    st.just("update"),
    st.integers(1, 4),
    st.sampled_from([None, 0, 1]),
    st.lists(st.booleans(), min_size=4, max_size=4),  # which stored lines to keep
    st.lists(st.integers(-1, 1), min_size=4, max_size=4),  # their qty changes
    st.lists(LINE, max_size=2),  # lines to add
    st.booleans(),  # from a stale read (version behind)
)
DELETE = st.tuples(st.just("delete"), st.integers(1, 4))
SCRIPT = st.lists(st.one_of(ADD, UPDATE, DELETE), min_size=1, max_size=6)


@pytest.fixture(scope="module")
def compare_dsn(migrated_dsn: str) -> Iterator[str]:
    with own_schema(migrated_dsn, TABLES) as dsn:
        yield dsn


def _lines(order_no: int, spec: list[Any], products: list[Product]) -> list[LineDetail]:
    return [
        LineDetail(
            Line(order_no, line_no, products[p].product_id or 0, qty, meta),
            products[p],
            [Note(0, 0, t) for t in notes],
        )
        for line_no, p, qty, meta, notes in spec
    ]


async def _try(work: Any) -> Any:
    try:
        return await work
    except RepoError as exc:
        return type(exc).__name__


async def _step(db: Any, step: tuple[Any, ...], seed: tuple[list[Customer], list[Product]]) -> Any:
    customers, products = seed
    details = db.repository(OrderDetails)
    kind, order_no = step[0], step[1]
    if kind == "add":
        customer = None if step[2] is None else customers[step[2]]
        order = Order(order_no, WHEN, customer.customer_id if customer else None)
        return await _try(
            details.add(OrderDetail(order, customer, _lines(order_no, step[3], products)))
        )
    if kind == "delete":
        return await _try(details.delete(order_no))
    stored = await _try(details.get(order_no))
    if isinstance(stored, str):
        return stored
    _, _, customer_at, keep, deltas, added, stale = step
    customer = None if customer_at is None else customers[customer_at]
    kept = [
        attrs.evolve(d, line=attrs.evolve(d.line, qty=max(0, d.line.qty + deltas[i])))
        for i, d in enumerate(stored.lines)
        if keep[i]
    ]
    kept = [attrs.evolve(d, notes=d.notes[:1]) for d in kept]
    order = attrs.evolve(
        stored.order,
        customer_id=customer.customer_id if customer else None,
        version=stored.order.version - 1 if stale else stored.order.version,
    )
    changed = OrderDetail(order, customer, kept + _lines(order_no, added, products))
    return await _try(details.update(changed))


async def _everything(db: Any) -> Any:
    details = db.repository(OrderDetails)
    found = await details.find(order_by="-order_no")
    pages: list[OrderDetail] = []
    after = None
    while True:
        page = await details.page(after=after, limit=2)
        pages += page.items
        if page.next is None:
            break
        after = page.next
    keys = [d.order.order_no for d in found]
    return found, pages[::-1], await details.get_many(keys[::-1])


async def _seed(db: Any) -> tuple[list[Customer], list[Product]]:
    customers = [await db.repository(C).add(Customer(n)) for n in ("ada", "bob")]
    products = [
        await db.repository(P).add(Product(n, Decimal(price), attributes))
        for n, price, attributes in (
            ("anvil", "9.99", {"kg": 50}),
            ("rope", "0.10", None),
            ("naïve", "-1.00", ["é"]),
        )
    ]
    return customers, products


async def _compare(dsn: str, script: list[tuple[Any, ...]]) -> None:
    await truncate(dsn, TABLES)
    async with (
        Database.connect(via_bouncer(dsn), min_size=1, max_size=2) as pg,
        MemoryDatabase() as memory,
    ):
        seeds = [await _seed(pg), await _seed(memory)]
        assert seeds[0] == seeds[1]
        for step in script:
            on_pg = await _step(pg, step, seeds[0])
            in_memory = await _step(memory, step, seeds[1])
            assert on_pg == in_memory, step
            assert await _everything(pg) == await _everything(memory), step


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(script=SCRIPT)
def test_memory_and_postgres_agree_on_random_aggregates(
    compare_dsn: str, script: list[tuple[Any, ...]]
) -> None:
    """Every step, and every read after it, is the same on both backends."""
    asyncio.run(_compare(compare_dsn, script))
