"""Round trips per operation, counted on the wire: a regression that adds a query fails here.

Each operation runs once to warm the statement cache, then again under the
count. The pool has one connection, so that its release (and any reset
query) is part of what is counted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from repo import Database, UniqueViolation
from repo.catalog import Brand, BrandRepository, CatalogUnitOfWork
from tests.wire import Wiretap

RESET = "SELECT pg_advisory_unlock_all();"  # the full reset on release


@pytest.fixture
async def tap(dsn: str, migrated_dsn: str) -> AsyncIterator[Wiretap]:
    # Straight to the server (not through PgBouncer, whose mode sends other
    # statements): `dsn` only empties the tables.
    async with Wiretap(migrated_dsn) as wiretap:
        yield wiretap


@pytest.fixture
async def tapped(tap: Wiretap) -> AsyncIterator[Database]:
    async with Database.connect(tap.dsn, min_size=1, max_size=1) as database:
        await database.repository(BrandRepository).add(Brand("first"))
        yield database


async def trips(tap: Wiretap, op: Callable[[int], Awaitable[object]]) -> list[str]:
    """The round trips of `op(1)`, after `op(0)` warmed the caches."""
    await op(0)
    tap.clear()
    await op(1)
    return tap.clear()


def assert_trips(actual: list[str], expected: list[str]) -> None:
    """Each round trip's SQL starts with its expected prefix, and there are no others."""
    assert len(actual) == len(expected), actual
    for sql, prefix in zip(actual, expected, strict=True):
        assert sql.startswith(prefix), actual


async def test_a_unit_of_work_with_one_insert_is_begin_insert_commit(
    tap: Wiretap, tapped: Database
) -> None:
    async def unit(i: int) -> None:
        async with CatalogUnitOfWork(tapped) as uow:
            await uow.brands.add(Brand(f"unit {i}"))

    assert await trips(tap, unit) == [
        "BEGIN",
        'INSERT INTO "brand" ("brand_name") VALUES ($1) RETURNING "brand_name", "brand_id"',
        "COMMIT",
    ]


async def test_a_failing_savepoint_costs_its_own_statements_only(
    tap: Wiretap, tapped: Database
) -> None:
    async def unit(i: int) -> None:
        async with CatalogUnitOfWork(tapped) as uow:
            await uow.brands.add(Brand(f"outer {i}"))
            with pytest.raises(UniqueViolation):
                async with uow.savepoint():
                    await uow.brands.add(Brand(f"outer {i}"))

    assert_trips(
        await trips(tap, unit),
        [
            "BEGIN",
            'INSERT INTO "brand"',
            "SAVEPOINT repo_sp_1",
            'INSERT INTO "brand"',
            "ROLLBACK TO SAVEPOINT repo_sp_1; RELEASE SAVEPOINT repo_sp_1",
            "COMMIT",
        ],
    )


async def test_a_read_only_unit_is_begin_select_commit(tap: Wiretap, tapped: Database) -> None:
    async def unit(i: int) -> None:
        async with CatalogUnitOfWork(tapped, readonly=True) as uow:
            await uow.brands.get(1)

    assert_trips(await trips(tap, unit), ["BEGIN READ ONLY", 'SELECT "brand_name"', "COMMIT"])


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        ("add", ['INSERT INTO "brand"']),
        ("get", ['SELECT "brand_name", "brand_id" FROM "brand" WHERE "brand_id" = $1']),
        ("get_many", ['SELECT "brand_name", "brand_id" FROM "brand" WHERE "brand_id" = ANY']),
        ("find", ['SELECT "brand_name", "brand_id" FROM "brand" WHERE "brand_name" = $1']),
        ("count", ['SELECT count(*) FROM "brand"']),
        ("exists", ["SELECT EXISTS"]),
        ("update", ['UPDATE "brand"']),
        ("upsert", ['WITH written AS (INSERT INTO "brand"']),
        ("delete", ['DELETE FROM "brand"']),
        ("add_many", ["BEGIN", 'COPY "brand"', "COMMIT"]),
    ],
)
async def test_a_pool_level_operation_is_its_statements_and_no_reset(
    tap: Wiretap, tapped: Database, operation: str, expected: list[str]
) -> None:
    brands = tapped.repository(BrandRepository)

    async def run(i: int) -> object:
        name = f"{operation} {i}"
        match operation:
            case "add":
                return await brands.add(Brand(name))
            case "get":
                return await brands.get(1)
            case "get_many":
                return await brands.get_many([1])
            case "find":
                return await brands.find(brand_name="first")
            case "count":
                return await brands.count()
            case "exists":
                return await brands.exists(brand_name="first")
            case "update":
                return await brands.update(Brand(name, brand_id=1))
            case "upsert":
                return await brands.upsert(Brand(name, brand_id=1))
            case "delete":
                added = await tapped.repository(BrandRepository).add(Brand(name))
                tap.clear()
                await brands.delete(added.brand_id)
                return None
        return await brands.add_many([Brand(f"{name} {j}") for j in range(3)])

    assert_trips(await trips(tap, run), expected)


async def test_a_pool_level_stream_is_one_read_only_transaction(
    tap: Wiretap, tapped: Database
) -> None:
    brands = tapped.repository(BrandRepository)

    async def stream(i: int) -> object:
        return [b async for b in brands.stream()]

    assert_trips(
        await trips(tap, stream),
        ["BEGIN READ ONLY", 'SELECT "brand_name"', "<fetch from an open portal>", "ROLLBACK"],
    )


async def test_a_raw_connection_gets_the_full_reset(tap: Wiretap, tapped: Database) -> None:
    async def raw(i: int) -> object:
        async with tapped.acquire() as conn:
            return await conn.fetchval("SELECT 1")

    assert_trips(await trips(tap, raw), ["SELECT 1", RESET])


async def test_hand_written_sql_gets_the_full_reset(tap: Wiretap, tapped: Database) -> None:
    brands = tapped.repository(BrandRepository)

    async def hand(i: int) -> object:
        return await brands.scalar("SELECT count(*) FROM brand")

    assert_trips(await trips(tap, hand), ["SELECT count(*) FROM brand", RESET])


async def test_a_unit_whose_connection_was_exposed_gets_the_full_reset(
    tap: Wiretap, tapped: Database
) -> None:
    async def unit(i: int) -> None:
        async with CatalogUnitOfWork(tapped) as uow:
            await uow.connection.execute("SELECT 1")

    assert_trips(await trips(tap, unit), ["BEGIN", "SELECT 1", "COMMIT", RESET])
