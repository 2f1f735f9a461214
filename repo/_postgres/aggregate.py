"""Aggregates read in one statement each: `get` and `stream` as one row per root.

The root's own statement (`Statements.get`, `select`) becomes a subquery;
each parent is a LEFT JOIN (its columns inline), each kind of child an
``ARRAY(SELECT ROW(...) FROM child WHERE child.fk = parent.key ORDER BY
...)``, nested to any depth. asyncpg decodes those arrays of records in the
binary format with the connection's codecs (jsonb included), so nothing
travels as JSON text; a stream's memory is bounded by its batches of roots.
Reads of many roots at once (`get_many`, `find`, `page`) are flat rows
instead, cheaper to decode (`aggregate_flat.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from repo._aggregate import Aggregate
from repo._columns import quote
from repo._query import Condition, Order
from repo._stream import Stream

from .aggregate_flat import FlatStatements
from .cursor import stream_rows
from .ops import Runner
from .sql import statements

__all__ = ["PgAggregateReads", "aggregate_statements"]

T = TypeVar("T")

log = logging.getLogger("repo")

Decode = Callable[[Any], Any]


class _Aliases:
    def __init__(self) -> None:
        self.n = 0

    def next(self) -> str:
        self.n += 1
        return f"_a{self.n}"


def _level(agg: Aggregate[Any], alias: str, names: _Aliases) -> tuple[list[str], str, Decode]:
    """The select items and joins of one level (its root's columns at `alias`), and its decoder."""
    root = agg.root
    items = [f"{alias}.{quote(c.column)}" for c in root.columns]
    joins = ""
    width = len(items)
    make_root = root.from_record
    getters: dict[str, Decode] = {agg.root_field: lambda row: make_root(row[:width])}
    for one in agg.ones:
        table = one.table
        a = names.next()
        on = " AND ".join(
            f"{a}.{quote(table.column_of(t))} = {alias}.{quote(root.column_of(f))}"
            for f, t in zip(one.link.fields, one.link.targets, strict=True)
        )
        joins += f" LEFT JOIN {table.qualified_name} AS {a} ON {on}"
        start = len(items)
        items += [f"{a}.{quote(c.column)}" for c in table.columns]
        key = table.key_positions[0]
        getters[one.name] = _one_getter(table.from_record, start, len(items), key)
    for many in agg.manys:
        table = many.table
        a = names.next()
        if many.node is not None:
            inner, inner_joins, decode = _level(many.node, a, names)
            getters[many.name] = _nested_getter(decode, len(items))
        else:
            inner = [f"{a}.{quote(c.column)}" for c in table.columns]
            inner_joins = ""
            getters[many.name] = _plain_getter(table.from_records, len(items))
        where = " AND ".join(
            f"{a}.{quote(table.column_of(f))} = {alias}.{quote(root.column_of(t))}"
            for f, t in zip(many.link.fields, many.link.targets, strict=True)
        )
        order = ", ".join(
            f"{a}.{quote(table.column_of(o.field))}{' DESC' if o.descending else ''}"
            for o in many.orders
        )
        items.append(
            f"ARRAY(SELECT ROW({', '.join(inner)}) FROM {table.qualified_name} AS {a}"
            f"{inner_joins} WHERE {where} ORDER BY {order})"
        )
    parts = [getters[name] for name in agg.field_names]
    make = agg.make
    if len(parts) == 2:
        first, second = parts

        def decode(row: Sequence[Any]) -> Any:
            return make(first(row), second(row))
    elif len(parts) == 3:
        first, second, third = parts

        def decode(row: Sequence[Any]) -> Any:
            return make(first(row), second(row), third(row))
    else:

        def decode(row: Sequence[Any]) -> Any:
            return make(*[p(row) for p in parts])

    return items, joins, decode


def _one_getter(make: Decode, start: int, end: int, key: int) -> Decode:
    at = start + key
    return lambda row: None if row[at] is None else make(row[start:end])


def _nested_getter(decode: Decode, at: int) -> Decode:
    return lambda row: [decode(r) for r in row[at]]


def _plain_getter(make_many: Callable[[Any], list[Any]], at: int) -> Decode:
    return lambda row: make_many(row[at])


class AggregateStatements:
    """The statements of one aggregate: each root statement wrapped once, cached by its text."""

    def __init__(self, agg: Aggregate[Any]) -> None:
        self.agg = agg
        self.root = statements(agg.root)
        items, self._joins, self.decode = _level(agg, "_a0", _Aliases())
        self._items = ", ".join(items)
        self._wrapped: dict[str, str] = {}
        self.get = self.wrap(self.root.get, ())
        self.flat = FlatStatements(agg)

    def unshare(self) -> None:
        """Read without slots shared between kinds from now on: a table has drifted."""
        if self.flat.layout.share:
            log.warning(
                "aggregate %s: a column's type in the database is not the one its mapping"
                " declares; its reads of many roots no longer share columns between kinds"
                " (slower, same results): check the mapping against the tables",
                self.agg.entity.__qualname__,
            )
            self.flat = FlatStatements(self.agg, share=False)

    def wrap(self, inner: str, orders: Sequence[Order]) -> str:
        """`inner` (a SELECT of the root's columns) with the parents and children added."""
        found = self._wrapped.get(inner)
        if found is None:
            table = self.agg.root
            order = ""
            if orders:
                order = " ORDER BY " + ", ".join(
                    f"_a0.{quote(table.column_of(o.field))}{' DESC' if o.descending else ''}"
                    for o in orders
                )
            found = f"SELECT {self._items} FROM ({inner}) AS _a0{self._joins}{order}"
            self._wrapped[inner] = found
        return found


def aggregate_statements(agg: Aggregate[Any]) -> AggregateStatements:
    """The (cached) statements of `agg`."""
    found: AggregateStatements | None = agg.__dict__.get("_statements")
    if found is None:
        found = AggregateStatements(agg)
        agg.__dict__["_statements"] = found
    return found


class PgAggregateReads(Generic[T]):
    """`AggregateReads` as one SQL statement per read."""

    __slots__ = ("_agg", "_reader", "_st")

    def __init__(self, reader: Runner, agg: Aggregate[T]) -> None:
        self._reader = reader
        self._agg = agg
        self._st = aggregate_statements(agg)

    async def get(self, key: Any) -> T:
        table = self._agg.root
        args = key if table.composite else (key,)
        row = await self._reader._run("fetchrow", self._st.get, args, table)
        if row is None:
            raise table.not_found(key)
        result: T = self._st.decode(row)
        return result

    async def get_many(self, keys: Sequence[Any]) -> list[T]:
        if not keys:
            return []
        table = self._agg.root
        aggregates, found_keys = await self._flat(
            self._st.root.get_many, (), table.keys_args(keys), numbered=False
        )
        found = dict(zip(found_keys, aggregates, strict=True))
        missing = [k for k in keys if k not in found]
        if missing:
            raise table.not_found(missing)
        return [found[k] for k in keys]

    async def find(
        self,
        conditions: Sequence[Condition],
        orders: Sequence[Order],
        limit: int | None,
        offset: int | None,
    ) -> list[T]:
        inner, args = self._st.root.select(conditions, orders, limit, offset)
        return (await self._flat(inner, orders, args))[0]

    async def page(
        self,
        conditions: Sequence[Condition],
        orders: Sequence[Order],
        after: tuple[Any, ...] | None,
        limit: int,
    ) -> tuple[list[T], bool]:
        inner, args = self._st.root.page(conditions, orders, after is not None)
        if after is not None:
            args.extend(after)
        args.append(limit + 1)
        found = (await self._flat(inner, orders, args))[0]
        return found[:limit], len(found) > limit

    async def _flat(
        self, inner: str, orders: Sequence[Order], args: Sequence[Any], *, numbered: bool = True
    ) -> tuple[list[T], list[Any]]:
        """The aggregates of the roots `inner` selects, read as flat rows, and their keys."""
        st = self._st
        root = self._agg.root
        rows = await self._reader.fetch(st.flat.wrap(inner, orders, numbered=numbered), args, root)
        if st.flat.drifted(rows):
            st.unshare()
            rows = await self._reader.fetch(
                st.flat.wrap(inner, orders, numbered=numbered), args, root
            )
        return st.flat.assemble(rows)

    def stream(
        self, conditions: Sequence[Condition], orders: Sequence[Order], prefetch: int
    ) -> Stream[T]:
        st = self._st
        inner, args = st.root.select(conditions, orders)
        result: Stream[T] = stream_rows(
            self._reader, st.wrap(inner, orders), args, st.decode, prefetch
        )
        return result
