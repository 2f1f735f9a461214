"""Bad input, table-driven: each case raises a clear error class naming the field or value.

And none stores anything: every case runs against empty tables, which are
checked empty (but for the seed) afterwards.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import asyncpg
import attrs
import pytest

from repo import (
    ConfigurationError,
    ConnectionLost,
    Database,
    DataError,
    InvalidQuery,
    NotNullViolation,
    RepoError,
    StaleEntity,
    Table,
    between,
    gt,
    in_,
)
from repo.catalog import (
    Brand,
    BrandRepository,
    CatalogUnitOfWork,
    Product,
    ProductColor,
    ProductRepository,
    ProductSize,
    Sku,
    SkuRepository,
)

NAIVE = dt.datetime(2026, 1, 1, 12, 0)


@attrs.define
class Seed:
    """What the cases work on: a brand, a product, a sku, and pool-level repositories."""

    db: Database
    brands: BrandRepository
    products: ProductRepository
    skus: SkuRepository
    brand: Brand
    product: Product
    sku: Sku


Case = Callable[[Seed], Awaitable[Any]]


def p(brand_id: Any = 1, **kw: Any) -> Product:
    return Product("p", brand_id, **kw)


async def _stale(s: Seed) -> None:
    await s.skus.update(attrs.evolve(s.sku, stock=1))
    await s.skus.update(attrs.evolve(s.sku, stock=2))  # still at version 0


async def _unit(s: Seed, **options: Any) -> None:
    async with CatalogUnitOfWork(s.db, **options):
        pass


async def _connect(dsn: str, **options: Any) -> None:
    async with Database.connect(dsn, **options):
        pass


CASES: list[tuple[str, Case, type[RepoError], str]] = [
    # -- wrong Python types for a column
    ("int for text", lambda s: s.brands.add(Brand(123)), DataError, "brand.brand_name"),  # type: ignore[arg-type]
    ("str for bigint", lambda s: s.products.add(p("1")), DataError, "product.brand_id"),
    ("bool for bigint", lambda s: s.products.add(p(True)), DataError, "product.brand_id"),
    ("float for bigint", lambda s: s.products.add(p(1.5)), DataError, "product.brand_id"),
    ("str for numeric", lambda s: s.products.add(p(price="9.99")), DataError, "product.price"),
    ("float for numeric", lambda s: s.products.add(p(price=9.99)), DataError, "product.price"),
    ("str for timestamptz", lambda s: s.products.add(p(created_at="2026-01-01")), DataError, "created_at"),
    ("date for timestamptz", lambda s: s.products.add(p(created_at=dt.date(2026, 1, 1))), DataError, "created_at"),
    # -- naive datetimes
    ("naive datetime", lambda s: s.products.add(p(created_at=NAIVE)), DataError, "naive"),
    ("naive datetime in update", lambda s: s.products.update(attrs.evolve(s.product, created_at=NAIVE)), DataError, "product.created_at"),
    ("naive datetime in a filter", lambda s: s.products.find(created_at=gt(NAIVE)), DataError, "naive"),
    # -- NUL bytes and broken text
    ("NUL in text", lambda s: s.brands.add(Brand("a\x00b")), DataError, "NUL"),
    ("NUL in an update", lambda s: s.brands.update(Brand("x\x00", s.brand.brand_id)), DataError, "brand.brand_name"),
    ("NUL in a filter", lambda s: s.brands.find(brand_name="a\x00"), DataError, "brand.brand_name"),
    ("lone surrogate", lambda s: s.brands.add(Brand("bad \ud800")), DataError, "surrogate"),
    # -- integers and numbers out of range
    ("bigint overflow", lambda s: s.products.add(p(2**63)), DataError, "out of range"),
    ("integer overflow", lambda s: s.skus.update(attrs.evolve(s.sku, stock=2**31)), DataError, "sku.stock"),
    ("integer underflow", lambda s: s.skus.update(attrs.evolve(s.sku, stock=-(2**31) - 1)), DataError, "sku.stock"),
    ("numeric(10,2) overflow", lambda s: s.products.add(p(price=Decimal("1e9"))), DataError, "product.price"),
    ("NaN for numeric(10,2)", lambda s: s.products.add(p(price=Decimal("NaN"))), DataError, "product.price"),
    ("out of range in a filter", lambda s: s.products.find(brand_id=in_([1, 2**64])), DataError, "product.brand_id"),
    ("wrong type in between", lambda s: s.products.find(brand_id=between(1, "9")), DataError, "product.brand_id"),
    # -- None for NOT NULL
    ("None for NOT NULL", lambda s: s.brands.add(Brand(None)), NotNullViolation, "brand.brand_name"),  # type: ignore[arg-type]
    ("None in an update", lambda s: s.skus.update(attrs.evolve(s.sku, stock=None)), NotNullViolation, "sku.stock"),  # type: ignore[arg-type]
    ("None in a bulk load", lambda s: s.brands.add_many([Brand("ok"), Brand(None)]), NotNullViolation, "#1"),  # type: ignore[arg-type]
    ("bad value in a bulk load", lambda s: s.brands.add_many([Brand("ok"), Brand(7)]), DataError, "entity #1"),  # type: ignore[arg-type]
    # -- the key and the version for update
    ("update without key", lambda s: s.brands.update(Brand("no key")), InvalidQuery, "brand_id"),
    ("update of a stale version", _stale, StaleEntity, "version=0"),
    ("get(None)", lambda s: s.brands.get(None), InvalidQuery, "never None"),
    # -- unknown fields anywhere a name is taken
    ("unknown filter field", lambda s: s.brands.find(nope=1), InvalidQuery, "'nope'"),
    ("unknown order_by field", lambda s: s.brands.find(order_by="-nope"), InvalidQuery, "'nope'"),
    ("unknown upsert on=", lambda s: s.brands.upsert(Brand("x"), on="nope"), InvalidQuery, "'nope'"),
    ("unknown upsert update=", lambda s: s.brands.upsert(Brand("x"), update=["nope"]), InvalidQuery, "'nope'"),
    ("unknown update_where set=", lambda s: s.brands.update_where({"nope": 1}, brand_id=1), InvalidQuery, "'nope'"),
    ("bad value in update_where", lambda s: s.brands.update_where({"brand_name": 5}, brand_id=1), DataError, "brand.brand_name"),
    # -- injection attempts that could reach an identifier
    ("SQL in order_by", lambda s: s.brands.find(order_by="brand_name; DROP TABLE brand"), InvalidQuery, "DROP TABLE"),
    ("SQL as a filter name", lambda s: s.brands.find(**{"brand_id = 1 OR 1=1 --": 1}), InvalidQuery, "OR 1=1"),  # type: ignore[arg-type]
    ("SQL in isolation", lambda s: _unit(s, isolation="serializable; DROP TABLE brand"), InvalidQuery, "isolation"),
    ("SQL in statement_timeout", lambda s: _unit(s, statement_timeout="1; DROP TABLE brand"), InvalidQuery, "statement_timeout"),
    ("negative lock_timeout", lambda s: _unit(s, lock_timeout=-1), InvalidQuery, "lock_timeout"),
    ("SQL in a table name", lambda s: _table('brand"; DROP TABLE brand; --'), InvalidQuery, "DROP TABLE"),
    ("bad page token", lambda s: s.brands.page(after="'; DROP TABLE brand; --"), InvalidQuery, "token"),
    # -- DSNs
    ("DSN with bad syntax", lambda s: _connect("postgresql://u@[::1/x"), ConfigurationError, "DSN"),
    ("DSN of another scheme", lambda s: _connect("mysql://u@localhost/x"), ConfigurationError, "mysql"),
    ("unreachable host", lambda s: _connect("postgresql://u@127.0.0.1:1/x", connect_timeout=2), ConnectionLost, "127.0.0.1:1"),
]  # fmt: skip


async def _table(name: str) -> None:
    Table(name, Brand, key="brand_id")


@pytest.fixture
async def seed(db: Database) -> Seed:
    async with CatalogUnitOfWork(db) as uow:
        brand = await uow.brands.add(Brand("seed"))
        assert brand.brand_id is not None
        product = await uow.products.add(Product("seed", brand.brand_id))
        assert product.product_id is not None
        color = await uow.colors.add(ProductColor("red"))
        size = await uow.sizes.add(ProductSize("m"))
        sku = await uow.skus.add(
            Sku(product.product_id, size.product_size_id or 0, color.product_color_id or 0)
        )
    return Seed(
        db,
        db.repository(BrandRepository),
        db.repository(ProductRepository),
        db.repository(SkuRepository),
        brand,
        product,
        sku,
    )


def test_there_are_at_least_thirty_cases() -> None:
    """The table covers at least 30 kinds of bad input."""
    assert len(CASES) >= 30


@pytest.mark.parametrize(
    ("case", "expected", "names"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_bad_input_raises_a_clear_error(
    seed: Seed, conn: asyncpg.Connection, case: Case, expected: type[RepoError], names: str
) -> None:
    """The case raises `expected`, its message naming the field or value; no data changes."""
    with pytest.raises(RepoError) as got:
        await case(seed)
    assert expected is type(got.value)
    assert names in str(got.value)
    assert await conn.fetchval("SELECT count(*) FROM brand") == 1
    assert await conn.fetchval("SELECT count(*) FROM product") == 1
    assert seed.db.pool.get_idle_size() == seed.db.pool.get_size()


async def test_injection_in_values_is_stored_verbatim(seed: Seed) -> None:
    """Values are bind parameters: SQL in a value is just text, stored and found as given."""
    evil = "x'); DROP TABLE brand; --"
    added = await seed.brands.add(Brand(evil))
    assert (await seed.brands.get(added.brand_id)).brand_name == evil
    assert [b.brand_name for b in await seed.brands.find(brand_name=evil)] == [evil]
    assert await seed.brands.count() == 2


async def test_a_failed_unit_with_bad_input_stores_nothing(seed: Seed) -> None:
    """A bad value part-way through a unit of work aborts the whole unit."""
    with pytest.raises(DataError, match=r"brand\.brand_name"):
        async with CatalogUnitOfWork(seed.db) as uow:
            await uow.brands.add(Brand("first"))
            await uow.brands.add(Brand("bad\x00"))
    assert await seed.brands.count() == 1
