"""The rows a filter selects, found through an index where one answers it.

A filter that fixes the key, or every column of a unique constraint, by
equality selects at most one row: that row is found with one lookup (the
key, or the constraint's hash index). One that fixes the columns of a
foreign key or of a declared index (of plain types: numbers, text, uuid,
bool, dates and times, enums) finds its rows in that columns' hash index,
in the order a scan would meet them. Either way the rows found are then
tested against the whole filter, so the result is a scan's, without the
scan. Any other filter scans the visible rows in their order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from repo._mapping import Table
from repo._query import Condition, Operator
from repo._types import BUILTIN_KINDS

from ._store import Row, Transaction

__all__ = ["select"]

# Kinds whose equality is a hash's: no NaN, no json, no array.
_PLAIN = frozenset(
    {"int2", "int4", "int8", "numeric", "text", "uuid", "bool", "date", "timestamp"}
    | {"timestamptz", "time", "bytea"}
)


def _plain(table: Table[Any], fields: tuple[str, ...]) -> bool:
    for f in fields:
        spec = table.field(f)
        if spec.array or (spec.kind not in _PLAIN and spec.kind in BUILTIN_KINDS):
            return False
    return True


def _one(txn: Transaction, table: Table[Any], fixed: dict[str, Any]) -> list[Any] | None:
    """The keys of the (at most one) row `fixed` selects by a key or a unique constraint,
    or None when no key or unique constraint is fixed."""
    if all(f in fixed for f in table.key_fields):
        values = tuple(fixed[f] for f in table.key_fields)
        return [values if table.composite else values[0]]
    for unique in table.unique:
        if all(f in fixed for f in unique.fields):
            positions = tuple(table.field_names.index(f) for f in unique.fields)
            return txn.lookup(table.name, positions, tuple(fixed[f] for f in unique.fields))
    indexed = [fk.fields for fk in table.foreign_keys] + [ix.fields for ix in table.indexes]
    for declared in indexed:
        # A declared index serves a filter on its leading column(s), as a btree does.
        fields = tuple(f for f in declared if f in fixed) if declared[0] in fixed else ()
        if fields and _plain(table, fields):
            positions = tuple(table.field_names.index(f) for f in fields)
            values = tuple(fixed[f] for f in fields)
            return txn.lookup(table.name, positions, values, ordered=True)
    return None


def select(txn: Transaction, table: Table[Any], conditions: Sequence[Condition]) -> list[Row]:
    """The visible rows of `table` that satisfy every one of `conditions`."""
    match = txn.store.collation.matcher(table, conditions)
    fixed = {
        c.field: c.value
        for c in conditions
        if c.operator is Operator.EQ and c.value is not None and _hashable(c.value)
    }
    keys = _one(txn, table, fixed) if fixed else None
    if keys is None:
        keys = _any_of(txn, table, conditions, fixed)
    if keys is None:
        return [row for _, row in txn.rows(table.name) if match(row)]
    found = []
    for key in keys:
        row = txn.get(table.name, key)
        if row is not None and match(row):
            found.append(row)
    return found


def _any_of(
    txn: Transaction, table: Table[Any], conditions: Sequence[Condition], fixed: dict[str, Any]
) -> list[Any] | None:
    """The keys of the visible rows an `in_()` on an indexed column selects, one lookup per
    value, in scan order; None when no `in_()` is answered by an index."""
    for c in conditions:
        if c.operator is not Operator.IN or not all(_hashable(v) for v in c.value):
            continue
        found: set[Any] = set()
        for value in c.value:
            keys = _one(txn, table, {**fixed, c.field: value})
            if keys is None:
                break
            found.update(k for k in keys if txn.get(table.name, k) is not None)
        else:
            return sorted(found, key=txn.scan_key(table.name))
    return None


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True
