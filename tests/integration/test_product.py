"""The product's columns from revision 0002: price, created_at, and updates that keep them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import attrs
import pytest

from repo import Database, gt
from repo.catalog import Brand, BrandRepository, Product, ProductRepository

pytestmark = pytest.mark.smoke


async def _brand(db: Database) -> int:
    brand = await db.repository(BrandRepository).add(Brand("acme"))
    assert brand.brand_id is not None
    return brand.brand_id


async def test_add_fills_created_at_and_keeps_price_exact(db: Database) -> None:
    """created_at comes back from the server's now(); a price is a Decimal to the cent."""
    products = db.repository(ProductRepository)
    brand_id = await _brand(db)
    before = dt.datetime.now(dt.UTC)
    anvil = await products.add(Product("anvil", brand_id, price=Decimal("19.99")))
    assert anvil.created_at is not None
    assert anvil.created_at.tzinfo is not None
    assert abs(anvil.created_at - before) < dt.timedelta(minutes=1)
    assert anvil.price == Decimal("19.99")
    assert await products.get(anvil.product_id) == anvil


async def test_positional_constructors_still_work_and_price_may_be_unknown(db: Database) -> None:
    """Product(name, brand_id[, product_id]) is as before; price stays NULL until set."""
    products = db.repository(ProductRepository)
    brand_id = await _brand(db)
    stored = await products.add(Product("anvil", brand_id))
    assert (stored.product_name, stored.brand_id, stored.price) == ("anvil", brand_id, None)
    explicit = await products.add(Product("rope", brand_id, 42))
    assert explicit.product_id == 42


async def test_price_is_rounded_to_the_column_scale(db: Database) -> None:
    """numeric(10,2) rounds to cents, as PostgreSQL does."""
    products = db.repository(ProductRepository)
    brand_id = await _brand(db)
    stored = await products.add(Product("anvil", brand_id, price=Decimal("9.999")))
    assert stored.price == Decimal("10.00")


async def test_update_with_created_at_none_keeps_the_stored_one(db: Database) -> None:
    """An entity built without created_at updates the other columns, not the creation time."""
    products = db.repository(ProductRepository)
    brand_id = await _brand(db)
    stored = await products.add(Product("anvil", brand_id))
    assert stored.product_id is not None
    repriced = await products.update(Product("anvil", brand_id, stored.product_id, Decimal("5")))
    assert repriced == attrs.evolve(stored, price=Decimal("5.00"))
    later = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    moved = await products.update(attrs.evolve(repriced, created_at=later))
    assert moved.created_at == later


async def test_keyset_pages_of_a_brand(db: Database) -> None:
    """A brand's products page by product_id, the order ix_product_brand_id_product_id keeps."""
    products = db.repository(ProductRepository)
    brand_id = await _brand(db)
    await products.add_many(Product(f"p{i}", brand_id) for i in range(7))
    pages: list[list[str]] = []
    last = 0
    while page := await products.find(
        brand_id=brand_id, product_id=gt(last), order_by="product_id", limit=3
    ):
        pages.append([p.product_name for p in page])
        last = page[-1].product_id or 0
    assert pages == [["p0", "p1", "p2"], ["p3", "p4", "p5"], ["p6"]]
    assert all(p.created_at is not None for p in await products.find(brand_id=brand_id))
