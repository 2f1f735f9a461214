"""run_in_unit and optimistic locking on a real PostgreSQL, and the invariant under load."""

from __future__ import annotations

import asyncio
import functools
import random
import time
from typing import Any

import asyncpg
import attrs
import pytest

from repo import (
    Backoff,
    Database,
    DeadlockDetected,
    InvalidQuery,
    OutcomeUnknown,
    RepoError,
    SerializationFailure,
    StaleEntity,
    UniqueViolation,
    run_in_unit,
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
)
from tests.conftest import sessions_in_transaction

FIGURES: dict[str, Any] = {}
NO_WAIT = Backoff(first=0.0001, cap=0.0001)


async def make_skus(db: Database, count: int, stock: int) -> list[int]:
    """`count` skus of one product, each holding `stock` units; their ids."""
    async with CatalogUnitOfWork(db) as uow:
        brand = await uow.brands.add(Brand("acme"))
        assert brand.brand_id is not None
        product = await uow.products.add(Product("anvil", brand.brand_id))
        assert product.product_id is not None
        color = await uow.colors.add(ProductColor("red"))
        assert color.product_color_id is not None
        sizes = await uow.sizes.add_many(
            [ProductSize(f"s{i}") for i in range(count)], returning=True
        )
        skus = await uow.skus.add_many(
            [
                Sku(product.product_id, s.product_size_id or 0, color.product_color_id, stock=stock)
                for s in sizes
            ],
            returning=True,
        )
    return [s.sku_id or 0 for s in skus]


async def test_retries_on_serialization_failure_then_returns(db: Database) -> None:
    """Work failing twice with 40001 and 40P01 runs a third time, commits once, returns."""
    seen: list[int] = []
    retries: list[tuple[int, str]] = []

    async def work(uow: CatalogUnitOfWork) -> str:
        seen.append(uow.attempt)
        await uow.brands.add(Brand(f"attempt {uow.attempt}"))
        if uow.attempt == 1:
            raise SerializationFailure("simulated 40001")
        if uow.attempt == 2:
            raise DeadlockDetected("simulated 40P01")
        return "done"

    result = await run_in_unit(
        CatalogUnitOfWork,
        db,
        work,
        backoff=NO_WAIT,
        on_retry=lambda n, e, d: retries.append((n, type(e).__name__)),
    )
    assert result == "done"
    assert seen == [1, 2, 3]
    assert retries == [(1, "SerializationFailure"), (2, "DeadlockDetected")]
    names = [b.brand_name for b in await db.repository(BrandRepository).find()]
    assert names == ["attempt 3"]


async def test_attempts_run_out_and_the_last_error_is_raised(db: Database) -> None:
    """After `attempts` failures the last error propagates; nothing was committed."""
    calls = 0

    async def work(uow: CatalogUnitOfWork) -> None:
        nonlocal calls
        calls += 1
        await uow.brands.add(Brand(f"try {calls}"))
        raise SerializationFailure(f"conflict {calls}")

    with pytest.raises(SerializationFailure, match="conflict 3"):
        await run_in_unit(CatalogUnitOfWork, db, work, attempts=3, backoff=NO_WAIT)
    assert calls == 3
    assert await db.repository(BrandRepository).count() == 0


async def test_other_errors_are_not_retried(db: Database) -> None:
    """A UniqueViolation (or any non-conflict error) is raised at once, after one attempt."""
    calls = 0

    async def work(uow: CatalogUnitOfWork) -> None:
        nonlocal calls
        calls += 1
        await uow.brands.add(Brand("twice"))
        await uow.brands.add(Brand("twice"))

    with pytest.raises(UniqueViolation):
        await run_in_unit(CatalogUnitOfWork, db, work, backoff=NO_WAIT)
    assert calls == 1


async def test_connection_lost_is_retried_before_commit_only(db: Database) -> None:
    """ConnectionLost in the work is retried; OutcomeUnknown (lost during COMMIT) never."""
    calls = 0

    async def flaky(uow: CatalogUnitOfWork) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            pid = await uow.brands.scalar("SELECT pg_backend_pid()")
            async with db.acquire() as other:
                await other.execute("SELECT pg_terminate_backend($1)", pid)
            await uow.brands.add(Brand("lost"))
        await uow.brands.add(Brand("kept"))
        return uow.attempt

    assert await run_in_unit(CatalogUnitOfWork, db, flaky, backoff=NO_WAIT) == 2
    assert [b.brand_name for b in await db.repository(BrandRepository).find()] == ["kept"]

    class CommitLost(CatalogUnitOfWork):
        async def commit(self) -> None:
            raise OutcomeUnknown("simulated: lost during COMMIT")

    tries = 0

    async def work(uow: CatalogUnitOfWork) -> None:
        nonlocal tries
        tries += 1

    with pytest.raises(OutcomeUnknown, match="during COMMIT"):
        await run_in_unit(CommitLost, db, work, backoff=NO_WAIT)
    assert tries == 1


async def test_bad_attempts_are_refused(db: Database) -> None:
    """attempts must be a positive int."""

    async def work(uow: CatalogUnitOfWork) -> None:
        return None

    with pytest.raises(InvalidQuery, match="attempts"):
        await run_in_unit(CatalogUnitOfWork, db, work, attempts=0)


def test_backoff_is_jittered_exponential_and_capped() -> None:
    """Each delay is within [0, min(cap, first * 2**(n-1))]."""
    backoff = Backoff(first=0.01, cap=0.05)
    for attempt, bound in ((1, 0.01), (2, 0.02), (3, 0.04), (4, 0.05), (10, 0.05)):
        delays = [backoff.delay(attempt) for _ in range(200)]
        assert all(0 <= d <= bound for d in delays)
        assert max(delays) > bound / 2


async def test_update_with_a_stale_version_raises_stale_entity(db: Database) -> None:
    """update() checks and bumps the version: the second writer from one read gets StaleEntity."""
    (sku_id,) = await make_skus(db, 1, 10)
    skus = db.repository(SkuRepository)
    read = await skus.get(sku_id)
    assert read.version == 0
    first = await skus.update(attrs.evolve(read, stock=9))
    assert (first.stock, first.version) == (9, 1)
    with pytest.raises(StaleEntity, match=r"sku sku_id=1 .*version=0.*reload it"):
        await skus.update(attrs.evolve(read, stock=8))
    assert (await skus.get(sku_id)).stock == 9


@pytest.mark.reliability
async def test_transfers_under_serializable_conserve_stock(
    dsn: str, conn: asyncpg.Connection
) -> None:
    """2,000 transfers by 20 workers under SERIALIZABLE: total conserved, none lost, all retried."""
    started = time.monotonic()
    transfers, workers, count, stock = 2000, 20, 10, 1000
    conflicts: list[str] = []
    ledger: list[tuple[int, int, int]] = []  # (from, to, amount) of each committed transfer
    attempts_used: list[int] = []
    async with Database.connect(dsn, min_size=2, max_size=workers, acquire_timeout=10) as db:
        ids = await make_skus(db, count, stock)
        queue: asyncio.Queue[tuple[int, int, int]] = asyncio.Queue()
        rng = random.Random(6)
        for _ in range(transfers):
            a, b = rng.sample(ids, 2)
            queue.put_nowait((a, b, rng.randint(1, 5)))

        async def transfer(uow: CatalogUnitOfWork, src: int, dst: int, amount: int) -> int:
            a = await uow.skus.get(src)
            b = await uow.skus.get(dst)
            await uow.skus.update(attrs.evolve(a, stock=a.stock - amount))
            await uow.skus.update(attrs.evolve(b, stock=b.stock + amount))
            return uow.attempt

        def retried(attempt: int, error: RepoError, delay: float) -> None:
            assert isinstance(error, SerializationFailure), error
            conflicts.append(type(error).__name__)

        async def worker() -> None:
            while not queue.empty():
                src, dst, amount = queue.get_nowait()
                used = await run_in_unit(
                    CatalogUnitOfWork,
                    db,
                    functools.partial(transfer, src=src, dst=dst, amount=amount),
                    attempts=50,
                    isolation="serializable",
                    on_retry=retried,
                )
                attempts_used.append(used)
                ledger.append((src, dst, amount))

        async with asyncio.timeout(100):
            await asyncio.gather(*(worker() for _ in range(workers)))
        final = {s.sku_id: s for s in await db.repository(SkuRepository).find()}
        assert db.pool.get_idle_size() == db.pool.get_size()

    assert len(ledger) == transfers
    assert sum(s.stock for s in final.values()) == count * stock  # conserved
    expected = dict.fromkeys(ids, stock)
    for src, dst, amount in ledger:
        expected[src] -= amount
        expected[dst] += amount
    assert expected == {k: s.stock for k, s in final.items()}  # no update lost
    # Every update bumped a version exactly once: two per committed transfer.
    assert sum(s.version for s in final.values()) == 2 * transfers
    # Every conflict was retried: each retry is one failed attempt, and the
    # attempts beyond the first across all transfers are exactly the retries.
    assert sum(a - 1 for a in attempts_used) == len(conflicts)
    assert conflicts  # the load did conflict
    assert await sessions_in_transaction(dsn) == 0
    FIGURES.update(
        transfers=transfers,
        workers=workers,
        retries=len(conflicts),
        deadlocks=conflicts.count("DeadlockDetected"),
        max_attempts=max(attempts_used),
        seconds=round(time.monotonic() - started, 1),
    )
    print("\ninvariant figures:", FIGURES)
    assert await conn.fetchval("SELECT sum(stock) FROM sku") == count * stock
