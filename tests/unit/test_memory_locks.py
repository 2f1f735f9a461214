"""MemoryDatabase's row locks where it differs from PostgreSQL, or where only it can be seen.

The behaviour shared with PostgreSQL is pinned on both backends in
tests/contract/test_locks.py.
"""

from __future__ import annotations

import asyncio

import pytest

from repo import DeadlockDetected, LockNotAvailable, SerializationFailure
from repo.catalog import Brand, BrandRepository, CatalogUnitOfWork
from repo.testing import MemoryDatabase


async def _brands(db: MemoryDatabase, *names: str) -> list[int]:
    added = await db.repository(BrandRepository).add_many([Brand(n) for n in names], returning=True)
    return [b.brand_id for b in added if b.brand_id is not None]


async def test_a_write_of_a_row_another_open_unit_locked_fails_at_once() -> None:
    """PostgreSQL would make the write wait for the lock; the fake raises
    SerializationFailure (as for a row another unit wrote), never hangs."""
    db = MemoryDatabase()
    [acme] = await _brands(db, "acme")
    async with CatalogUnitOfWork(db) as holder:
        await holder.brands.get(acme, for_share=True)
        with pytest.raises(SerializationFailure, match="locked"):
            await db.repository(BrandRepository).update(Brand("other", acme))
        with pytest.raises(SerializationFailure, match="locked"):
            await db.repository(BrandRepository).delete(acme)
        # The holder itself may write the row it locked.
        await holder.brands.update(Brand("mine", acme))
    assert await db.repository(BrandRepository).get(acme) == Brand("mine", acme)


async def test_a_cycle_of_waits_is_a_deadlock_at_once() -> None:
    """The unit whose wait closes a cycle gets DeadlockDetected without waiting
    (PostgreSQL waits deadlock_timeout first); the other one then goes on."""
    db = MemoryDatabase()
    a, b = await _brands(db, "a", "b")
    first = await CatalogUnitOfWork(db).__aenter__()
    second = await CatalogUnitOfWork(db).__aenter__()
    await first.brands.get(a, for_update=True)
    await second.brands.get(b, for_update=True)
    waiting = asyncio.create_task(first.brands.get(b, for_update=True))
    await asyncio.sleep(0)
    assert not waiting.done()
    with pytest.raises(DeadlockDetected):
        await second.brands.get(a, for_update=True)
    await second.rollback()
    await second.__aexit__(None, None, None)
    assert await asyncio.wait_for(waiting, 5) == Brand("b", b)
    await first.__aexit__(None, None, None)


async def test_a_lock_upgrade_from_share_to_update_waits_for_other_sharers() -> None:
    """A unit holding FOR SHARE that asks FOR UPDATE waits for the other sharers,
    and fails with nowait; alone it upgrades at once."""
    db = MemoryDatabase()
    [acme] = await _brands(db, "acme")
    async with CatalogUnitOfWork(db) as first, CatalogUnitOfWork(db) as second:
        await first.brands.get(acme, for_share=True)
        await second.brands.get(acme, for_share=True)
        with pytest.raises(LockNotAvailable):
            async with first.savepoint():
                await first.brands.get(acme, for_update=True, nowait=True)
        await second.rollback()
        assert await first.brands.get(acme, for_update=True, nowait=True) == Brand("acme", acme)


async def test_the_holders_end_wakes_every_waiter() -> None:
    """Several units waiting on one row all go on once its holder commits, in turn."""
    db = MemoryDatabase()
    [acme] = await _brands(db, "acme")
    order: list[int] = []

    async def wait_for_it(n: int) -> None:
        async with CatalogUnitOfWork(db) as uow:
            await uow.brands.get(acme, for_update=True)
            order.append(n)

    async with CatalogUnitOfWork(db) as holder:
        await holder.brands.get(acme, for_update=True)
        waiters = [asyncio.create_task(wait_for_it(n)) for n in range(3)]
        await asyncio.sleep(0)
        assert order == []
    await asyncio.wait_for(asyncio.gather(*waiters), 5)
    assert sorted(order) == [0, 1, 2]
