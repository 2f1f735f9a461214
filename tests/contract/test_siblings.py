"""Sibling repositories: a repository reaches the others of its unit (or pool), both backends."""

from __future__ import annotations

import pytest

from repo import InvalidState, Repository, UnitOfWork
from repo.catalog import Brand, BrandRepository, Product, ProductRepository

from .conftest import AnyDatabase


class LaunchingBrands(Repository[Brand]):
    """A repository method that writes to another table through its sibling."""

    table = BrandRepository.table

    async def launch(self, name: str, first_product: str) -> Product:
        brand = await self.add(Brand(name))
        products = self.repository(ProductRepository)
        return await products.add(Product(first_product, brand.brand_id or 0))


class Launches(UnitOfWork):
    brands: LaunchingBrands
    products: ProductRepository


async def test_a_sibling_works_in_the_same_unit_of_work(db: AnyDatabase) -> None:
    """Rolling the unit back undoes what the sibling wrote too: one transaction."""
    with pytest.raises(RuntimeError, match="changed my mind"):
        async with Launches(db) as uow:
            await uow.brands.launch("acme", "anvil")
            assert await uow.products.count() == 1
            raise RuntimeError("changed my mind")
    async with Launches(db) as uow:
        assert await uow.products.count() == 0
        assert await uow.brands.count() == 0
        product = await uow.brands.launch("acme", "anvil")
    assert await db.repository(ProductRepository).get(product.product_id) == product


async def test_a_sibling_at_pool_level_uses_the_pool(db: AnyDatabase) -> None:
    """From db.repository(), a sibling's calls are autocommit calls on the pool too."""
    product = await db.repository(LaunchingBrands).launch("acme", "anvil")
    assert await db.repository(ProductRepository).get(product.product_id) == product


async def test_a_sibling_must_be_a_repository_class(db: AnyDatabase) -> None:
    """Anything but a Repository subclass is refused, naming what was given."""
    with pytest.raises(InvalidState, match="Repository subclass"):
        db.repository(BrandRepository).repository(Brand)  # type: ignore[type-var]
