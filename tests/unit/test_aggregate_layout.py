"""The slots of an aggregate's flat rows: which columns share one, and which never do."""

from __future__ import annotations

import attrs

from repo import Aggregate, Column, Table
from repo._postgres.aggregate_flat import FlatStatements
from repo._postgres.aggregate_kinds import kinds_of
from repo._postgres.aggregate_layout import Layout


@attrs.frozen
class Crate:
    code: str
    note: str
    size: int
    crate_id: int | None = None


@attrs.frozen
class Item:
    crate_id: int
    label: str
    rank: int
    weight: float
    item_id: int | None = None


@attrs.frozen
class CrateDetail:
    crate: Crate
    items: list[Item]


CRATES = Table("lay_crate", Crate, key="crate_id", columns={"note": Column(type="varchar(20)")})
ITEMS = Table("lay_item", Item, key="item_id", foreign_keys={"crate_id": CRATES})
DETAIL = Aggregate(CrateDetail, root=CRATES, many={"items": ITEMS}, order_by={"items": "rank"})


def test_the_children_come_first_and_the_root_takes_their_slots() -> None:
    root, items = kinds_of(DETAIL)
    layout = Layout([root, items])
    # The items' columns, in their order, then the slots only the crates need.
    assert items.at == [1, 2, 3, 4, 5]
    # code (text) shares the label's slot; note (varchar) does not, though
    # `kind_of` names it text; size (int8) shares the items' crate_id's; the
    # crate's key finds no other: rank and item_id (the items' order, their
    # key breaking ties) keep their slots to themselves.
    assert root.at == [2, 6, 1, 7]
    assert layout.width == 7
    assert layout.items(root) == [
        '_k0."size"::int8',
        '_k0."code"::text',
        '(NULL::"lay_item")."rank"',
        '(NULL::"lay_item")."weight"',
        '(NULL::"lay_item")."item_id"',
        '_k0."note"',
        '_k0."crate_id"',
    ]
    assert layout.items(items)[5:] == [
        '(NULL::"lay_crate")."note"',
        '(NULL::"lay_crate")."crate_id"',
    ]
    assert layout.guard.count("pg_typeof(") == 4
    # An integer column under an int field reads the same once cast to bigint.
    assert (
        """pg_typeof((NULL::"lay_item")."crate_id") IN ('int8'::regtype, 'int4'::regtype,"""
        in layout.guard
    )


def test_without_sharing_every_column_has_a_slot_of_its_own() -> None:
    root, items = kinds_of(DETAIL)
    layout = Layout([root, items], share=False)
    assert sorted(root.at + items.at) == list(range(1, 10))
    assert layout.width == 9
    assert layout.guard == ""
    assert "::" not in " ".join(layout.items(root) + layout.items(items)).replace("(NULL::", "")
    flat = FlatStatements(DETAIL, share=False)
    assert "UNION ALL SELECT -1" not in flat.wrap("SELECT 1", ())


def test_the_statement_sorts_each_kind_by_its_own_slots() -> None:
    flat = FlatStatements(DETAIL)
    statement = flat.wrap("SELECT 1", ())
    # The tag, the roots' ordinal (after the slots), then the items' rank and key.
    assert statement.endswith("ORDER BY 1, 9, 4, 6")
    assert f"UNION ALL SELECT -1, {', '.join(['NULL'] * 8)} WHERE NOT (" in statement
