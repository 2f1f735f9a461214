"""The kinds of rows of an aggregate's flat read, and where each kind's columns are.

The root is kind 0; each `Many` of a level is a kind after its parent's
(depth first, so that a parent's tag is always smaller than its children's).
A kind's columns are its table's, then each of its parents' (`One`); a row
is its kind's tag, then slots, each kind's columns at the slots
`aggregate_layout.py` gives them (`Kind.at`), NULL in the others.
`aggregate_flat.py` writes the statement from these, `aggregate_group.py`
the loops that read its rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from repo._aggregate import Aggregate, Many
from repo._columns import ColumnSpec, quote
from repo._mapping import Table

__all__ = ["Column", "Kind", "Up", "kinds_of"]


@attrs.frozen
class Up:
    """Where a kind of child hangs: its parent kind, and the `Many` that declares it."""

    kind: Kind
    many: Many


@attrs.frozen
class Column:
    """One column of a kind's rows: its table's SQL name, its spec, and its select item."""

    table: str
    spec: ColumnSpec
    item: str

    @property
    def null(self) -> str:
        """A NULL of the column's own type, from its table's row type."""
        return f"(NULL::{self.table}).{quote(self.spec.column)}"


class Kind:
    """One kind of row: the root, or one `Many` of a level, with its parents' columns."""

    def __init__(
        self, tag: int, table: Table[Any], node: Aggregate[Any] | None, *, up: Up | None
    ) -> None:
        self.tag, self.table, self.node, self.up = tag, table, node, up
        self.alias = f"_k{tag}"
        self.depth: int = 0 if up is None else up.kind.depth + 1
        self.children: list[Kind] = []
        self.source = "_repo_r" if up is None else f"_repo_c{tag}"
        self.columns = [
            Column(table.qualified_name, c, f"{self.alias}.{quote(c.column)}")
            for c in table.columns
        ]
        self.joins = ""
        self.ones: list[tuple[int, int]] = []  # each parent's columns: (first, end) in `columns`
        for i, one in enumerate(node.ones if node is not None else ()):
            alias, parent = f"{self.alias}_{i}", one.table
            on = " AND ".join(
                f"{alias}.{quote(parent.column_of(t))} = {self.alias}.{quote(table.column_of(f))}"
                for f, t in zip(one.link.fields, one.link.targets, strict=True)
            )
            self.joins += f" LEFT JOIN {parent.qualified_name} AS {alias} ON {on}"
            first = len(self.columns)
            self.columns += [
                Column(parent.qualified_name, c, f"{alias}.{quote(c.column)}")
                for c in parent.columns
            ]
            self.ones.append((first, len(self.columns)))
        self.at: list[int] = []  # each column's place in the row, from the layout

    def positions(self, fields: Sequence[str]) -> list[int]:
        """The places in the row of its own table's `fields`."""
        names = [c.field for c in self.table.columns]
        return [self.at[names.index(f)] for f in fields]

    @property
    def cte(self) -> bool:
        """Whether its rows are a CTE: the root's, and those of a kind with children."""
        return self.up is None or bool(self.children)

    def filter(self, up: Up, alias: str) -> str:
        """The condition on `alias` (of its table) that picks the children of its parents."""
        link = up.many.link
        mine = ", ".join(f"{alias}.{quote(self.table.column_of(f))}" for f in link.fields)
        theirs = ", ".join(quote(up.kind.table.column_of(t)) for t in link.targets)
        if len(link.fields) == 1:
            # An array of the parents' keys: an index on the reference serves it (a
            # page's children come by an index scan where IN would read the table).
            return f"{mine} = ANY(ARRAY(SELECT {theirs} FROM {up.kind.source}))"
        return f"({mine}) IN (SELECT {theirs} FROM {up.kind.source})"

    def order(self) -> list[str]:
        """Its order by the positions of its columns in the row (1-based)."""
        if self.up is None:
            return []
        return [
            f"{self.positions([o.field])[0] + 1}{' DESC' if o.descending else ''}"
            for o in self.up.many.orders
        ]


def kinds_of(agg: Aggregate[Any]) -> list[Kind]:
    """The kinds of rows of `agg`: the root's, then each kind of child after its parent."""
    kinds: list[Kind] = []

    def add(table: Table[Any], node: Aggregate[Any] | None, up: Up | None) -> None:
        kind = Kind(len(kinds), table, node, up=up)
        kinds.append(kind)
        if up is not None:
            up.kind.children.append(kind)
        for many in node.manys if node is not None else ():
            add(many.table, many.node, Up(kind, many))

    add(agg.root, agg, None)
    return kinds
