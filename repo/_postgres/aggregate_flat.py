"""Many aggregates read in one statement of flat rows: the roots, then each kind of child.

`get_many`, `find` and `page` read many roots at once. As arrays of
anonymous rows (`aggregate.py`), their children cost the client a codec
look-up per field (asyncpg decodes a ``record`` field by field, by the OID
each carries); as plain rows, they cost what any fetch costs. So these reads
run one statement of this form (an order, its lines, each line's notes):

    WITH _repo_r AS MATERIALIZED (                   -- the roots, numbered in their order
           SELECT _i.*, row_number() OVER (ORDER BY ...) AS _repo_ord FROM (<root SELECT>) _i),
         _repo_c1 AS MATERIALIZED (                  -- a kind with children of its own
           SELECT <line's columns> FROM line AS _s
           WHERE _s.order_no = ANY(ARRAY(SELECT order_no FROM _repo_r)))
    SELECT 0, <order's, its customer's columns>, <NULLs>, <NULLs>, _k0._repo_ord
      FROM _repo_r AS _k0 LEFT JOIN customer AS _k0_0 ON ...
    UNION ALL SELECT 1, <NULLs>, <line's, its product's columns>, <NULLs>, NULL
      FROM _repo_c1 AS _k1 LEFT JOIN product AS _k1_0 ON ...
    UNION ALL SELECT 2, <NULLs>, <NULLs>, <note's columns>, NULL
      FROM note AS _k2 WHERE (_k2.order_no, _k2.line_no) IN (SELECT order_no, line_no FROM _repo_c1)
    ORDER BY 1, <the ordinal's position>, <each kind's order, by position>

Each kind of row has columns of its own, NULL in the other kinds' rows and
typed from the table's row type (``(NULL::line).qty``), so that UNION ALL
resolves every column to the column's own type (sharing columns between
kinds would have the union coerce one type to another). The rows come
sorted by kind, each after its parents: the roots in their order, each kind
of child in its declared order; they are grouped in Python by the values
they reference. `get_many` orders its roots itself, and has no ordinal.
Streams keep one row per root (`aggregate.py`), which bounds their memory.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from itertools import groupby
from typing import Any

import attrs

from repo._aggregate import Aggregate, Many
from repo._columns import quote
from repo._mapping import Table
from repo._query import Order
from repo.errors import RepoError

__all__ = ["FlatStatements"]

Decode = Callable[[Any], Any]
_TAG = operator.itemgetter(0)
_KEYS = 0  # in `index`, the roots' keys (the other entries are kinds' ids, never 0)


def _positions(table: Table[Any], start: int, fields: Sequence[str]) -> Decode:
    """A getter of `fields`' values (a value, or a tuple for several) from a row at `start`."""
    columns = [c.field for c in table.columns]
    return operator.itemgetter(*(start + columns.index(f) for f in fields))


def _one(table: Table[Any], start: int, end: int) -> Decode:
    """A getter of a parent's entity from a row, None where the row references none."""
    at, make = start + table.key_positions[0], _entity_maker(table)
    return lambda row: None if row[at] is None else make(*row[start:end])


def _entity_maker(table: Table[Any]) -> Callable[..., Any]:
    """A callable making `table`'s entity from its column values as arguments."""
    if table.positional_entity is not None:
        return table.positional_entity
    from_record = table.from_record
    return lambda *values: from_record(values)


@attrs.frozen
class _Up:
    """Where a kind of child hangs: its parent kind, and the `Many` that declares it."""

    kind: _Kind
    many: Many


class _Kind:
    """One kind of row: the root, or one `Many` of a level, with its parents' columns."""

    def __init__(
        self,
        tag: int,
        table: Table[Any],
        node: Aggregate[Any] | None,
        *,
        up: _Up | None,
        start: int,
    ) -> None:
        self.tag, self.table, self.node, self.up = tag, table, node, up
        self.alias = f"_k{tag}"
        self.start, self.end = start, start + len(table.columns)
        self.children: list[_Kind] = []
        self.source = "_repo_r" if up is None else f"_repo_c{tag}"
        # Its columns (its parents' after its own) as select items, and typed NULLs.
        self.items = [f"{self.alias}.{quote(c.column)}" for c in table.columns]
        self.nulls = [f"(NULL::{table.qualified_name}).{quote(c.column)}" for c in table.columns]
        self.joins = ""
        self.ones: list[tuple[int, Decode]] = []  # (slot in the item, getter)
        names = node.field_names if node is not None else ()
        for i, one in enumerate(node.ones if node is not None else ()):
            alias, parent = f"{self.alias}_{i}", one.table
            on = " AND ".join(
                f"{alias}.{quote(parent.column_of(t))} = {self.alias}.{quote(table.column_of(f))}"
                for f, t in zip(one.link.fields, one.link.targets, strict=True)
            )
            self.joins += f" LEFT JOIN {parent.qualified_name} AS {alias} ON {on}"
            first = start + len(self.items)
            self.items += [f"{alias}.{quote(c.column)}" for c in parent.columns]
            self.nulls += [
                f"(NULL::{parent.qualified_name}).{quote(c.column)}" for c in parent.columns
            ]
            self.ones.append((names.index(one.name), _one(parent, first, start + len(self.items))))
        self.width = len(self.items)

    @property
    def cte(self) -> bool:
        """Whether its rows are a CTE: the root's, and those of a kind with children."""
        return self.up is None or bool(self.children)

    def filter(self, up: _Up, alias: str) -> str:
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
        columns = [c.field for c in self.table.columns]
        return [
            f"{self.start + columns.index(o.field) + 1}{' DESC' if o.descending else ''}"
            for o in self.up.many.orders
        ]


class FlatStatements:
    """The flat statement of an aggregate around each root SELECT, and the grouping of its rows."""

    def __init__(self, agg: Aggregate[Any]) -> None:
        self.agg = agg
        self.kinds: list[_Kind] = []
        self._add(agg.root, agg, None)
        self._wrapped: dict[tuple[str, tuple[Order, ...], bool], str] = {}
        self._tails = {n: self._build_tail(n) for n in (False, True)}
        self._take = [self._taker(k) for k in self.kinds]
        self._make = self._maker(self.kinds[0])

    def _add(self, table: Table[Any], node: Aggregate[Any] | None, up: _Up | None) -> None:
        """`table`'s kind and, after it, those of its children (each after its parent)."""
        last = self.kinds[-1] if self.kinds else None
        start = 1 if last is None else last.start + last.width
        kind = _Kind(len(self.kinds), table, node, up=up, start=start)
        self.kinds.append(kind)
        if up is not None:
            up.kind.children.append(kind)
        for many in node.manys if node is not None else ():
            self._add(many.table, many.node, _Up(kind, many))

    def _build_tail(self, numbered: bool) -> tuple[str, str]:
        """The CTEs after the root's, and the UNION ALL of every kind with its ORDER BY.

        A row is its kind's tag, the kinds' columns, and when `numbered` the
        roots' ordinal last (so that no position moves without it).
        """
        ctes = ""
        branches = []
        for kind in self.kinds:
            items = [str(kind.tag)]
            for other in self.kinds:
                items += kind.items if other is kind else other.nulls
            if numbered:
                items.append("NULL::bigint" if kind.up else f"{kind.alias}._repo_ord")
            source, where = f"{kind.source} AS {kind.alias}", ""
            if kind.up is not None:
                if kind.cte:
                    t = kind.table
                    ctes += (
                        f", {kind.source} AS MATERIALIZED (SELECT {t.select_list} FROM "
                        f"{t.qualified_name} AS _s WHERE {kind.filter(kind.up, '_s')})"
                    )
                else:
                    source = f"{kind.table.qualified_name} AS {kind.alias}"
                    where = f" WHERE {kind.filter(kind.up, kind.alias)}"
            branches.append(f"SELECT {', '.join(items)} FROM {source}{kind.joins}{where}")
        keys = ["1"]
        if numbered:
            last = self.kinds[-1]
            keys.append(str(last.start + last.width + 1))
        order = ", ".join(keys + [o for k in self.kinds for o in k.order()])
        return ctes, " UNION ALL ".join(branches) + f" ORDER BY {order}"

    def wrap(self, inner: str, orders: Sequence[Order], *, numbered: bool = True) -> str:
        """The statement reading the aggregates of the roots `inner` selects, in `orders`.

        Not `numbered`, the roots come in any order (for `get_many`, which orders them).
        """
        shape = (inner, tuple(orders), numbered)
        found = self._wrapped.get(shape)
        if found is None:
            table = self.agg.root
            ctes, union = self._tails[numbered]
            if numbered:
                # In their order, or as `inner` gives them (a table's order on disk,
                # as the one-table reads give it) where none is asked for.
                over = ", ".join(
                    f"_i.{quote(table.column_of(o.field))}{' DESC' if o.descending else ''}"
                    for o in orders
                )
                root = (
                    f"SELECT _i.*, row_number() OVER ({'ORDER BY ' + over if orders else ''})"
                    f" AS _repo_ord FROM ({inner}) AS _i"
                )
            else:
                root = inner
            found = f"WITH _repo_r AS MATERIALIZED ({root}){ctes} {union}"
            self._wrapped[shape] = found
        return found

    # -- grouping ---------------------------------------------------------------

    def _taker(self, kind: _Kind) -> Take:
        """How the rows of `kind` become items filed under their parents.

        An item is the list of an aggregate's parts, made into it at the end
        (`_maker`); a plain child (no parents or children of its own) is its
        entity. `index` holds, per kind of child, each parent's list of them
        by the values the children reference.
        """
        table, start, end = kind.table, kind.start, kind.end
        make = _entity_maker(table)
        mine = [id(c) for c in kind.children]
        item = _item_maker(kind, make)
        if kind.up is None:
            root_key = _positions(table, start, table.key_fields)

            def take_root(rows: Any, roots: list[Any], index: dict[int, Any]) -> None:
                for name in mine:
                    index[name] = {}
                rows = list(rows)
                roots += [item(row, index) for row in rows]
                index[_KEYS] = list(map(root_key, rows))

            return take_root
        parent_key = _positions(table, start, kind.up.many.link.fields)
        me, plain = id(kind), kind.node is None
        label = f"{kind.up.kind.table.name} for {table.name}"

        def take(rows: Any, roots: list[Any], index: dict[int, Any]) -> None:
            for name in mine:
                index[name] = {}
            parents = index[me]
            try:
                if plain:  # the common case, without a call per row
                    for row in rows:
                        parents[parent_key(row)].append(make(*row[start:end]))
                    return
                for row in rows:
                    parents[parent_key(row)].append(item(row, index))
            except KeyError as exc:
                msg = (
                    f"no row of {label} has the key {exc.args[0]!r}, which PostgreSQL "
                    f"matched: a key whose values Python does not hold equal"
                )
                raise RepoError(msg) from None

        return take

    def _maker(self, kind: _Kind) -> Decode:
        """How an item of `kind` becomes its aggregate (its nested children made first)."""
        node = _node(kind)
        make = node.make
        nested = [
            (node.field_names.index(c.up.many.name), self._maker(c))
            for c in kind.children
            if c.node is not None and c.up is not None
        ]
        if not nested:
            return lambda parts: make(*parts)

        def made(parts: list[Any]) -> Any:
            for slot, child in nested:
                parts[slot] = [child(p) for p in parts[slot]]
            return make(*parts)

        return made

    def assemble(self, rows: Sequence[Any]) -> tuple[list[Any], list[Any]]:
        """The aggregates of `rows`, in the roots' order, and their roots' keys."""
        roots: list[Any] = []
        index: dict[int, Any] = {_KEYS: []}
        take = self._take
        for tag, group in groupby(rows, _TAG):
            take[tag](group, roots, index)
        make = self._make
        return [make(p) for p in roots], index[_KEYS]


Take = Callable[[Any, list[Any], dict[int, Any]], None]
Item = Callable[[Any, dict[int, Any]], Any]


def _node(kind: _Kind) -> Aggregate[Any]:
    if kind.node is None:
        msg = f"{kind.table.name} is read as a plain child, not an aggregate"
        raise RepoError(msg)
    return kind.node


def _item_maker(kind: _Kind, make: Callable[..., Any]) -> Item:
    """The item of a row of `kind`: its entity, or the list of its parts (children listed)."""
    start, end = kind.start, kind.end
    if kind.node is None:
        return lambda row, index: make(*row[start:end])
    names = kind.node.field_names
    size, at, ones = len(names), names.index(kind.node.root_field), kind.ones
    children = [
        (id(c), names.index(c.up.many.name), _positions(kind.table, start, c.up.many.link.targets))
        for c in kind.children
        if c.up is not None
    ]

    def item(row: Any, index: dict[int, Any]) -> Any:
        parts: list[Any] = [None] * size
        parts[at] = make(*row[start:end])
        for slot, getter in ones:
            parts[slot] = getter(row)
        for name, slot, key in children:
            index[name][key(row)] = parts[slot] = []
        return parts

    return item
