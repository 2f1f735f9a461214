"""Aggregates on `RollbackDatabase`: read and written in the test's transaction, undone after."""

from __future__ import annotations

import attrs

from repo.catalog import CatalogUnitOfWork, ProductDetails, add_product, create_brand
from repo.testing import RollbackDatabase


async def test_aggregates_read_and_write_in_the_test_transaction(
    rollback_db: RollbackDatabase,
) -> None:
    """A unit of work and a pool-level repository both see the aggregate, and update it."""
    async with CatalogUnitOfWork(rollback_db) as uow:
        brand = await create_brand(uow, "rolled back")
        product, skus = await add_product(
            uow, brand.brand_id or 0, "anvil", [("s", "red"), ("m", "red")]
        )
        detail = await uow.details.get(product.product_id)
    assert (detail.brand, detail.skus) == (brand, skus)
    details = rollback_db.repository(ProductDetails)
    updated = await details.update(attrs.evolve(detail, skus=skus[:1]))
    assert updated.skus == skus[:1]
    await details.delete(product.product_id)
    assert await details.count(product_id=product.product_id) == 0
