"""MemoryDatabase and PostgreSQL, driven side by side by Hypothesis, never disagree.

A rule-based state machine applies one random operation at a time (add,
add_many, upsert_many, update, update_where, delete, delete_where, get,
find, count and pages on brands and products; a unit of work begun,
committed or rolled back; savepoints entered, left, or left with an error)
to both backends, and fails at the first step whose results or error classes
differ. While a unit of work is open, writes go through it and only reads
go to the pool: a pooled write to a row the unit holds would wait on
PostgreSQL for a commit that the (sequential) machine never issues.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from types import TracebackType
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule, run_state_machine_as_test

from repo import Database, RepoError, Savepoint, gt, like, ne
from repo.catalog import Brand, BrandRepository, CatalogUnitOfWork, Product, ProductRepository
from repo.testing import MemoryDatabase
from tests.conftest import CATALOG_TABLES, via_bouncer

RESET = "; ".join(
    [
        *(f"DELETE FROM {table}" for table in CATALOG_TABLES),
        *(
            f"SELECT setval(pg_get_serial_sequence('{table}', '{table}_id'), 1, false)"
            for table in ("brand", "product")
        ),
    ]
)
NAMES = st.sampled_from(["acme", "bolt", "crane", "dyna"])
KEYS = st.integers(min_value=1, max_value=6)


class Boom(Exception):
    """The error a savepoint is left with."""


def outcome(value: Any) -> Any:
    """A result made comparable: products lose created_at (each server has its own clock)."""
    if isinstance(value, Product):
        return attrs.evolve(value, created_at=None)
    if isinstance(value, list):
        return [outcome(v) for v in value]
    return value


class Side:
    """One backend's state in the machine: its database, open unit and savepoints."""

    def __init__(self, db: Database | MemoryDatabase) -> None:
        self.db = db
        self.uow: CatalogUnitOfWork | None = None
        self.savepoints: list[Savepoint] = []

    def brands(self) -> BrandRepository:
        return self.uow.brands if self.uow else self.db.repository(BrandRepository)

    def products(self) -> ProductRepository:
        return self.uow.products if self.uow else self.db.repository(ProductRepository)


Step = Callable[[Side], Awaitable[Any]]


class SideBySide(RuleBasedStateMachine):
    """Both backends, the same steps, the same outcomes."""

    loop: ClassVar[asyncio.AbstractEventLoop]
    pg: ClassVar[Database]

    def __init__(self) -> None:
        super().__init__()
        self.run(self._empty())
        self.sides = [Side(MemoryDatabase()), Side(self.pg)]

    async def _empty(self) -> None:
        # DELETE and setval are much cheaper than TRUNCATE on a few rows,
        # and this runs before each of the 200 examples.
        async with self.pg.acquire() as conn:
            await conn.execute(RESET)

    def run(self, coro: Awaitable[Any]) -> Any:
        return self.loop.run_until_complete(coro)

    def both(self, step: Step) -> None:
        results: list[tuple[Any, ...]] = []
        for side in self.sides:
            try:
                value: tuple[Any, ...] = ("ok", outcome(self.run(step(side))))
            except RepoError as exc:
                value = ("error", type(exc).__name__, getattr(exc, "constraint", None))
            results.append(value)
        memory, postgres = results
        assert postgres == memory

    @property
    def open(self) -> bool:
        return self.sides[0].uow is not None

    # -- units of work and savepoints ---------------------------------------

    @precondition(lambda self: not self.open)
    @rule()
    def begin(self) -> None:
        for side in self.sides:
            side.uow = self.run(CatalogUnitOfWork(side.db).__aenter__())

    @precondition(lambda self: self.open)
    @rule(commit=st.booleans())
    def end(self, commit: bool) -> None:
        async def finish(side: Side) -> None:
            uow, side.uow, side.savepoints = side.uow, None, []
            assert uow is not None
            await (uow.commit() if commit else uow.rollback())

        self.both(finish)

    @precondition(lambda self: self.open)
    @rule()
    def enter_savepoint(self) -> None:
        async def enter(side: Side) -> None:
            assert side.uow is not None
            savepoint = side.uow.savepoint()
            await savepoint.__aenter__()
            side.savepoints.append(savepoint)

        self.both(enter)

    @precondition(lambda self: self.open and self.sides[0].savepoints)
    @rule(fail=st.booleans())
    def leave_savepoint(self, fail: bool) -> None:
        async def leave(side: Side) -> None:
            savepoint = side.savepoints.pop()
            error = Boom() if fail else None
            tb: TracebackType | None = None
            await savepoint.__aexit__(Boom if fail else None, error, tb)

        self.both(leave)

    # -- writes ---------------------------------------------------------------

    @rule(name=NAMES)
    def add_brand(self, name: str) -> None:
        self.both(lambda s: s.brands().add(Brand(name)))

    @rule(key=KEYS, name=NAMES)
    def rename_brand(self, key: int, name: str) -> None:
        self.both(lambda s: s.brands().update(Brand(name, key)))

    @rule(key=KEYS)
    def delete_brand(self, key: int) -> None:
        self.both(lambda s: s.brands().delete(key))

    @rule(name=NAMES, brand=KEYS, price=st.sampled_from([None, "1.50", "9.99"]))
    def add_product(self, name: str, brand: int, price: str | None) -> None:
        value = None if price is None else Decimal(price)
        self.both(lambda s: s.products().add(Product(name, brand, price=value)))

    @rule(name=NAMES, other=NAMES)
    def upsert_brands(self, name: str, other: str) -> None:
        self.both(lambda s: s.brands().upsert_many([Brand(name), Brand(other)], on="brand_name"))

    @rule(names=st.lists(NAMES, max_size=3), brand=KEYS)
    def add_many_products(self, names: list[str], brand: int) -> None:
        products = [Product(n, brand) for n in names]
        self.both(lambda s: s.products().add_many(products, returning=True))

    @rule(key=KEYS, price=st.sampled_from(["2.00", "9.99"]))
    def reprice(self, key: int, price: str) -> None:
        self.both(lambda s: s.products().update_where({"price": Decimal(price)}, product_id=key))

    @rule(key=KEYS)
    def delete_product(self, key: int) -> None:
        self.both(lambda s: s.products().delete(key))

    @rule(brand=KEYS)
    def delete_products_of(self, brand: int) -> None:
        self.both(lambda s: s.products().delete_where(brand_id=brand))

    # -- reads ------------------------------------------------------------------

    @rule(key=KEYS, pooled=st.booleans())
    def get_brand(self, key: int, pooled: bool) -> None:
        self.both(lambda s: self._brands(s, pooled).get(key))

    @rule(pattern=st.sampled_from(["%", "a%", "%n%", "_o%"]), pooled=st.booleans())
    def find_brands(self, pattern: str, pooled: bool) -> None:
        self.both(
            lambda s: self._brands(s, pooled).find(brand_name=like(pattern), order_by="-brand_id")
        )

    @rule(order=st.sampled_from(["price", "-price"]), brand=KEYS)
    def find_products(self, order: str, brand: int) -> None:
        self.both(
            lambda s: s.products().find(
                brand_id=ne(brand), order_by=[order, "product_id"], limit=4, offset=1
            )
        )

    @rule(limit=st.integers(min_value=1, max_value=3), pooled=st.booleans())
    def page_through_brands(self, limit: int, pooled: bool) -> None:
        async def walk(side: Side) -> list[list[Brand]]:
            brands, pages, after = self._brands(side, pooled), [], None
            while True:
                page = await brands.page(after=after, limit=limit, order_by="-brand_name")
                pages.append(page.items)
                if page.next is None:
                    return pages
                after = page.next

        self.both(walk)

    @rule(low=KEYS)
    def count_brands(self, low: int) -> None:
        self.both(lambda s: s.brands().count(brand_id=gt(low)))

    def _brands(self, side: Side, pooled: bool) -> BrandRepository:
        return side.db.repository(BrandRepository) if pooled else side.brands()

    def teardown(self) -> None:
        for side in self.sides:
            if side.uow is not None:
                self.run(side.uow.rollback())
                side.uow = None


@pytest.fixture
def machine(migrated_dsn: str) -> Iterator[type[SideBySide]]:
    """The machine class, bound to a pool on the migrated scratch database and a loop."""
    loop = asyncio.new_event_loop()
    try:
        SideBySide.loop = loop
        SideBySide.pg = loop.run_until_complete(
            Database.connect(
                via_bouncer(migrated_dsn), min_size=1, max_size=3, acquire_timeout=5
            ).open()
        )
        yield SideBySide
        loop.run_until_complete(SideBySide.pg.close())
    finally:
        loop.close()


def test_memory_and_postgres_agree_step_by_step(machine: type[SideBySide]) -> None:
    """200 random sequences of operations give the same results and errors on both backends."""
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=200,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
