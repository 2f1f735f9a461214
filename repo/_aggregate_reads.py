"""Aggregates read by composing table reads: a backend without one-statement reads (memory).

Each read runs in one transaction of its session (`Session.atomic_session`),
so the root, its parents and its children come from one snapshot, as the
one statement of PostgreSQL sees them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from ._aggregate import Aggregate
from ._contract import Session
from ._query import Condition, Order, in_, parse_filters
from ._stream import Stream

__all__ = ["ComposedReads", "assemble"]

T = TypeVar("T")


class ComposedReads(Generic[T]):
    """`AggregateReads` built on a session's `TableOps`: roots first, then parents and children."""

    def __init__(self, session: Session, aggregate: Aggregate[T]) -> None:
        self._session = session
        self._aggregate = aggregate

    async def get(self, key: Any) -> T:
        agg = self._aggregate
        async with self._session.atomic_session() as s:
            root = await s.ops(agg.root).get(key)
            return (await assemble(s, agg, [root]))[0]

    async def get_many(self, keys: Sequence[Any]) -> list[T]:
        agg = self._aggregate
        async with self._session.atomic_session() as s:
            roots = await s.ops(agg.root).get_many(keys)
            return await assemble(s, agg, roots)

    async def find(
        self,
        conditions: Sequence[Condition],
        orders: Sequence[Order],
        limit: int | None,
        offset: int | None,
    ) -> list[T]:
        agg = self._aggregate
        async with self._session.atomic_session() as s:
            roots = await s.ops(agg.root).find(conditions, orders, limit, offset)
            return await assemble(s, agg, roots)

    async def page(
        self,
        conditions: Sequence[Condition],
        orders: Sequence[Order],
        after: tuple[Any, ...] | None,
        limit: int,
    ) -> tuple[list[T], bool]:
        agg = self._aggregate
        async with self._session.atomic_session() as s:
            roots, more = await s.ops(agg.root).page(conditions, orders, after, limit)
            return await assemble(s, agg, roots), more

    def stream(
        self, conditions: Sequence[Condition], orders: Sequence[Order], prefetch: int
    ) -> Stream[T]:
        return Stream(_Batches(self.find(conditions, orders, None, None), prefetch))


class _Batches(Generic[T]):
    """A stream's source over a read made at its first batch."""

    def __init__(self, read: Any, prefetch: int) -> None:
        self._read = read
        self._prefetch = prefetch
        self._rows: list[T] | None = None
        self._at = 0

    async def batch(self) -> list[T]:
        if self._rows is None:
            self._rows = await self._read
        batch = self._rows[self._at : self._at + self._prefetch]
        self._at += len(batch)
        return batch

    async def close(self) -> None:
        if self._rows is None:
            self._read.close()  # never awaited: close the coroutine, or Python warns
        self._rows = []


def _match(fields: tuple[str, ...], values: list[tuple[Any, ...]]) -> dict[str, Any]:
    """Filters for rows whose `fields` may hold one of `values` (exact match is the caller's)."""
    return {f: in_(sorted({v[i] for v in values}, key=repr)) for i, f in enumerate(fields)}


async def assemble(session: Session, agg: Aggregate[T], roots: Sequence[Any]) -> list[T]:
    """The aggregates of `roots`: their parents and children read, a table at a time."""
    if not roots:
        return []
    root_values = [agg.root.values(r) for r in roots]
    names = agg.root.field_names
    parts: dict[str, list[Any]] = {agg.root_field: list(roots)}
    for one in agg.ones:
        at = [names.index(f) for f in one.link.fields]
        refs = [tuple(v[i] for i in at) for v in root_values]
        wanted = sorted({r for r in refs if None not in r}, key=repr)
        found: dict[tuple[Any, ...], Any] = {}
        if wanted:
            table = one.table
            rows = await session.ops(table).find(
                parse_filters(table, _match(one.link.targets, wanted)), (), None, None
            )
            targets = [table.field_names.index(f) for f in one.link.targets]
            for row in rows:
                values = table.values(row)
                found[tuple(values[i] for i in targets)] = row
        parts[one.name] = [found.get(r) for r in refs]
    for many in agg.manys:
        at = [names.index(f) for f in many.link.targets]
        keys = [tuple(v[i] for i in at) for v in root_values]
        wanted = sorted({k for k in keys if None not in k}, key=repr)
        groups: dict[tuple[Any, ...], list[Any]] = {}
        if wanted:
            table = many.table
            rows = await session.ops(table).find(
                parse_filters(table, _match(many.link.fields, wanted)), many.orders, None, None
            )
            fk = [table.field_names.index(f) for f in many.link.fields]
            refs = [tuple(table.values(r)[i] for i in fk) for r in rows]
            children: list[Any] = rows
            if many.node is not None:
                children = await assemble(session, many.node, rows)
            for ref, child in zip(refs, children, strict=True):
                groups.setdefault(ref, []).append(child)
        parts[many.name] = [groups.get(k, []) for k in keys]
    columns = [parts[name] for name in agg.field_names]
    return [agg.make(*values) for values in zip(*columns, strict=True)]
