"""Units of work and savepoints: the same behaviour in memory and on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from repo import (
    Backoff,
    InvalidQuery,
    InvalidState,
    NotFound,
    ReadOnlyViolation,
    SerializationFailure,
    TransactionAborted,
    UniqueViolation,
    UnitState,
    run_in_unit,
)
from repo.catalog import Brand, BrandRepository, CatalogUnitOfWork, Product

from .conftest import AnyDatabase

pytestmark = pytest.mark.smoke


async def names(db: AnyDatabase) -> list[str]:
    """The brand names committed, as any other session sees them."""
    return [b.brand_name for b in await db.repository(BrandRepository).find(order_by="brand_id")]


async def test_clean_exit_commits_visible_to_others(db: AnyDatabase) -> None:
    """Work is invisible to others until the unit exits cleanly, then it is committed."""
    async with CatalogUnitOfWork(db) as uow:
        await uow.brands.add(Brand("acme"))
        assert await names(db) == []
        assert [b.brand_name for b in await uow.brands.find()] == ["acme"]
    assert uow.state is UnitState.COMMITTED
    assert await names(db) == ["acme"]


async def test_exception_rolls_back_and_propagates(db: AnyDatabase) -> None:
    """An exception escaping the block rolls everything back and is re-raised."""
    with pytest.raises(ZeroDivisionError):
        async with CatalogUnitOfWork(db) as uow:
            await uow.brands.add(Brand("acme"))
            _ = 1 / 0
    assert uow.state is UnitState.ROLLED_BACK
    assert await names(db) == []


async def test_explicit_rollback_discards_and_ends(db: AnyDatabase) -> None:
    """rollback() discards the work and ends the unit; later use raises InvalidState."""
    async with CatalogUnitOfWork(db) as uow:
        await uow.brands.add(Brand("acme"))
        await uow.rollback()
        with pytest.raises(InvalidState):
            await uow.brands.add(Brand("after"))
    assert await names(db) == []


async def test_commit_twice_and_use_after_exit_raise_invalid_state(db: AnyDatabase) -> None:
    """A second commit, or any use after the unit ended, raises InvalidState."""
    async with CatalogUnitOfWork(db) as uow:
        await uow.brands.add(Brand("acme"))
        await uow.commit()
        with pytest.raises(InvalidState, match="committed"):
            await uow.commit()
    with pytest.raises(InvalidState):
        await uow.brands.get(1)
    with pytest.raises(InvalidState):
        await uow.rollback()
    with pytest.raises(InvalidState):
        async with uow:
            pass


async def test_unit_not_entered_cannot_be_used(db: AnyDatabase) -> None:
    """Repositories of a unit that has not begun raise InvalidState."""
    uow = CatalogUnitOfWork(db)
    with pytest.raises(InvalidState):
        await uow.brands.get(1)
    with pytest.raises(InvalidState):
        await uow.commit()


async def test_unknown_isolation_is_refused(db: AnyDatabase) -> None:
    """An isolation level that does not exist raises InvalidQuery on entry."""
    with pytest.raises(InvalidQuery, match="isolation"):
        async with CatalogUnitOfWork(db, isolation="chaotic"):
            pass


async def test_savepoint_undoes_only_its_part(db: AnyDatabase) -> None:
    """A failing savepoint rolls back to itself; the outer work still commits."""
    async with CatalogUnitOfWork(db) as uow:
        await uow.brands.add(Brand("acme"))
        with pytest.raises(UniqueViolation):
            async with uow.savepoint():
                await uow.brands.add(Brand("inner"))
                await uow.brands.add(Brand("acme"))
        await uow.brands.add(Brand("after"))
    assert await names(db) == ["acme", "after"]


async def test_three_deep_savepoints_with_the_middle_rolled_back(db: AnyDatabase) -> None:
    """Outer, middle and inner savepoints: rolling back the middle undoes it and the inner."""
    async with CatalogUnitOfWork(db) as uow, uow.savepoint():
        await uow.brands.add(Brand("level1"))
        with pytest.raises(RuntimeError):
            async with uow.savepoint():
                await uow.brands.add(Brand("level2"))
                async with uow.savepoint():
                    await uow.brands.add(Brand("level3"))
                raise RuntimeError("undo the middle")
        await uow.brands.add(Brand("level1-after"))
    assert await names(db) == ["level1", "level1-after"]


async def test_savepoint_release_keeps_work(db: AnyDatabase) -> None:
    """Savepoints that exit cleanly keep their work, at any depth."""
    async with CatalogUnitOfWork(db) as uow, uow.savepoint(), uow.savepoint(), uow.savepoint():
        await uow.brands.add(Brand("deep"))
    assert await names(db) == ["deep"]


async def test_savepoint_undoes_updates_and_deletes(db: AnyDatabase) -> None:
    """Rolling back to a savepoint restores rows it updated and deleted."""
    brands = db.repository(BrandRepository)
    a = await brands.add(Brand("a"))
    b = await brands.add(Brand("b"))
    async with CatalogUnitOfWork(db) as uow:
        with pytest.raises(RuntimeError):
            async with uow.savepoint():
                await uow.brands.update(Brand("a2", a.brand_id))
                await uow.brands.delete(b.brand_id)
                raise RuntimeError("undo")
        assert [a, b] == await uow.brands.find(order_by="brand_id")
    assert await names(db) == ["a", "b"]


async def test_error_without_savepoint_aborts_the_unit(db: AnyDatabase) -> None:
    """After a server error outside a savepoint the transaction is aborted; nothing commits."""
    with pytest.raises(UniqueViolation):
        async with CatalogUnitOfWork(db) as uow:
            await uow.brands.add(Brand("acme"))
            await uow.brands.add(Brand("acme"))
    assert await names(db) == []


async def test_statements_after_a_failure_raise_transaction_aborted(db: AnyDatabase) -> None:
    """A caught failure outside a savepoint leaves the unit aborted: later statements fail."""
    async with CatalogUnitOfWork(db) as uow:
        await uow.brands.add(Brand("acme"))
        with pytest.raises(UniqueViolation):
            await uow.brands.add(Brand("acme"))
        with pytest.raises(TransactionAborted) as got:
            await uow.brands.count()
        assert got.value.sqlstate == "25P02"
        await uow.rollback()
    assert await names(db) == []


async def test_rollback_to_a_savepoint_ends_the_aborted_state(db: AnyDatabase) -> None:
    """A failure caught inside a savepoint: the savepoint is undone and the unit goes on."""
    async with CatalogUnitOfWork(db) as uow:
        await uow.brands.add(Brand("acme"))
        with pytest.raises(TransactionAborted):
            async with uow.savepoint():
                with pytest.raises(UniqueViolation):
                    await uow.brands.add(Brand("acme"))
                await uow.brands.add(Brand("lost"))
        await uow.brands.add(Brand("kept"))
    assert await names(db) == ["acme", "kept"]


async def test_gather_on_one_unit_is_serialized(db: AnyDatabase) -> None:
    """Concurrent calls on one unit of work take turns: right results, no error."""
    async with CatalogUnitOfWork(db) as uow:
        brand = await uow.brands.add(Brand("acme"))
        product = await uow.products.add(Product("anvil", brand.brand_id or 0))
        results = await asyncio.gather(
            *(uow.brands.get(brand.brand_id) for _ in range(20)),
            *(uow.products.get(product.product_id) for _ in range(20)),
            *(uow.brands.add(Brand(f"b{i}")) for i in range(20)),
        )
    assert results[:20] == [brand] * 20
    assert results[20:40] == [product] * 20
    assert {getattr(r, "brand_name", None) for r in results[40:]} == {f"b{i}" for i in range(20)}


async def test_not_found_inside_a_unit_keeps_it_usable(db: AnyDatabase) -> None:
    """NotFound is a client-side outcome: the transaction is not aborted by it."""
    async with CatalogUnitOfWork(db) as uow:
        with pytest.raises(NotFound):
            await uow.brands.get(1)
        await uow.brands.add(Brand("still fine"))
    assert await db.repository(BrandRepository).count() == 1


async def test_readonly_unit_refuses_writes(db: AnyDatabase) -> None:
    """A write in a read-only unit raises ReadOnlyViolation (SQLSTATE 25006)."""
    await db.repository(BrandRepository).add(Brand("acme"))
    with pytest.raises(ReadOnlyViolation):
        async with CatalogUnitOfWork(db, readonly=True) as uow:
            assert await uow.brands.count() == 1
            await uow.brands.add(Brand("nope"))
    assert await names(db) == ["acme"]


async def test_an_open_unit_sees_what_others_committed(db: AnyDatabase) -> None:
    """READ COMMITTED: each statement sees what was committed before it; never others' drafts."""
    brands = db.repository(BrandRepository)
    async with CatalogUnitOfWork(db) as first, CatalogUnitOfWork(db) as second:
        await first.brands.add(Brand("from first"))
        assert await second.brands.find() == []
        await brands.add(Brand("committed"))
        assert [b.brand_name for b in await second.brands.find()] == ["committed"]
        await first.commit()
        assert sorted(b.brand_name for b in await second.brands.find()) == [
            "committed",
            "from first",
        ]


async def test_a_rolled_back_insert_still_uses_its_key(db: AnyDatabase) -> None:
    """Keys come from a sequence, which a rollback does not give back."""
    async with CatalogUnitOfWork(db) as uow:
        assert (await uow.brands.add(Brand("lost"))).brand_id == 1
        await uow.rollback()
    assert (await db.repository(BrandRepository).add(Brand("next"))).brand_id == 2


async def test_repeatable_read_reads_one_snapshot(db: AnyDatabase) -> None:
    """REPEATABLE READ: a unit reads as of its first statement, and cannot update a row
    changed since (SerializationFailure: retry the unit)."""
    brands = db.repository(BrandRepository)
    acme = await brands.add(Brand("acme"))
    async with CatalogUnitOfWork(db, isolation="repeatable_read") as uow:
        assert await uow.brands.count() == 1
        await brands.add(Brand("later"))
        await brands.update(Brand("acme 2", acme.brand_id))
        assert [acme] == await uow.brands.find()
        with pytest.raises(SerializationFailure):
            await uow.brands.update(Brand("acme 3", acme.brand_id))
        await uow.rollback()
    assert await names(db) == ["acme 2", "later"]


async def test_commit_of_an_aborted_unit_raises_transaction_aborted(db: AnyDatabase) -> None:
    """A failure caught without a savepoint: the exit raises TransactionAborted, chained to
    it and naming it, the unit is ROLLED_BACK, and nothing of it is stored."""
    with pytest.raises(TransactionAborted) as got:
        async with CatalogUnitOfWork(db) as uow:
            await uow.brands.add(Brand("kept"))
            with contextlib.suppress(UniqueViolation):
                await uow.brands.add(Brand("kept"))
            with pytest.raises(TransactionAborted):
                await uow.brands.add(Brand("after"))
    assert uow.state is UnitState.ROLLED_BACK
    assert isinstance(got.value.__cause__, UniqueViolation)
    message = str(got.value)
    assert "nothing of it was stored" in message
    assert "UniqueViolation" in message
    assert "uq_brand_brand_name" in message
    assert "async with uow.savepoint():" in message
    assert await names(db) == []


async def test_explicit_commit_of_an_aborted_unit_raises_transaction_aborted(
    db: AnyDatabase,
) -> None:
    """uow.commit() of an aborted unit raises TransactionAborted; the unit has ended."""
    await db.repository(BrandRepository).add(Brand("acme"))
    async with CatalogUnitOfWork(db) as uow:
        await uow.brands.add(Brand("bolt"))
        with pytest.raises(UniqueViolation) as first:
            await uow.brands.add(Brand("acme"))
        with pytest.raises(TransactionAborted) as got:
            await uow.commit()
        assert got.value.__cause__ is first.value
        assert uow.state is UnitState.ROLLED_BACK
        with pytest.raises(InvalidState, match="rolled back"):
            await uow.brands.count()
    assert await names(db) == ["acme"]


async def test_run_in_unit_raises_transaction_aborted_without_retrying(db: AnyDatabase) -> None:
    """run_in_unit never reports an aborted unit as done: it raises, after one attempt."""
    runs = 0

    async def work(uow: CatalogUnitOfWork) -> str:
        nonlocal runs
        runs += 1
        await uow.brands.add(Brand("twice"))
        with contextlib.suppress(UniqueViolation):
            await uow.brands.add(Brand("twice"))
        return "done"

    with pytest.raises(TransactionAborted) as got:
        await run_in_unit(CatalogUnitOfWork, db, work, backoff=Backoff(0.0001, 0.0001))
    assert runs == 1
    assert isinstance(got.value.__cause__, UniqueViolation)
    assert await names(db) == []


async def test_a_failure_undone_by_its_savepoint_does_not_abort_the_commit(
    db: AnyDatabase,
) -> None:
    """Failures caught by a savepoint, at any depth, leave the unit committable."""
    async with CatalogUnitOfWork(db) as uow:
        await uow.brands.add(Brand("acme"))
        with pytest.raises(UniqueViolation):
            async with uow.savepoint():
                await uow.brands.add(Brand("acme"))
        async with uow.savepoint():
            await uow.brands.add(Brand("bolt"))
            with pytest.raises(TransactionAborted):
                async with uow.savepoint():
                    with pytest.raises(UniqueViolation):
                        await uow.brands.add(Brand("bolt"))
                    await uow.brands.count()
        await uow.brands.add(Brand("crane"))
    assert uow.state is UnitState.COMMITTED
    assert await names(db) == ["acme", "bolt", "crane"]


async def test_a_failure_kept_past_a_released_savepoint_aborts_the_commit(
    db: AnyDatabase,
) -> None:
    """A failure caught inside a savepoint that is not rolled back still aborts the unit:
    its release fails, and the commit names the first failure."""
    with pytest.raises(TransactionAborted) as got:
        async with CatalogUnitOfWork(db) as uow:
            await uow.brands.add(Brand("acme"))
            try:
                async with uow.savepoint():
                    with contextlib.suppress(UniqueViolation):
                        await uow.brands.add(Brand("acme"))
            except TransactionAborted:
                pass
    assert isinstance(got.value.__cause__, UniqueViolation)
    assert uow.state is UnitState.ROLLED_BACK
    assert await names(db) == []


async def test_transaction_aborted_says_how_to_recover(db: AnyDatabase) -> None:
    """A statement refused in an aborted unit says to use a savepoint, on either backend."""
    async with CatalogUnitOfWork(db) as uow:
        with pytest.raises(UniqueViolation):
            await uow.brands.add_many([Brand("dup"), Brand("dup")])
        with pytest.raises(TransactionAborted) as got:
            await uow.brands.find()
        await uow.rollback()
    assert "async with uow.savepoint():" in str(got.value)
    assert got.value.sqlstate == "25P02"
