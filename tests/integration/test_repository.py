"""Repository behaviour only PostgreSQL has: bind parameters, hand-written SQL, driver errors.

The shared behaviour of the generic methods is pinned in tests/contract/.
"""

from __future__ import annotations

import asyncpg
import pytest

from repo import (
    Database,
    InvalidQuery,
    Op,
    UniqueViolation,
    in_,
    like,
)
from repo.catalog import (
    Brand,
    BrandRepository,
    CatalogUnitOfWork,
    Product,
    ProductColor,
    ProductSize,
    Sku,
    SkuRepository,
    SkuView,
)

pytestmark = pytest.mark.smoke


@pytest.mark.parametrize(
    "value",
    [
        "'; DROP TABLE brand; --",
        'Robert"); DELETE FROM brand; --',
        "$1 $2 \\x00 %s {0}",
        'O\'Brien & "Sons" \\ ;',
    ],
)
async def test_injection_attempts_in_values_are_stored_verbatim(db: Database, value: str) -> None:
    """Values travel as bind parameters: hostile strings are stored and found as they are."""
    brands = db.repository(BrandRepository)
    stored = await brands.add(Brand(value))
    assert stored.brand_name == value
    assert await brands.find(brand_name=value) == [stored]
    assert await brands.find(brand_name=like(value)) in ([stored], [])
    assert await brands.count() == 1


async def test_invalid_queries_are_refused_before_any_sql(dsn: str) -> None:
    """Unknown fields, operators and order keys raise InvalidQuery without touching the server.

    The pool is closed first: reaching it would raise InvalidState instead.
    """
    db = await Database.connect(dsn)
    brands = db.repository(BrandRepository)
    await db.close()
    with pytest.raises(InvalidQuery, match="no field 'nmae'"):
        await brands.find(nmae="x")
    with pytest.raises(InvalidQuery, match="unknown filter operator 'regex'"):
        await brands.find(brand_name=Op("regex", "x"))
    with pytest.raises(InvalidQuery, match="order_by"):
        await brands.find(order_by="-nmae")
    with pytest.raises(InvalidQuery, match="order_by"):
        await brands.find(order_by="brand_name; DROP TABLE brand")
    with pytest.raises(InvalidQuery):
        await brands.count(**{"brand_name = 1 OR 1": 1})
    with pytest.raises(InvalidQuery, match="limit"):
        await brands.find(limit=-1)
    with pytest.raises(InvalidQuery, match="collection"):
        await brands.find(brand_id=in_(5))  # type: ignore[arg-type]
    with pytest.raises(InvalidQuery, match="Brand objects"):
        await brands.add(Product("p", 1))  # type: ignore[arg-type]


async def test_hand_written_sql_onto_a_read_model(db: Database) -> None:
    """The product ⨝ sku ⨝ colour ⨝ size join maps onto SkuView by column name."""
    async with CatalogUnitOfWork(db) as uow:
        brand = await uow.brands.add(Brand("acme"))
        product = await uow.products.add(Product("anvil", brand.brand_id or 0))
        red = await uow.colors.add(ProductColor("red"))
        large = await uow.sizes.add(ProductSize("L"))
        small = await uow.sizes.add(ProductSize("S"))
        for size in (large, small):
            await uow.skus.add(
                Sku(product.product_id or 0, size.product_size_id or 0, red.product_color_id or 0)
            )
    views = await db.repository(SkuRepository).views_of_product(product.product_id or 0)
    assert views == [
        SkuView(1, "anvil", "acme", "red", "L"),
        SkuView(2, "anvil", "acme", "red", "S"),
    ]


async def test_read_model_mismatch_is_a_clear_error(db: Database) -> None:
    """A query whose columns do not fit the read model raises InvalidQuery naming them."""
    skus = db.repository(SkuRepository)
    await db.repository(BrandRepository).add(Brand("x"))
    with pytest.raises(InvalidQuery, match="brand_id"):
        await skus.query(SkuView, "SELECT brand_id, brand_name FROM brand")
    assert await skus.query(SkuView, "SELECT 1 AS sku_id WHERE false") == []
    assert await skus.scalar("SELECT count(*) FROM brand") == 1
    assert await skus.execute("UPDATE brand SET brand_name = $1", "y") == "UPDATE 1"


async def test_unique_violation_chains_the_driver_error(db: Database) -> None:
    """The translated UniqueViolation keeps asyncpg's error as its cause."""
    brands = db.repository(BrandRepository)
    await brands.add(Brand("acme"))
    with pytest.raises(UniqueViolation) as got:
        await brands.add(Brand("acme"))
    assert isinstance(got.value.__cause__, asyncpg.UniqueViolationError)
