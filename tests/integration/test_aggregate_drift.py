"""Aggregate reads of many roots where a table's columns are not of the types its mapping
declares: the slots kinds share never convert a value.

Shelves hold boxes. The boxes' rows are laid out first; each shelf's
columns take the slots of box columns of the same declared type (its
``width`` a box's ``shelf_id``, its key a box's ``weight``, its ``label`` a
box's ``tag``). Each test alters box columns in the database, then reads
as a user would. A narrower type the cast widens unchanged (``integer``
under ``int``, ``varchar`` under ``str``) keeps the slots shared; any
other, the statement's guard sees, and the read runs again without shared
slots. Either way a read gives what `get` gives, types included.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import attrs
import pytest

from repo import Aggregate, AggregateRepository, Column, Database, Table, UnitOfWork, UnitState
from repo._postgres.aggregate import aggregate_statements
from tests.conftest import _admin
from tests.contract.own_schema import own_schema


@attrs.frozen
class Shelf:
    label: str
    width: int
    depth: Decimal
    shelf_id: int | None = None


@attrs.frozen
class Box:
    shelf_id: int
    weight: int
    tag: str
    price: Decimal
    box_id: int | None = None


@attrs.frozen
class ShelfDetail:
    shelf: Shelf
    boxes: list[Box]


SHELVES = Table(
    "drift_shelf", Shelf, key="shelf_id", columns={"depth": Column(type="numeric(10,2)")}
)
BOXES = Table(
    "drift_box",
    Box,
    key="box_id",
    foreign_keys={"shelf_id": SHELVES},
    columns={"price": Column(type="numeric(12,4)")},
)


@pytest.fixture(scope="module")
def drift_dsn(migrated_dsn: str) -> Iterator[str]:
    with own_schema(migrated_dsn, (SHELVES, BOXES)) as dsn:
        yield dsn


@pytest.fixture
async def shelves(drift_dsn: str) -> AsyncIterator[Database]:
    """Three shelves of up to three boxes, with the tables as their mappings declare them."""
    await _admin(
        drift_dsn,
        "TRUNCATE drift_shelf, drift_box RESTART IDENTITY",
        "ALTER TABLE drift_box ALTER weight TYPE bigint, ALTER tag TYPE text",
        "INSERT INTO drift_shelf (label, width, depth)"
        " VALUES ('top', 120, 0.50), ('middle', 90, 1.25), ('empty', 0, 0)",
        "INSERT INTO drift_box (shelf_id, weight, tag, price) VALUES"
        " (1, 9007199254740993, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 2.1234),"
        " (1, 3, 'b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', 0.0001),"
        " (2, 4, 'c0eebc99-9c0b-4ef8-bb6d-6bb9bd380a13', 100)",
    )
    async with Database.connect(drift_dsn, min_size=1, max_size=2) as db:
        yield db


def declare() -> type[AggregateRepository[ShelfDetail]]:
    """A repository of a new declaration: a drift is remembered per declaration."""

    class Shelves(AggregateRepository[ShelfDetail]):
        aggregate = Aggregate(ShelfDetail, root=SHELVES, many={"boxes": BOXES})

    return Shelves


class UnitShelves(AggregateRepository[ShelfDetail]):
    aggregate = Aggregate(ShelfDetail, root=SHELVES, many={"boxes": BOXES})


class ShelfUnit(UnitOfWork):
    details: UnitShelves


async def same_as_get(db: Database, cls: type[AggregateRepository[ShelfDetail]]) -> None:
    """Every read of many roots gives what `get` does, root by root, types included."""
    details = db.repository(cls)
    alone = [await details.get(k) for k in (1, 2, 3)]
    reads = [
        await details.get_many([3, 1, 2]),
        await details.find(order_by="shelf_id"),
        (await details.page(limit=5)).items,
    ]
    for read in reads:
        found = sorted(read, key=lambda d: d.shelf.shelf_id or 0)
        assert found == alone
        assert [repr(d) for d in found] == [repr(d) for d in alone]


async def test_shared_slots_keep_every_value(shelves: Database) -> None:
    """No drift: the kinds share slots, and a bigint beyond 2**53 and numerics of two
    scales (numeric(10,2) beside numeric(12,4)) come back as they are stored."""
    shelves_repo = declare()
    await same_as_get(shelves, shelves_repo)
    flat = aggregate_statements(shelves_repo.aggregate).flat
    assert flat.layout.share
    statement = flat.wrap("SELECT 1", ())
    assert '_k0."shelf_id"::int8' in statement  # in a box column's slot
    assert '_k0."depth"::numeric' in statement
    found = await shelves.repository(shelves_repo).get_many([1])
    assert [b.weight for b in found[0].boxes] == [9007199254740993, 3]
    assert [b.price for b in found[0].boxes] == [Decimal("2.1234"), Decimal("0.0001")]
    assert found[0].shelf.depth == Decimal("0.50")


async def test_narrower_columns_share_slots_all_the_same(
    shelves: Database, drift_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An integer column mapped as int (bigint), a varchar one mapped as str (text): cast
    to the declared type, each value reads as it would alone, and the slots stay shared."""
    await _admin(
        drift_dsn,
        "UPDATE drift_box SET weight = 2147483647 WHERE box_id = 1",
        "ALTER TABLE drift_box ALTER weight TYPE integer, ALTER tag TYPE varchar(40)",
    )
    shelves_repo = declare()
    with caplog.at_level(logging.WARNING, logger="repo"):
        await same_as_get(shelves, shelves_repo)
        found = await shelves.repository(shelves_repo).get_many([1])
    assert aggregate_statements(shelves_repo.aggregate).flat.layout.share
    assert not caplog.records
    assert [b.weight for b in found[0].boxes] == [2147483647, 3]


@pytest.mark.parametrize(
    "alter",
    [
        # numeric beside the shelves' int8 keys: UNION ALL would make the keys Decimal
        "ALTER TABLE drift_box ALTER weight TYPE numeric",
        # uuid beside the shelves' text labels: UNION ALL would refuse the pair
        "ALTER TABLE drift_box ALTER tag TYPE uuid USING tag::uuid",
    ],
)
async def test_a_drifted_column_is_read_without_shared_slots(
    shelves: Database, drift_dsn: str, alter: str, caplog: pytest.LogCaptureFixture
) -> None:
    await _admin(drift_dsn, alter)
    shelves_repo = declare()
    with caplog.at_level(logging.WARNING, logger="repo"):
        found = await shelves.repository(shelves_repo).get_many([1, 2])
        await same_as_get(shelves, shelves_repo)
    assert [type(d.shelf.shelf_id) for d in found] == [int, int]
    assert not aggregate_statements(shelves_repo.aggregate).flat.layout.share
    warned = [r for r in caplog.records if "no longer share columns" in r.getMessage()]
    assert len(warned) == 1
    assert "ShelfDetail" in warned[0].getMessage()
    if "uuid" in alter:  # read as the database has it, as any other read would
        tag: object = found[0].boxes[0].tag
        assert isinstance(tag, uuid.UUID)


async def test_a_drift_found_in_a_unit_of_work_leaves_its_transaction_alive(
    shelves: Database, drift_dsn: str
) -> None:
    """The guard fails before any value is cast: the transaction goes on and commits."""
    await _admin(drift_dsn, "ALTER TABLE drift_box ALTER weight TYPE numeric")
    async with ShelfUnit(shelves) as uow:
        found = await uow.details.find(order_by="shelf_id")
        assert [d.shelf.label for d in found] == ["top", "middle", "empty"]
        assert [b.weight for b in found[0].boxes] == [Decimal(9007199254740993), Decimal(3)]
        assert not aggregate_statements(UnitShelves.aggregate).flat.layout.share
        await uow.details.delete(3)
    assert uow.state is UnitState.COMMITTED
    assert [d.shelf.label for d in await shelves.repository(UnitShelves).find()] == [
        "top",
        "middle",
    ]
