"""Repository generic methods: the same behaviour in memory and on PostgreSQL."""

from __future__ import annotations

import pytest

from repo import (
    ForeignKeyViolation,
    InvalidQuery,
    NotFound,
    NotNullViolation,
    Op,
    UniqueViolation,
    between,
    ge,
    gt,
    ilike,
    in_,
    le,
    like,
    lt,
    ne,
    not_in,
)
from repo.catalog import Brand, BrandRepository, Product, ProductRepository

from .conftest import AnyDatabase

pytestmark = pytest.mark.smoke


async def test_add_fills_generated_key_and_get_returns_it(db: AnyDatabase) -> None:
    """add() inserts and returns the entity with its key from RETURNING; get() reads it back."""
    brands = db.repository(BrandRepository)
    acme = await brands.add(Brand("acme"))
    assert acme == Brand("acme", 1)
    assert await brands.get(1) == acme


async def test_add_keeps_an_explicit_key(db: AnyDatabase) -> None:
    """A generated key given explicitly is inserted as given."""
    brands = db.repository(BrandRepository)
    assert await brands.add(Brand("explicit", 42)) == Brand("explicit", 42)
    assert await brands.get(42) == Brand("explicit", 42)


async def test_missing_key_raises_not_found_on_get_update_delete(db: AnyDatabase) -> None:
    """get, update and delete of an absent key raise NotFound naming the table and key."""
    brands = db.repository(BrandRepository)
    with pytest.raises(NotFound, match="brand_id=99") as got:
        await brands.get(99)
    assert (got.value.table, got.value.key) == ("brand", 99)
    with pytest.raises(NotFound):
        await brands.update(Brand("ghost", 99))
    with pytest.raises(NotFound):
        await brands.delete(99)
    assert isinstance(got.value, LookupError)


async def test_update_writes_every_column_and_returns_the_row(db: AnyDatabase) -> None:
    """update() writes by key and returns what the database now holds."""
    brands = db.repository(BrandRepository)
    acme = await brands.add(Brand("acme"))
    renamed = await brands.update(Brand("acme corp", acme.brand_id))
    assert renamed == Brand("acme corp", acme.brand_id)
    assert await brands.get(acme.brand_id) == renamed


async def test_update_without_key_is_refused(db: AnyDatabase) -> None:
    """An entity without its key cannot be updated: InvalidQuery says so."""
    with pytest.raises(InvalidQuery, match="brand_id is None"):
        await db.repository(BrandRepository).update(Brand("nokey"))


async def test_delete_removes_the_row(db: AnyDatabase) -> None:
    """delete() removes exactly the row with that key."""
    brands = db.repository(BrandRepository)
    a = await brands.add(Brand("a"))
    b = await brands.add(Brand("b"))
    await brands.delete(a.brand_id)
    assert await brands.find(order_by="brand_id") == [b]


async def test_get_many_in_one_round_trip_in_the_order_asked(db: AnyDatabase) -> None:
    """get_many() returns the entities in the order of the keys; NotFound lists missing ones."""
    brands = db.repository(BrandRepository)
    added = [await brands.add(Brand(n)) for n in ("a", "b", "c")]
    keys = [added[2].brand_id, added[0].brand_id]
    assert await brands.get_many(keys) == [added[2], added[0]]
    assert await brands.get_many([]) == []
    with pytest.raises(NotFound, match=r"\[77\]"):
        await brands.get_many([added[0].brand_id, 77])


async def test_find_filters_order_limit_offset(db: AnyDatabase) -> None:
    """find() combines equality, operators, ordering, limit and offset."""
    brands = db.repository(BrandRepository)
    for name in ("alpha", "beta", "gamma", "delta", "Alpine"):
        await brands.add(Brand(name))
    names = [b.brand_name for b in await brands.find(order_by="brand_name")]
    assert names == sorted(names)
    assert [b.brand_name for b in await brands.find(order_by="-brand_name", limit=2)] == [
        "gamma",
        "delta",
    ]
    assert [b.brand_name for b in await brands.find(order_by="brand_id", limit=2, offset=1)] == [
        "beta",
        "gamma",
    ]
    assert [b.brand_name for b in await brands.find(brand_name="beta")] == ["beta"]
    assert [b.brand_id for b in await brands.find(brand_id=gt(3), order_by="brand_id")] == [4, 5]
    assert [b.brand_id for b in await brands.find(brand_id=ge(4), order_by="brand_id")] == [4, 5]
    assert [b.brand_id for b in await brands.find(brand_id=lt(2))] == [1]
    assert [b.brand_id for b in await brands.find(brand_id=le(1))] == [1]
    assert len(await brands.find(brand_id=ne(1))) == 4
    assert [b.brand_id for b in await brands.find(brand_id=in_([2, 4]), order_by="brand_id")] == [
        2,
        4,
    ]
    assert await brands.find(brand_id=in_([])) == []
    assert len(await brands.find(brand_id=not_in([1, 2]))) == 3
    assert [b.brand_id for b in await brands.find(brand_id=between(2, 3), order_by="brand_id")] == [
        2,
        3,
    ]
    assert {b.brand_name for b in await brands.find(brand_name=like("al%"))} == {"alpha"}
    assert {b.brand_name for b in await brands.find(brand_name=ilike("al%"))} == {
        "alpha",
        "Alpine",
    }
    assert [b.brand_id for b in await brands.find(brand_id=Op("gt", 4))] == [5]
    assert await brands.count() == 5
    assert await brands.count(brand_name=like("%a")) == 4
    assert await brands.exists(brand_name="delta")
    assert not await brands.exists(brand_name="epsilon")


async def test_find_one(db: AnyDatabase) -> None:
    """find_one() returns the single match or None, and refuses an ambiguous filter."""
    brands = db.repository(BrandRepository)
    a = await brands.add(Brand("a"))
    await brands.add(Brand("b"))
    assert await brands.find_one(brand_name="a") == a
    assert await brands.find_one(brand_name="zzz") is None
    with pytest.raises(InvalidQuery, match="more than one"):
        await brands.find_one(brand_id=gt(0))


async def test_none_filter_is_is_null(db: AnyDatabase) -> None:
    """name=None matches NULL (IS NULL) and ne(None) matches non-NULL, as in SQL."""
    brands = db.repository(BrandRepository)
    await brands.add(Brand("a"))
    assert await brands.find(brand_name=None) == []
    assert len(await brands.find(brand_name=ne(None))) == 1


async def test_unique_violation_names_constraint_and_columns(db: AnyDatabase) -> None:
    """A duplicate brand name raises UniqueViolation naming the constraint and columns."""
    brands = db.repository(BrandRepository)
    await brands.add(Brand("acme"))
    with pytest.raises(UniqueViolation) as got:
        await brands.add(Brand("acme"))
    err = got.value
    assert (err.table, err.constraint, err.columns) == (
        "brand",
        "uq_brand_brand_name",
        ("brand_name",),
    )
    assert "uq_brand_brand_name" in str(err)


async def test_foreign_key_violation(db: AnyDatabase) -> None:
    """A product of a missing brand raises ForeignKeyViolation naming the constraint."""
    with pytest.raises(ForeignKeyViolation) as got:
        await db.repository(ProductRepository).add(Product("orphan", 404))
    assert got.value.constraint == "fk_product_brand_id_brand"
    assert got.value.columns == ("brand_id",)
    assert got.value.table == "product"


async def test_deleting_a_referenced_row_is_a_foreign_key_violation(db: AnyDatabase) -> None:
    """Deleting a brand that products still reference raises ForeignKeyViolation."""
    brand = await db.repository(BrandRepository).add(Brand("acme"))
    await db.repository(ProductRepository).add(Product("anvil", brand.brand_id or 0))
    with pytest.raises(ForeignKeyViolation):
        await db.repository(BrandRepository).delete(brand.brand_id)


async def test_not_null_violation_names_the_column(db: AnyDatabase) -> None:
    """None for a NOT NULL column raises NotNullViolation naming the column."""
    with pytest.raises(NotNullViolation) as got:
        await db.repository(BrandRepository).add(Brand(None))  # type: ignore[arg-type]
    assert got.value.columns == ("brand_name",)


async def test_add_many_copies_rows(db: AnyDatabase) -> None:
    """add_many() stores every entity (COPY) and returns the count."""
    brands = db.repository(BrandRepository)
    count = await brands.add_many(Brand(f"b{i}") for i in range(1000))
    assert count == 1000
    assert await brands.count() == 1000
