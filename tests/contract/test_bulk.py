"""Bulk loads, upserts and set-based writes: the same results in memory and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import attrs
import pytest

from repo import (
    DataError,
    InvalidQuery,
    NotNullViolation,
    UniqueViolation,
    UpsertResult,
    gt,
    in_,
    lt,
)
from repo._bulk import CHECK_WHOLE_MAX
from repo.catalog import (
    Brand,
    BrandRepository,
    CatalogUnitOfWork,
    Product,
    ProductRepository,
    Sku,
    SkuRepository,
    load_catalog,
)

from .conftest import AnyDatabase


async def test_add_many_from_a_failing_async_iterable_stores_nothing(db: AnyDatabase) -> None:
    """An async iterator that raises part-way: its error propagates and no row is stored."""

    async def produce() -> AsyncIterator[Brand]:
        for i in range(500):
            if i == 300:
                raise RuntimeError("source broke")
            yield Brand(f"b{i}")

    brands = db.repository(BrandRepository)
    with pytest.raises(RuntimeError, match="source broke"):
        await brands.add_many(produce())
    assert await brands.count() == 0
    with pytest.raises(RuntimeError, match="source broke"):
        async with CatalogUnitOfWork(db) as uow:
            await uow.brands.add(Brand("kept only if the unit commits"))
            await uow.brands.add_many(produce())
    assert await brands.count() == 0


async def test_add_many_failing_on_a_constraint_stores_nothing(db: AnyDatabase) -> None:
    """A duplicate deep in the load: UniqueViolation naming the constraint, nothing stored."""
    rows = [Brand(f"b{i}") for i in range(2_000)] + [Brand("b7")]
    brands = db.repository(BrandRepository)
    with pytest.raises(UniqueViolation) as got:
        await brands.add_many(iter(rows))
    assert got.value.constraint == "uq_brand_brand_name"
    assert await brands.count() == 0


async def test_load_catalog_gives_the_same_catalog(db: AnyDatabase) -> None:
    """The shared generator loads the requested sizes, every sku unique and referenced."""
    async with CatalogUnitOfWork(db) as uow:
        counts = await load_catalog(uow, brands=3, products=10, skus=60)
    assert (counts.brands, counts.products, counts.skus) == (3, 10, 60)
    skus = await db.repository(SkuRepository).find()
    assert len({(s.product_id, s.product_size_id, s.product_color_id) for s in skus}) == 60
    products = await db.repository(ProductRepository).find()
    assert {p.brand_id for p in products} == {1, 2, 3}


async def test_add_many_from_an_async_iterable(db: AnyDatabase) -> None:
    """An async iterable is streamed into COPY."""

    async def produce() -> AsyncIterator[Brand]:
        for i in range(2500):
            yield Brand(f"async {i}")

    assert await db.repository(BrandRepository).add_many(produce()) == 2500
    assert await db.repository(BrandRepository).count() == 2500


async def test_bad_entities_are_refused_before_any_sql(db: AnyDatabase) -> None:
    """In a list, a wrong class or a preset generated key is refused before the COPY."""
    async with CatalogUnitOfWork(db) as uow:
        with pytest.raises(InvalidQuery, match="#1"):
            await uow.brands.add_many([Brand("a"), Product("p", 1)])  # type: ignore[list-item]
        with pytest.raises(InvalidQuery, match="brand_id"):
            await uow.brands.add_many([Brand("a"), Brand("b", 5)])
        # Nothing was sent, so the unit's transaction is intact.
        assert await uow.brands.add_many([Brand("c")]) == 1
    assert [b.brand_name for b in await db.repository(BrandRepository).find()] == ["c"]


async def test_a_bad_entity_late_in_a_long_list_stores_nothing(db: AnyDatabase) -> None:
    """A list past CHECK_WHOLE_MAX is checked as it is sent: the same error, nothing stored."""
    brands = db.repository(BrandRepository)
    many: list[Brand] = [Brand(f"long {i}") for i in range(CHECK_WHOLE_MAX)]
    with pytest.raises(InvalidQuery, match=f"#{CHECK_WHOLE_MAX}"):
        await brands.add_many([*many, Product("p", 1)])  # type: ignore[list-item]
    with pytest.raises(InvalidQuery, match="brand_id"):
        await brands.add_many([*many, Brand("preset", 5)])
    assert await brands.count() == 0
    assert await brands.add_many([*many, Brand("last")]) == CHECK_WHOLE_MAX + 1


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        (Brand(None), NotNullViolation, "brand.brand_name is NOT NULL but entity #10000"),  # type: ignore[arg-type]
        (Brand(7), DataError, "entity #10000 has 7"),  # type: ignore[arg-type]
        (Brand("a\x00b"), DataError, "entity #10000"),
    ],
)
async def test_a_long_list_only_screened_still_blames_the_bad_entity(
    db: AnyDatabase, bad: Brand, error: type[Exception], match: str
) -> None:
    """On PostgreSQL a long list is screened, the server refuses the rest: the error is the same."""
    brands = db.repository(BrandRepository)
    many = [Brand(f"long {i}") for i in range(CHECK_WHOLE_MAX)]
    with pytest.raises(error, match=match):
        await brands.add_many([*many, bad])
    assert await brands.count() == 0


async def test_a_long_list_screened_refuses_what_the_server_would_store(db: AnyDatabase) -> None:
    """A bool for an int, a NaN or a float for a numeric: refused before they reach the server."""
    brand = await db.repository(BrandRepository).add(Brand("b"))
    products = db.repository(ProductRepository)
    many = [Product(f"p{i}", brand.brand_id or 0) for i in range(CHECK_WHOLE_MAX)]
    for bad, match in [
        (Product("bool", True), "brand_id"),
        (Product("nan", brand.brand_id or 0, price=Decimal("NaN")), "price"),
        (Product("float", brand.brand_id or 0, price=1.5), "price"),  # type: ignore[arg-type]
        (Product("big", 2**70), "brand_id"),
        (Product("wide", brand.brand_id or 0, price=Decimal("1e20")), "price"),
    ]:
        with pytest.raises(DataError, match=match):
            await products.add_many([*many, bad])
    assert await products.count() == 0


async def test_add_many_returning_gives_keys_in_order(db: AnyDatabase) -> None:
    """returning=True gives back the stored entities, keys filled, in input order."""
    brands = db.repository(BrandRepository)
    await brands.add(Brand("first"))
    stored = await brands.add_many([Brand(f"n{i}") for i in range(5)], returning=True)
    assert stored == [Brand(f"n{i}", i + 2) for i in range(5)]


async def test_upsert_inserts_then_updates(db: AnyDatabase) -> None:
    """upsert on the key inserts a new row, then updates it in place."""
    brand = await db.repository(BrandRepository).add(Brand("acme"))
    products = db.repository(ProductRepository)
    inserted = await products.upsert(Product("anvil", brand.brand_id or 0, 77))
    assert inserted.product_id == 77
    updated = await products.upsert(Product("heavy anvil", brand.brand_id or 0, 77))
    assert updated.product_name == "heavy anvil"
    assert await products.count() == 1


async def test_upsert_on_a_unique_constraint(db: AnyDatabase) -> None:
    """upsert on a declared unique set; with nothing to update it returns the existing row."""
    brands = db.repository(BrandRepository)
    first = await brands.upsert(Brand("acme"), on="brand_name")
    again = await brands.upsert(Brand("acme"), on=("brand_name",))
    assert first == again
    assert await brands.count() == 1


async def test_upsert_refuses_a_target_without_a_unique_constraint(db: AnyDatabase) -> None:
    """on= must be the key or a declared unique set; update= must name inserted fields."""
    products = db.repository(ProductRepository)
    with pytest.raises(InvalidQuery, match="unique"):
        await products.upsert(Product("x", 1, 1), on="product_name")
    with pytest.raises(InvalidQuery, match="no field"):
        await products.upsert(Product("x", 1, 1), on="colour")
    with pytest.raises(InvalidQuery, match="no field"):
        await products.upsert(Product("x", 1, 1), update=["colour"])


async def test_upsert_many_counts_inserts_and_updates(db: AnyDatabase) -> None:
    """upsert_many reports how many rows it inserted and updated."""
    brand = await db.repository(BrandRepository).add(Brand("acme"))
    products = db.repository(ProductRepository)
    b = brand.brand_id or 0
    first = await products.upsert_many(Product(f"p{i}", b, i) for i in range(1, 11))
    assert first == UpsertResult(inserted=10, updated=0)
    second = await products.upsert_many(Product(f"q{i}", b, i) for i in range(6, 16))
    assert second == UpsertResult(inserted=5, updated=5)
    assert second.total == 10
    names = {p.product_id: p.product_name for p in await products.find()}
    assert names == {**{i: f"p{i}" for i in range(1, 6)}, **{i: f"q{i}" for i in range(6, 16)}}
    stored = await products.upsert_many(
        [Product("r1", b, 1), Product("r99", b, 99)], returning=True
    )
    assert [(p.product_id, p.product_name) for p in stored] == [(1, "r1"), (99, "r99")]


async def test_upsert_many_on_a_composite_unique_key(db: AnyDatabase) -> None:
    """Skus upserted on (product, size, colour): new ones inserted, existing ones that
    already hold the values given left unchanged."""
    async with CatalogUnitOfWork(db) as uow:
        counts = await load_catalog(uow, brands=1, products=2, skus=8)
    skus = db.repository(SkuRepository)
    existing = await skus.find(order_by="sku_id")
    fresh = [Sku(1, 1, c) for c in range(1, counts.colors + 1)] + [existing[0]]
    with pytest.raises(InvalidQuery, match="sku_id"):
        await skus.upsert_many(fresh, on=("product_id", "product_size_id", "product_color_id"))
    result = await skus.upsert_many(
        [Sku(1, s, c) for s in range(1, counts.sizes + 1) for c in range(1, counts.colors + 1)],
        on=("product_id", "product_size_id", "product_color_id"),
    )
    assert result.total == counts.sizes * counts.colors
    assert (result.updated, result.unchanged) == (0, 4)


async def test_upsert_many_with_a_repeated_target_is_refused(db: AnyDatabase) -> None:
    """Two entities with the same conflict target in one call fail clearly, storing nothing."""
    brands = db.repository(BrandRepository)
    with pytest.raises(DataError, match="second time"):
        await brands.upsert_many([Brand("a"), Brand("a")], on="brand_name")
    assert await brands.count() == 0


async def test_delete_where_and_update_where(db: AnyDatabase) -> None:
    """Set-based writes return their row counts and use the same filters as find()."""
    brands = db.repository(BrandRepository)
    await brands.add_many(Brand(f"b{i}") for i in range(10))
    assert await brands.update_where({"brand_name": "renamed"}, brand_id=9) == 1
    assert await brands.delete_where(brand_id=lt(4)) == 3
    assert await brands.delete_where(brand_id=in_([])) == 0
    assert await brands.count() == 7
    assert (await brands.get(9)).brand_name == "renamed"
    with pytest.raises(UniqueViolation):
        await brands.update_where({"brand_name": "same"}, brand_id=gt(5))


async def test_set_based_writes_refuse_bad_input(db: AnyDatabase) -> None:
    """No filters, unknown fields, or the key in set= are refused before any SQL."""
    brands = db.repository(BrandRepository)
    with pytest.raises(InvalidQuery, match="at least one filter"):
        await brands.delete_where()
    with pytest.raises(InvalidQuery, match="at least one filter"):
        await brands.update_where({"brand_name": "x"})
    with pytest.raises(InvalidQuery, match="no field"):
        await brands.delete_where(colour="red")
    with pytest.raises(InvalidQuery, match="no field"):
        await brands.update_where({"colour": "red"}, brand_id=1)
    with pytest.raises(InvalidQuery, match="key"):
        await brands.update_where({"brand_id": 5}, brand_id=1)
    with pytest.raises(InvalidQuery, match="mapping"):
        await brands.update_where({}, brand_id=1)


async def test_upserts_leave_unchanged_rows_and_their_version_alone(db: AnyDatabase) -> None:
    """Re-upserting skus as stored counts them unchanged and bumps no version; a changed
    one is updated and bumped (once); returning gives back every sku, in the order given."""
    async with CatalogUnitOfWork(db) as uow:
        await load_catalog(uow, brands=1, products=1, skus=3)
    skus = db.repository(SkuRepository)
    stored = await skus.find(order_by="sku_id")
    assert await skus.upsert_many(stored) == UpsertResult(inserted=0, updated=0, unchanged=3)
    assert await skus.upsert(stored[0]) == stored[0]
    assert await skus.find(order_by="sku_id") == stored
    changed = [stored[2], attrs.evolve(stored[1], stock=9), stored[0]]
    returned = await skus.upsert_many(changed, returning=True)
    bumped = attrs.evolve(stored[1], stock=9, version=stored[1].version + 1)
    assert returned == [stored[2], bumped, stored[0]]
    assert await skus.upsert_many(changed) == UpsertResult(inserted=0, updated=0, unchanged=3)


async def test_an_unchanged_row_given_twice_is_no_conflict(db: AnyDatabase) -> None:
    """An existing row given twice unchanged is left alone twice; a row given twice that
    this statement inserts or changes is refused, as the server does."""
    brands = db.repository(BrandRepository)
    acme = await brands.add(Brand("acme", 1))
    assert await brands.upsert_many([acme, acme]) == UpsertResult(0, 0, 2)
    with pytest.raises(DataError, match="second time"):
        await brands.upsert_many([Brand("renamed", 1), Brand("renamed", 1)])
    with pytest.raises(DataError, match="second time"):
        await brands.upsert_many([Brand("new", 2), Brand("new", 2)])
    assert await brands.find() == [acme]
