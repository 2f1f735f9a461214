"""Flat rows grouped into aggregates, without a server: the compiled loop of each kind.

Rows are laid out as `FlatStatements` lays them (a tag, then the slots,
each kind's columns at its own), here built by hand for the contract
tests' orders: each with its customer, its lines (keyed ``(order_no,
line_no)``) with their product and their notes.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import attrs
import pytest

from repo import Aggregate, RepoError, Table
from repo._postgres.aggregate_flat import FlatStatements
from tests.contract.test_aggregates import (
    ORDER_DETAIL,
    Customer,
    Line,
    LineDetail,
    Note,
    Order,
    OrderDetail,
    Product,
)

WHEN = dt.datetime(2024, 2, 29, tzinfo=dt.UTC)
FLAT = FlatStatements(ORDER_DETAIL)
WIDTH = 1 + FLAT.layout.width


def row(tag: int, *values: Any) -> tuple[Any, ...]:
    """A row of kind `tag`: its columns (its parents' after its own) at their slots."""
    kind = FLAT.kinds[tag]
    cells: list[Any] = [None] * WIDTH
    cells[0] = tag
    for at, value in zip(kind.at, values, strict=True):
        cells[at] = value
    return tuple(cells)


ADA = Customer("ada", 1)
ANVIL = Product("anvil", Decimal("9.99"), {"kg": 50}, 7)


def test_kinds_come_after_their_parents() -> None:
    assert [(k.table.name, k.up.kind.tag if k.up else None) for k in FLAT.kinds] == [
        ("agg_order", None),
        ("agg_line", 0),
        ("agg_note", 1),
    ]


def test_rows_make_nested_aggregates_in_the_roots_order() -> None:
    rows = [
        row(0, 2, WHEN, None, 0, None, None),  # no customer
        row(0, 1, WHEN, 1, 3, "ada", 1),
        row(1, 1, 2, 7, 5, None, "anvil", Decimal("9.99"), {"kg": 50}, 7),
        row(1, 1, 1, 7, 1, [1], "anvil", Decimal("9.99"), {"kg": 50}, 7),
        row(2, 1, 1, "b", 11),
        row(2, 1, 2, "c", 12),
        row(2, 1, 1, "a", 10),
    ]
    made, keys = FLAT.assemble(rows)
    assert keys == [2, 1]
    assert made == [
        OrderDetail(Order(2, WHEN, None, 0), None, []),
        OrderDetail(
            Order(1, WHEN, 1, 3),
            ADA,
            [
                LineDetail(Line(1, 2, 7, 5, None), ANVIL, [Note(1, 2, "c", 12)]),
                LineDetail(
                    Line(1, 1, 7, 1, [1]), ANVIL, [Note(1, 1, "b", 11), Note(1, 1, "a", 10)]
                ),
            ],
        ),
    ]
    assert FLAT.assemble([]) == ([], [])


def test_a_child_whose_parent_python_cannot_find_is_an_error() -> None:
    """A key PostgreSQL matched but Python holds unequal (a case-insensitive collation, say)
    is refused naming the tables, never silently dropped."""
    rows = [row(0, 1, WHEN, None, 0, None, None), row(1, 9, 1, 7, 1, None, *attrs.astuple(ANVIL))]
    with pytest.raises(RepoError, match=r"no row of agg_order for agg_line has the key 9"):
        FLAT.assemble(rows)


@attrs.frozen
class Odd:
    row: int
    index: str = attrs.field(kw_only=True)


@attrs.frozen
class OddChild:
    row: int
    make: int
    parents: int


@attrs.frozen
class OddDetail:
    roots: Odd
    take: list[OddChild]


def test_names_are_never_code() -> None:
    """Fields named like the generated loop's own names (row, index, make, parents, roots,
    take) and a table named "import" change nothing: the code holds positions only."""
    odd = Table("import", Odd, key="row")
    children = Table("class", OddChild, key="parents", foreign_keys={"row": odd})
    flat = FlatStatements(Aggregate(OddDetail, root=odd, many={"take": children}))
    rows = []
    for kind, values in zip(flat.kinds, [(1, "t"), (1, 2, 3)], strict=True):
        cells: list[Any] = [kind.tag] + [None] * flat.layout.width
        for at, value in zip(kind.at, values, strict=True):
            cells[at] = value
        rows.append(tuple(cells))
    made, keys = flat.assemble(rows)
    assert made == [OddDetail(Odd(1, index="t"), [OddChild(1, 2, 3)])]
    assert keys == [1]
