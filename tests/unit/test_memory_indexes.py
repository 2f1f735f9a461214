"""MemoryDatabase's hash indexes answer as a scan would, through writes, savepoints and rollbacks.

Random work on a parent table and a child table (a unique name, a foreign
key, a declared index), in units of work with savepoints that fail or not,
some units rolled back; after every step the lookups the indexes answer
(`find` by a unique value, by a foreign key, by an indexed column) are
compared with a full scan filtered in Python, in the unit and outside it.
"""

from __future__ import annotations

import random

import attrs
import pytest

from repo import (
    ForeignKey,
    ForeignKeyViolation,
    NotFound,
    Repository,
    Table,
    UniqueViolation,
    UnitOfWork,
    in_,
)
from repo.testing import MemoryDatabase


@attrs.frozen
class Box:
    box_id: int
    label: str
    shelf: int | None = None


@attrs.frozen
class Item:
    item_id: int
    code: str
    box_id: int | None
    colour: str


BOXES = Table("ix_box", Box, key="box_id", unique=["label"], indexes=["shelf"])
ITEMS = Table(
    "ix_item",
    Item,
    key="item_id",
    unique=[("code", "colour")],
    foreign_keys={"box_id": ForeignKey(BOXES, on_delete="CASCADE")},
)


class Boxes(Repository[Box]):
    table = BOXES


class Items(Repository[Item]):
    table = ITEMS


class Store(UnitOfWork):
    boxes: Boxes
    items: Items


class Undo(Exception):
    pass


async def _agree(boxes: Boxes, items: Items, rng: random.Random) -> None:
    every_box = await boxes.find()
    every_item = await items.find()
    for label in {b.label for b in every_box} | {"nope"}:
        assert await boxes.find(label=label) == [b for b in every_box if b.label == label]
    for shelf in range(4):
        assert await boxes.find(shelf=shelf) == [b for b in every_box if b.shelf == shelf]
    for box_id in range(12):
        assert await items.find(box_id=box_id) == [i for i in every_item if i.box_id == box_id]
    # in_() on an indexed column: one lookup per value, the rows still in scan order.
    for wanted in ([rng.randrange(12) for _ in range(3)], []):
        found = await items.find(box_id=in_(wanted))
        assert found == [i for i in every_item if i.box_id in wanted]
    shelves = [rng.randrange(4), rng.randrange(4)]
    assert await boxes.find(shelf=in_(shelves)) == [b for b in every_box if b.shelf in shelves]
    ids = [rng.randrange(40) for _ in range(5)]
    assert await items.find(item_id=in_(ids)) == [i for i in every_item if i.item_id in ids]
    code, colour = f"c{rng.randrange(6)}", rng.choice(["red", "blue"])
    assert await items.find(code=code, colour=colour) == [
        i for i in every_item if (i.code, i.colour) == (code, colour)
    ]


async def _step(uow: Store, rng: random.Random) -> None:
    what = rng.randrange(6)
    box_id = rng.randrange(12)
    if what == 0:
        await uow.boxes.add(Box(box_id, f"b{rng.randrange(8)}", rng.randrange(4)))
    elif what == 1:
        colour = rng.choice(["red", "blue"])
        item = Item(rng.randrange(40), f"c{rng.randrange(6)}", box_id, colour)
        await uow.items.add(item)
    elif what == 2:
        box = await uow.boxes.get(box_id)
        await uow.boxes.update(attrs.evolve(box, label=f"b{rng.randrange(8)}"))
    elif what == 3:
        await uow.boxes.delete(box_id)
    elif what == 4:
        await uow.items.delete_where(box_id=box_id)
    else:
        await uow.boxes.update_where({"shelf": rng.randrange(4)}, label=f"b{rng.randrange(8)}")


@pytest.mark.parametrize("seed", range(6))
async def test_lookups_agree_with_a_scan(seed: int) -> None:
    """Through failing statements, savepoints rolled back and units rolled back, every
    index lookup returns what a scan returns, in the same order."""
    rng = random.Random(seed)
    db = MemoryDatabase()
    for _ in range(25):
        try:
            async with Store(db) as uow:
                for _ in range(rng.randrange(1, 8)):
                    try:
                        async with uow.savepoint():
                            for _ in range(2):
                                async with uow.savepoint():
                                    await _step(uow, rng)
                            if rng.random() < 0.3:
                                raise Undo
                    except (Undo, NotFound, UniqueViolation, ForeignKeyViolation):
                        pass
                    await _agree(uow.boxes, uow.items, rng)
                if rng.random() < 0.25:
                    raise Undo
        except Undo:
            pass
        await _agree(db.repository(Boxes), db.repository(Items), rng)
