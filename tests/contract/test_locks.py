"""Row locks, on both backends: ``FOR UPDATE`` / ``FOR SHARE`` held by a unit of work.

Two (or more) units run as asyncio tasks on one database; events order
their steps, and a wait is observed with a bounded timeout. The tests' own
schema: items to be claimed, keyed by an identity.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import attrs
import pytest

from repo import (
    DeadlockDetected,
    InvalidQuery,
    InvalidState,
    LockNotAvailable,
    NotFound,
    QueryCanceled,
    Repository,
    SerializationFailure,
    Table,
    UnitOfWork,
)

from .conftest import AnyDatabase
from .own_schema import own_schema, truncate

# How long a task that should be waiting is watched; how long anything may take.
STILL_WAITING = 0.3
BOUND = 10.0


@attrs.frozen
class Item:
    label: str
    status: str = "free"
    item_id: int | None = None


ITEMS = Table("lock_item", Item, key="item_id")


class Items(Repository[Item]):
    table = ITEMS


class Work(UnitOfWork):
    items: Items


@pytest.fixture(scope="module")
def locks_dsn(migrated_dsn: str) -> Iterator[str]:
    with own_schema(migrated_dsn, [ITEMS]) as dsn:
        yield dsn


@pytest.fixture
def schema(backend_dsn: str | None, request: pytest.FixtureRequest) -> str | None:
    """The database holding the tests' table on PostgreSQL (made once); None in memory."""
    return None if backend_dsn is None else str(request.getfixturevalue("locks_dsn"))


@pytest.fixture
async def items(db: AnyDatabase, schema: str | None) -> AnyDatabase:
    """`db` with five free items, ids 1 to 5."""
    await truncate(schema, [ITEMS])
    async with Work(db) as uow:
        await uow.items.add_many([Item(f"item {n}") for n in range(1, 6)])
    return db


async def _still_waiting(task: asyncio.Task[object]) -> bool:
    """Whether `task` is still blocked after a short while."""
    done, _ = await asyncio.wait({task}, timeout=STILL_WAITING)
    return not done


async def test_for_update_makes_a_second_unit_wait_until_the_first_commits(
    items: AnyDatabase,
) -> None:
    """get(for_update=True) blocks another unit's lock of the row until the first unit
    commits; the second then reads the row as the first left it."""
    locked = asyncio.Event()
    release = asyncio.Event()

    async def first() -> None:
        async with Work(items) as uow:
            item = await uow.items.get(1, for_update=True)
            locked.set()
            await release.wait()
            await uow.items.update(attrs.evolve(item, status="taken by first"))

    async def second() -> Item:
        await locked.wait()
        async with Work(items) as uow:
            return await uow.items.get(1, for_update=True)

    one = asyncio.create_task(first())
    two = asyncio.create_task(second())
    await locked.wait()
    assert await _still_waiting(two)
    release.set()
    await asyncio.wait_for(one, BOUND)
    got = await asyncio.wait_for(two, BOUND)
    assert got.status == "taken by first"


async def test_skip_locked_workers_each_claim_a_different_row(items: AnyDatabase) -> None:
    """N concurrent workers, each claiming any free item with find_one(for_update=True,
    skip_locked=True) while the others hold theirs, claim N distinct items."""
    workers = 3
    all_claimed = asyncio.Barrier(workers)

    async def worker(name: str) -> int:
        async with Work(items) as uow:
            item = await uow.items.find_one(status="free", for_update=True, skip_locked=True)
            assert item is not None
            await asyncio.wait_for(all_claimed.wait(), BOUND)
            await uow.items.update(attrs.evolve(item, status=name))
            assert item.item_id is not None
            return item.item_id

    claimed = await asyncio.wait_for(
        asyncio.gather(*(worker(f"w{n}") for n in range(workers))), BOUND
    )
    assert len(set(claimed)) == workers
    left = await items.repository(Items).count(status="free")
    assert left == 5 - workers


async def test_find_with_skip_locked_returns_the_free_rows_in_order(items: AnyDatabase) -> None:
    """find(for_update=True, skip_locked=True, limit=2) passes over rows another unit
    holds and returns the next free ones, in the order asked."""
    async with Work(items) as holder:
        await holder.items.find(item_id=1, for_update=True)
        await holder.items.get(3, for_update=True)
        async with Work(items) as other:
            got = await other.items.find(
                order_by="item_id", limit=2, for_update=True, skip_locked=True
            )
            assert [i.item_id for i in got] == [2, 4]
            everything = await other.items.find(order_by="item_id")
            assert len(everything) == 5


async def test_nowait_raises_lock_not_available_at_once(items: AnyDatabase) -> None:
    """A row another unit holds: nowait=True raises LockNotAvailable without waiting,
    and aborts the statement like any server error (a savepoint keeps the unit usable)."""
    async with Work(items) as holder:
        await holder.items.get(2, for_update=True)
        async with Work(items) as other:
            with pytest.raises(LockNotAvailable) as got:
                async with other.savepoint():
                    await asyncio.wait_for(other.items.get(2, for_update=True, nowait=True), BOUND)
            assert got.value.sqlstate == "55P03"
            with pytest.raises(LockNotAvailable):
                async with other.savepoint():
                    await other.items.find(item_id=2, for_share=True, nowait=True)
            # A free row is still taken, in the same unit.
            free = await other.items.find_one(item_id=3, for_update=True, nowait=True)
            assert free == Item("item 3", item_id=3)


async def test_for_share_locks_are_compatible_with_each_other_not_with_for_update(
    items: AnyDatabase,
) -> None:
    """Two units hold FOR SHARE on the same rows at once; FOR UPDATE of them is refused
    with nowait, and a write-lock of another row is not."""
    async with Work(items) as first, Work(items) as second:
        a = await asyncio.wait_for(first.items.find(item_id=1, for_share=True), BOUND)
        b = await asyncio.wait_for(second.items.find(item_id=1, for_share=True), BOUND)
        assert a == b == [Item("item 1", item_id=1)]
        async with Work(items) as third:
            with pytest.raises(LockNotAvailable):
                async with third.savepoint():
                    await third.items.get(1, for_update=True, nowait=True)
            assert await third.items.get(2, for_update=True, nowait=True) == Item(
                "item 2", item_id=2
            )


async def test_a_lock_wait_ends_at_the_units_lock_timeout(items: AnyDatabase) -> None:
    """A unit with lock_timeout waits that long for a row another unit holds, then
    LockNotAvailable."""
    async with Work(items) as holder:
        await holder.items.get(4, for_update=True)
        loop = asyncio.get_running_loop()
        async with Work(items, lock_timeout=0.2) as waiter:
            started = loop.time()
            with pytest.raises(LockNotAvailable):
                await asyncio.wait_for(waiter.items.get(4, for_update=True), BOUND)
            assert loop.time() - started >= 0.15
            await waiter.rollback()


async def test_a_lock_outside_a_unit_of_work_is_refused_before_any_sql(
    items: AnyDatabase,
) -> None:
    """At pool level every call is its own transaction, so a lock would end with its
    statement: InvalidState, for every method and flag."""
    repo = items.repository(Items)
    with pytest.raises(InvalidState, match="outside a unit of work"):
        await repo.get(1, for_update=True)
    with pytest.raises(InvalidState, match="outside a unit of work"):
        await repo.find(for_update=True, skip_locked=True)
    with pytest.raises(InvalidState, match="outside a unit of work"):
        await repo.find_one(item_id=1, for_share=True)
    with pytest.raises(InvalidState, match="outside a unit of work"):
        repo.stream(for_update=True)
    assert await repo.get(1) == Item("item 1", item_id=1)


async def test_lock_flags_that_do_not_combine_are_refused(items: AnyDatabase) -> None:
    """skip_locked with nowait, for_update with for_share, and skip_locked or nowait
    alone are InvalidQuery, in a unit as at pool level."""
    async with Work(items) as uow:
        with pytest.raises(InvalidQuery, match="not both"):
            await uow.items.find(for_update=True, skip_locked=True, nowait=True)
        with pytest.raises(InvalidQuery, match="not both"):
            await uow.items.get(1, for_update=True, for_share=True)
        with pytest.raises(InvalidQuery, match="needs for_update=True or for_share=True"):
            await uow.items.find_one(item_id=1, skip_locked=True)
        with pytest.raises(InvalidQuery, match="True or False"):
            await uow.items.find(for_update=1)  # type: ignore[arg-type]
        assert await uow.items.count() == 5
    with pytest.raises(InvalidQuery, match="not both"):
        await items.repository(Items).find(for_share=True, skip_locked=True, nowait=True)


async def test_stream_with_for_update_locks_every_row_it_reads(items: AnyDatabase) -> None:
    """stream(for_update=True) in a unit of work reads the rows locked: another unit
    cannot take them (nowait), until the first unit ends."""
    async with Work(items) as holder:
        seen = [
            item.item_id
            async for item in holder.items.stream(
                order_by="item_id", for_update=True, status="free"
            )
        ]
        assert seen == [1, 2, 3, 4, 5]
        async with Work(items) as other:
            with pytest.raises(LockNotAvailable):
                await other.items.get(5, for_update=True, nowait=True)
            await other.rollback()
    async with Work(items) as after:
        assert (await after.items.get(5, for_update=True, nowait=True)).item_id == 5


async def test_a_savepoint_rolled_back_releases_only_the_locks_taken_inside_it(
    items: AnyDatabase,
) -> None:
    """As PostgreSQL: locks taken before a savepoint stay, those taken in a savepoint
    rolled back to are released."""
    async with Work(items) as holder:
        await holder.items.get(1, for_update=True)
        with pytest.raises(RuntimeError):
            async with holder.savepoint():
                await holder.items.get(2, for_update=True)
                raise RuntimeError
        async with Work(items) as other:
            assert (await other.items.get(2, for_update=True, nowait=True)).item_id == 2
            with pytest.raises(LockNotAvailable):
                await other.items.get(1, for_update=True, nowait=True)
            await other.rollback()


async def test_locking_a_row_changed_after_the_snapshot_is_a_serialization_failure(
    items: AnyDatabase,
) -> None:
    """Under repeatable_read, locking a row that another unit changed (and committed)
    since the snapshot raises SerializationFailure."""
    async with Work(items, isolation="repeatable_read") as reader:
        assert await reader.items.count() == 5
        await items.repository(Items).update(Item("renamed", item_id=3))
        with pytest.raises(SerializationFailure):
            await reader.items.get(3, for_update=True)
        await reader.rollback()


async def test_two_units_waiting_on_each_others_rows_are_a_deadlock(items: AnyDatabase) -> None:
    """Each of two units holds a row and waits for the other's: one of them gets
    DeadlockDetected (retryable), and the other then goes on."""
    both_hold = asyncio.Barrier(2)

    async def unit(mine: int, theirs: int) -> str:
        try:
            async with Work(items) as uow:
                await uow.items.get(mine, for_update=True)
                await asyncio.wait_for(both_hold.wait(), BOUND)
                await uow.items.get(theirs, for_update=True)
        except DeadlockDetected:
            return "deadlock"
        return "done"

    outcomes = await asyncio.wait_for(asyncio.gather(unit(1, 2), unit(2, 1)), BOUND)
    assert sorted(outcomes) == ["deadlock", "done"]


async def test_a_row_that_stops_matching_while_waited_for_is_passed_over(
    items: AnyDatabase,
) -> None:
    """A unit waiting on a row reads it again once the holder commits: a row the holder
    changed so that it no longer matches is not returned, the next one is."""
    locked = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with Work(items) as uow:
            item = await uow.items.get(1, for_update=True)
            locked.set()
            await release.wait()
            await uow.items.update(attrs.evolve(item, status="taken"))

    async def claimer() -> list[Item]:
        await locked.wait()
        async with Work(items) as uow:
            return await uow.items.find(status="free", order_by="item_id", limit=1, for_update=True)

    first = asyncio.create_task(holder())
    second = asyncio.create_task(claimer())
    await locked.wait()
    assert await _still_waiting(second)
    release.set()
    await asyncio.wait_for(first, BOUND)
    got = await asyncio.wait_for(second, BOUND)
    assert [i.item_id for i in got] == [2]


async def test_a_row_another_unit_wrote_is_locked_by_that_write(items: AnyDatabase) -> None:
    """A row updated by a unit still open counts as locked FOR UPDATE: nowait refuses
    it, skip_locked passes it over."""
    async with Work(items) as writer:
        await writer.items.update(Item("renamed", item_id=1))
        async with Work(items) as other:
            with pytest.raises(LockNotAvailable):
                async with other.savepoint():
                    await other.items.get(1, for_share=True, nowait=True)
            got = await other.items.find_one(for_update=True, skip_locked=True, item_id=1)
            assert got is None


async def test_a_lock_wait_ends_at_the_units_statement_timeout(items: AnyDatabase) -> None:
    """Without lock_timeout, statement_timeout bounds a wait for a row lock:
    QueryCanceled."""
    async with Work(items) as holder:
        await holder.items.get(2, for_update=True)
        async with Work(items, statement_timeout=0.2) as waiter:
            with pytest.raises(QueryCanceled):
                await asyncio.wait_for(waiter.items.find(item_id=2, for_share=True), BOUND)
            await waiter.rollback()


async def test_get_with_a_lock_of_a_missing_key_is_not_found(items: AnyDatabase) -> None:
    """get(for_update=True) of a key no row has raises NotFound, as without a lock."""
    async with Work(items) as uow:
        with pytest.raises(NotFound):
            await uow.items.get(99, for_update=True)
        assert await uow.items.get(5, for_share=True, nowait=True) == Item("item 5", item_id=5)


async def test_the_locks_end_with_the_unit_whether_it_commits_or_rolls_back(
    items: AnyDatabase,
) -> None:
    """After a unit commits, and after one rolls back, its rows are free for others."""
    async with Work(items) as uow:
        await uow.items.find(for_update=True)
    with pytest.raises(RuntimeError):
        async with Work(items) as uow:
            await uow.items.find(for_share=True)
            raise RuntimeError
    async with Work(items) as after:
        assert len(await after.items.find(for_update=True, nowait=True)) == 5
