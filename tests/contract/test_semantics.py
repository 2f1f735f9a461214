"""The fine print of PostgreSQL that MemoryDatabase reproduces: NULLs, LIKE, sequences, keys.

Text here is compared only where every collation agrees (one case, ASCII):
MemoryDatabase orders text by code point, which is PostgreSQL's "C"
collation (the test servers' C.UTF-8), and may differ from a linguistic one.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from repo import (
    DataError,
    ForeignKeyViolation,
    InvalidQuery,
    NotNullViolation,
    UniqueViolation,
    UpsertResult,
    gt,
    ilike,
    in_,
    like,
    ne,
    not_in,
)
from repo.catalog import Brand, BrandRepository, CatalogUnitOfWork, Product, ProductRepository

from .conftest import AnyDatabase


async def priced(db: AnyDatabase, *prices: str | None) -> ProductRepository:
    """Products p0, p1, ... of one brand, with the given prices (None: not priced)."""
    brand = await db.repository(BrandRepository).add(Brand("acme"))
    products = db.repository(ProductRepository)
    for i, price in enumerate(prices):
        value = None if price is None else Decimal(price)
        await products.add(Product(f"p{i}", brand.brand_id or 0, price=value))
    return products


def names(products: list[Product]) -> list[str]:
    return [p.product_name for p in products]


async def test_nulls_sort_last_ascending_and_first_descending(db: AnyDatabase) -> None:
    """ORDER BY price puts NULL prices last; ORDER BY price DESC puts them first."""
    products = await priced(db, "5.00", None, "1.50", None, "9.99")
    assert names(await products.find(order_by=["price", "product_id"])) == [
        "p2",
        "p0",
        "p4",
        "p1",
        "p3",
    ]
    assert names(await products.find(order_by=["-price", "product_id"])) == [
        "p1",
        "p3",
        "p4",
        "p0",
        "p2",
    ]
    assert names(await products.find(order_by=["-price", "-product_id"], limit=3)) == [
        "p3",
        "p1",
        "p4",
    ]


async def test_null_never_satisfies_a_comparison(db: AnyDatabase) -> None:
    """ne, not_in and gt skip NULL fields; only price=None (IS NULL) finds them."""
    products = await priced(db, "5.00", None, "1.50")
    assert names(await products.find(price=ne(Decimal("5.00")))) == ["p2"]
    assert names(await products.find(price=not_in([Decimal("1.50")]))) == ["p0"]
    assert names(await products.find(price=gt(0), order_by="product_id")) == ["p0", "p2"]
    assert names(await products.find(price=None)) == ["p1"]
    assert await products.count(price=ne(None)) == 2


async def test_like_wildcards_and_escapes(db: AnyDatabase) -> None:
    """% matches any run, _ one character, a backslash escapes them; ILIKE ignores case."""
    brands = db.repository(BrandRepository)
    for name in ("100%", "1000", "a_b", "axb", "Ab", "ab\\c"):
        await brands.add(Brand(name))

    async def found(**filters: Any) -> set[str]:
        return {b.brand_name for b in await brands.find(**filters)}

    assert {"100%", "1000"} == await found(brand_name=like("100%"))
    assert {"100%"} == await found(brand_name=like("100\\%"))
    assert {"a_b", "axb"} == await found(brand_name=like("a_b"))
    assert {"a_b"} == await found(brand_name=like("a\\_b"))
    assert {"Ab"} == await found(brand_name=like("A%"))
    assert {"Ab", "a_b", "axb", "ab\\c"} == await found(brand_name=ilike("a%"))
    assert {"ab\\c"} == await found(brand_name=like("ab\\\\c"))
    assert set() == await found(brand_name=like("ab"))


async def test_explicit_keys_do_not_advance_the_sequence(db: AnyDatabase) -> None:
    """After an explicit key 2, generated keys still start at 1 and then collide with it."""
    brands = db.repository(BrandRepository)
    await brands.add(Brand("explicit", 2))
    assert Brand("first", 1) == await brands.add(Brand("first"))
    with pytest.raises(UniqueViolation) as got:
        await brands.add(Brand("second"))
    assert (
        got.value.table,
        got.value.constraint,
        got.value.columns,
    ) == ("brand", "pk_brand", ("brand_id",))
    assert Brand("third", 3) == await brands.add(Brand("third"))


async def test_failed_inserts_use_up_keys(db: AnyDatabase) -> None:
    """A key taken by a failed insert, or by an upsert that met its row, is not reused."""
    brands = db.repository(BrandRepository)
    await brands.add(Brand("acme"))
    with pytest.raises(UniqueViolation):
        await brands.add(Brand("acme"))
    assert Brand("acme", 1) == await brands.upsert(Brand("acme"), on="brand_name")
    assert Brand("next", 4) == await brands.add(Brand("next"))
    result = await brands.upsert_many([Brand("acme"), Brand("new")], on="brand_name")
    assert UpsertResult(inserted=1, updated=0, unchanged=1) == result
    assert Brand("new", 6) == await brands.find_one(brand_name="new")


async def test_constraints_hold_for_updates_too(db: AnyDatabase) -> None:
    """update and update_where refuse a missing brand, a NULL name and a duplicate name."""
    brands = db.repository(BrandRepository)
    a = await brands.add(Brand("a"))
    await brands.add(Brand("b"))
    product = await db.repository(ProductRepository).add(Product("anvil", a.brand_id or 0))
    with pytest.raises(ForeignKeyViolation) as got:
        await db.repository(ProductRepository).update_where({"brand_id": 99}, product_name="anvil")
    assert got.value.constraint == "fk_product_brand_id_brand"
    with pytest.raises(ForeignKeyViolation):
        await db.repository(ProductRepository).update(Product("anvil", 99, product.product_id))
    with pytest.raises(NotNullViolation) as null:
        await brands.update(Brand(None, a.brand_id))  # type: ignore[arg-type]
    assert (null.value.table, null.value.columns) == ("brand", ("brand_name",))
    with pytest.raises(UniqueViolation):
        await brands.update(Brand("b", a.brand_id))
    assert [Brand("a", 1), Brand("b", 2)] == await brands.find(order_by="brand_id")


async def test_deleting_a_referenced_row_names_the_referencing_table(db: AnyDatabase) -> None:
    """The ForeignKeyViolation of a delete names the constraint on the referencing table."""
    brand = await db.repository(BrandRepository).add(Brand("acme"))
    await db.repository(ProductRepository).add(Product("anvil", brand.brand_id or 0))
    with pytest.raises(ForeignKeyViolation) as got:
        await db.repository(BrandRepository).delete_where(brand_name="acme")
    assert (
        got.value.table,
        got.value.constraint,
        got.value.columns,
    ) == ("product", "fk_product_brand_id_brand", ("brand_id",))
    assert await db.repository(BrandRepository).count() == 1


async def test_a_referenced_row_deleted_in_a_unit_can_be_replaced(db: AnyDatabase) -> None:
    """Deleting the products first, then the brand, in one unit: both go, in that order."""
    brand = await db.repository(BrandRepository).add(Brand("acme"))
    await db.repository(ProductRepository).add(Product("anvil", brand.brand_id or 0))
    async with CatalogUnitOfWork(db) as uow:
        assert await uow.products.delete_where(brand_id=brand.brand_id) == 1
        await uow.brands.delete(brand.brand_id)
        assert await uow.brands.count() == 0
    assert await db.repository(ProductRepository).count() == 0


async def test_created_at_is_the_transaction_start(db: AnyDatabase) -> None:
    """Every row a unit inserts gets one created_at: now() is the transaction's start."""
    brand = await db.repository(BrandRepository).add(Brand("acme"))
    async with CatalogUnitOfWork(db) as uow:
        a = await uow.products.add(Product("a", brand.brand_id or 0))
        b = await uow.products.add(Product("b", brand.brand_id or 0))
    assert a.created_at is not None
    assert a.created_at == b.created_at
    assert a.created_at.tzinfo is not None


async def test_values_of_the_wrong_type_are_a_data_error(db: AnyDatabase) -> None:
    """A value the column's type cannot take is a DataError (a key InvalidQuery); the unit
    stays usable."""
    async with CatalogUnitOfWork(db) as uow:
        acme = await uow.brands.add(Brand("acme"))
        with pytest.raises(DataError):
            await uow.brands.add(Brand(123))  # type: ignore[arg-type]
        with pytest.raises(DataError):
            await uow.brands.find(brand_id=gt("x"))
        with pytest.raises(InvalidQuery, match=r"brand\.brand_id is the key"):
            await uow.brands.get("x")
        with pytest.raises(InvalidQuery, match="an int"):
            await uow.brands.get(True)
        with pytest.raises(DataError):
            await uow.brands.count(brand_id=in_(["1"]))
        with pytest.raises(DataError):
            await uow.brands.update_where({"brand_name": 5}, brand_id=acme.brand_id)
        product = await uow.products.add(Product("anvil", acme.brand_id or 0, price=2))  # type: ignore[arg-type]
        assert await uow.brands.get(acme.brand_id) == acme
    assert product.product_name == "anvil"
    assert await db.repository(BrandRepository).count() == 1


async def test_a_pattern_ending_in_its_escape_is_refused(db: AnyDatabase) -> None:
    """LIKE 'a\\' (the escape character last) is a DataError, whatever the rows (PostgreSQL
    refuses it once a row's text reaches the end); 'a\\\\' matches 'a\\'."""
    brands = db.repository(BrandRepository)
    with pytest.raises(DataError):
        await brands.find(brand_name=like("a\\"))
    await brands.add(Brand("a\\"))
    with pytest.raises(DataError):
        await brands.find(brand_name=like("a\\"))
    assert len(await brands.find(brand_name=like("a\\\\"))) == 1
