"""Aggregates on the wire: each read is one statement, each write only the statements it needs.

Counted as in ``test_round_trips.py``: the operation runs once to warm the
statement cache, then again under the count, on a pool of one connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import attrs
import pytest

from repo import Database
from repo.catalog import (
    Brand,
    BrandRepository,
    CatalogUnitOfWork,
    ProductDetail,
    ProductDetails,
    add_product,
)
from tests.contract import test_aggregates as orders
from tests.contract.own_schema import own_schema, truncate
from tests.integration.test_round_trips import assert_trips, trips
from tests.wire import Wiretap


@pytest.fixture
async def tap(dsn: str, migrated_dsn: str) -> AsyncIterator[Wiretap]:
    async with Wiretap(migrated_dsn) as wiretap:
        yield wiretap


@pytest.fixture
async def stocked(tap: Wiretap) -> AsyncIterator[Database]:
    """A pool of one connection on a catalog of one brand and two products of three skus."""
    async with Database.connect(tap.dsn, min_size=1, max_size=1) as database:
        brand = await database.repository(BrandRepository).add(Brand("acme"))
        async with CatalogUnitOfWork(database) as uow:
            for name in ("anvil", "rope"):
                variants = [("s", "red"), ("m", "red"), ("l", "blue")]
                await add_product(uow, brand.brand_id or 0, name, variants)
        yield database


@pytest.mark.parametrize("operation", ["get", "get_many", "find", "find_one", "page"])
async def test_each_read_is_one_statement(tap: Wiretap, stocked: Database, operation: str) -> None:
    """A whole product, brand and skus included, costs one round trip, however many skus."""
    details = stocked.repository(ProductDetails)

    async def read(i: int) -> object:
        match operation:
            case "get":
                found: object = await details.get(1)
            case "get_many":
                found = await details.get_many([2, 1])
            case "find":
                found = await details.find(product_name="anvil")
            case "find_one":
                found = await details.find_one(product_id=2)
            case _:
                found = await details.page(limit=1)
        return found

    actual = await trips(tap, read)
    if operation == "get":  # one row: the skus as an array of rows
        assert_trips(actual, ['SELECT _a0."product_name"'])
        assert "ARRAY(SELECT ROW(" in actual[0]
    else:  # many roots: flat rows, the products' then the skus' (in the products' int8 slots)
        assert_trips(actual, ["WITH _repo_r AS MATERIALIZED (SELECT "])
        assert ' UNION ALL SELECT 1, _k1."product_id"::int8, ' in actual[0]
        assert "UNION ALL SELECT -1, NULL" in actual[0]  # the row of a drifted table
        assert "row_number() OVER" in actual[0] or operation == "get_many"
        assert "ARRAY(SELECT ROW(" not in actual[0]
    assert 'LEFT JOIN "brand"' in actual[0]


async def test_a_pool_level_stream_is_one_read_only_transaction(
    tap: Wiretap, stocked: Database
) -> None:
    details = stocked.repository(ProductDetails)

    async def stream(i: int) -> object:
        return [d async for d in details.stream()]

    assert_trips(
        await trips(tap, stream),
        ["BEGIN READ ONLY", "SELECT _a0.", "<fetch from an open portal>", "ROLLBACK"],
    )


async def test_an_update_writes_only_what_changed(tap: Wiretap, stocked: Database) -> None:
    """Changing one sku of three: read, one UPDATE, read back, in one transaction."""
    details = stocked.repository(ProductDetails)

    async def update(i: int) -> ProductDetail:
        stored = await details.get(1)
        tap.clear()
        sku = stored.skus[1]
        skus = [stored.skus[0], attrs.evolve(sku, stock=sku.stock + 1), stored.skus[2]]
        return await details.update(attrs.evolve(stored, skus=skus))

    assert_trips(
        await trips(tap, update),
        ["BEGIN", "SELECT _a0.", 'UPDATE "sku"', "SELECT _a0.", "COMMIT"],
    )


async def test_an_add_inserts_the_children_in_one_statement(
    tap: Wiretap, stocked: Database
) -> None:
    details = stocked.repository(ProductDetails)
    template = await details.get(1)

    async def add(i: int) -> ProductDetail:
        product = attrs.evolve(template.product, product_id=None, product_name=f"copy {i}")
        skus = [attrs.evolve(s, sku_id=None, version=0) for s in template.skus]
        return await details.add(ProductDetail(product, template.brand, skus))

    assert_trips(
        await trips(tap, add),
        ["BEGIN", 'INSERT INTO "product"', 'INSERT INTO "sku"', "SELECT _a0.", "COMMIT"],
    )


@pytest.fixture(scope="module")
def orders_dsn(migrated_dsn: str) -> Iterator[str]:
    with own_schema(migrated_dsn, orders.TABLES) as dsn:
        yield dsn


async def test_children_with_a_composite_key_and_json_are_changed_in_bulk(
    orders_dsn: str,
) -> None:
    """Lines keyed by (order, line no), holding jsonb: two deleted in one statement, three
    changed through one staging table (jsonb cannot ride unnest), none row by row."""
    async with (
        Wiretap(orders_dsn) as tap,
        Database.connect(tap.dsn, min_size=1, max_size=1) as db,
    ):
        await truncate(orders_dsn, orders.TABLES)
        customer = await db.repository(orders.C).add(orders.Customer("ada"))
        product = await db.repository(orders.P).add(
            orders.Product("anvil", Decimal("9.99"), {"kg": 50})
        )
        details = db.repository(orders.OrderDetails)

        async def update(i: int) -> orders.OrderDetail:
            stored = await details.add(orders.order(100 + i, customer, [product], 6))
            lines = [
                attrs.evolve(d, line=attrs.evolve(d.line, meta=[f"changed {i}", {"n": i}]))
                if d.line.line_no <= 3
                else d
                for d in stored.lines
                if d.line.line_no not in (4, 5)
            ]
            tap.clear()
            return await details.update(attrs.evolve(stored, lines=lines))

        actual = await trips(tap, update)
        assert_trips(
            actual,
            [
                "BEGIN",
                "SELECT _a0.",
                # The order is versioned: any change to it bumps its version.
                'UPDATE "agg_order"',
                'DELETE FROM "agg_note"',
                'DELETE FROM "agg_line" WHERE ("order_no", "line_no") IN',
                'CREATE TEMP TABLE "_repo_stage_agg_line_u"',
                'COPY "_repo_stage_agg_line_u"',
                'UPDATE "agg_line"',
                'DROP TABLE "_repo_stage_agg_line_u"',
                "SELECT _a0.",
                "COMMIT",
            ],
        )
        got = await details.get(101)
        assert [d.line.line_no for d in got.lines] == [1, 2, 3, 6]
        assert [d.line.meta for d in got.lines] == [["changed 1", {"n": 1}]] * 3 + [{"i": 6}]
