"""Writing whole aggregates through a session's `TableOps`, on either backend.

`add` inserts the root, then each kind of child in bulk (one `add_many` per
table and level). `update` reads the stored aggregate (one statement), works
out the difference, and writes only that: deletes (deepest first), updates of
changed rows, inserts in bulk. `delete` removes the children, deepest first,
then the root. The caller runs each in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import attrs

from ._aggregate import Aggregate, Many
from ._contract import Session
from ._mapping import Table
from .errors import InvalidQuery

__all__ = ["add_aggregate", "delete_aggregate", "update_aggregate"]

T = TypeVar("T")


def _targets(entity: Any, fields: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(getattr(entity, f) for f in fields)


def _with(entity: Any, fields: tuple[str, ...], values: tuple[Any, ...]) -> Any:
    if _targets(entity, fields) == values:
        return entity
    return attrs.evolve(entity, **dict(zip(fields, values, strict=True)))


def _entity(table: Table[Any], child: object) -> Any:
    """`child`, refused unless it is of `table`'s class (its values are checked once filled)."""
    if not isinstance(child, table.entity):
        msg = f"{table.name} stores {table.entity.__name__} objects, got {type(child).__name__}"
        raise InvalidQuery(msg)
    return child


def _fill(agg: Aggregate[Any], root: Any, ones: dict[str, Any]) -> Any:
    """The root, its references to the parents given filled in where None; a mismatch refused."""
    for one in agg.ones:
        parent = ones[one.name]
        if parent is None:
            continue
        wanted = _targets(parent, one.link.targets)
        if None in wanted:
            msg = (
                f"{agg.entity.__name__}.{one.name} is a {one.table.entity.__name__} not yet "
                f"stored ({', '.join(one.link.targets)} is None): add it first"
            )
            raise InvalidQuery(msg)
        held = _targets(root, one.link.fields)
        if all(v is None for v in held):
            root = _with(root, one.link.fields, wanted)
        elif held != wanted:
            msg = (
                f"{agg.entity.__name__}: the {agg.root.entity.__name__} references "
                f"{one.table.name} {held!r} through {one.link.fields!r}, but "
                f"{one.name} is {wanted!r}: make them agree"
            )
            raise InvalidQuery(msg)
    return root


def _same(table: Table[Any], given: Any, stored: Any) -> bool:
    """Whether writing `given` over `stored` would change nothing (a generated field
    left None keeps what is stored, as `update` does)."""
    for f, a, b in zip(table.field_names, table.values(given), table.values(stored), strict=True):
        if a != b and not (a is None and table.field(f).generated):
            return False
    return True


def _check_version(table: Table[Any], given: Any, stored: Any) -> None:
    v = table.version
    if v is not None and getattr(given, v) != getattr(stored, v):
        raise table.stale(table.key_of(stored), getattr(given, v))


async def _insert(session: Session, many: Many, pairs: list[tuple[Any, Any]]) -> None:
    """Insert children (each with the values of its parent's targets) in bulk, then theirs."""
    if not pairs:
        return
    node, table = many.node, many.table
    entities: list[Any] = []
    below: list[dict[str, list[Any]]] = []
    for targets, child in pairs:
        if node is not None:
            root, ones, manys = node.parts(child)
            root = _fill(node, root, ones)
            below.append(manys)
        else:
            root = _entity(table, child)
        entities.append(table.check_entity(_with(root, many.link.fields, targets)))
    stored: Any = await session.ops(table).add_many(entities, returning=True)
    if node is None:
        return
    for m in node.manys:
        await _insert(
            session,
            m,
            [
                (_targets(row, m.link.targets), c)
                for row, manys in zip(stored, below, strict=True)
                for c in manys[m.name]
            ],
        )


async def add_aggregate(session: Session, agg: Aggregate[Any], aggregate: Any) -> Any:
    """Insert the root and its children; return the root's key."""
    root, ones, manys = agg.parts(aggregate)
    stored = await session.ops(agg.root).add(agg.root.check_entity(_fill(agg, root, ones)))
    for m in agg.manys:
        targets = _targets(stored, m.link.targets)
        await _insert(session, m, [(targets, c) for c in manys[m.name]])
    return agg.root.key_of(stored)


class _Plan:
    """What an update writes: deletes (deepest first), updates, inserts."""

    def __init__(self) -> None:
        self.deletes: list[tuple[Table[Any], list[Any]]] = []
        self.updates: list[tuple[Table[Any], Any]] = []
        self.inserts: list[tuple[Many, list[tuple[Any, Any]]]] = []

    def __bool__(self) -> bool:
        return bool(self.deletes or self.updates or self.inserts)

    def drop(self, many: Many, stored: Sequence[Any]) -> None:
        """Delete stored children, and theirs before them."""
        if not stored:
            return
        table = many.table
        if many.node is not None:
            for m in many.node.manys:
                self.drop(m, [c for a in stored for c in getattr(a, m.name)])
            stored = [getattr(a, many.node.root_field) for a in stored]
        self.deletes.append((table, [table.key_of(c) for c in stored]))

    def diff(
        self, many: Many, targets: tuple[Any, ...], given: list[Any], stored: list[Any]
    ) -> None:
        node, table = many.node, many.table

        def root_of(child: Any) -> Any:
            return getattr(child, node.root_field) if node is not None else child

        held = {table.key_of(root_of(c)): c for c in stored}
        seen: set[Any] = set()
        new: list[tuple[Any, Any]] = []
        for child in given:
            if node is not None:
                root, ones, manys = node.parts(child)
                root = _fill(node, root, ones)
            else:
                root, manys = _entity(table, child), {}
            root = table.check_entity(_with(root, many.link.fields, targets))
            if table.lacks_key(root) or table.key_of(root) not in held:
                new.append((targets, child))
                continue
            key = table.key_of(root)
            if key in seen:
                name = table.entity.__name__
                msg = f"{many.name} holds two {name} with {table.describe_key(key)}"
                raise InvalidQuery(msg)
            seen.add(key)
            old = held[key]
            _check_version(table, root, root_of(old))
            if not _same(table, root, root_of(old)):
                self.updates.append((table, root))
            if node is not None:
                for m in node.manys:
                    below = _targets(root, m.link.targets)
                    self.diff(m, below, manys[m.name], list(getattr(old, m.name)))
        self.drop(many, [c for k, c in held.items() if k not in seen])
        if new:
            self.inserts.append((many, new))


async def update_aggregate(
    session: Session, agg: Aggregate[Any], aggregate: Any, stored: Any
) -> None:
    """Make the stored aggregate `stored` equal to `aggregate` (same key), writing only changes."""
    root, ones, manys = agg.parts(aggregate)
    table = agg.root
    root = table.check_entity(_fill(agg, root, ones))
    old = getattr(stored, agg.root_field)
    _check_version(table, root, old)
    plan = _Plan()
    for m in agg.manys:
        targets = _targets(root, m.link.targets)
        plan.diff(m, targets, manys[m.name], list(getattr(stored, m.name)))
    # A versioned root is bumped by any change to its aggregate, so that two
    # writers of one aggregate cannot both succeed from the same read.
    if not _same(table, root, old) or (plan and table.version is not None):
        await session.ops(table).update(root)
    await _run(session, plan)


async def _run(session: Session, plan: _Plan) -> None:
    for table, keys in plan.deletes:
        await session.ops(table).delete_many(keys)
    changed: dict[int, tuple[Table[Any], list[Any]]] = {}
    for table, entity in plan.updates:
        changed.setdefault(id(table), (table, []))[1].append(entity)
    for table, entities in changed.values():
        await session.ops(table).update_many(entities)
    for many, pairs in plan.inserts:
        await _insert(session, many, pairs)


async def delete_aggregate(session: Session, agg: Aggregate[Any], stored: Any) -> None:
    """Delete the stored aggregate `stored`: its children, deepest first, then its root."""
    plan = _Plan()
    for m in agg.manys:
        plan.drop(m, list(getattr(stored, m.name)))
    await _run(session, plan)
    table = agg.root
    await session.ops(table).delete(table.key_of(getattr(stored, agg.root_field)))
