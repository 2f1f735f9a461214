"""The rows a filter selects, found through an index where one answers it.

A filter that fixes the key, or every column of a unique constraint, by
equality selects at most one row: that row is found with one lookup (the
key, or the constraint's hash index) and then tested against the whole
filter, so the result is the same as a scan's, in constant time. Any other
filter scans the visible rows in their order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from repo._mapping import Table
from repo._query import Condition, Operator

from ._eval import matcher
from ._store import Row, Transaction

__all__ = ["select"]


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
    return None


def select(txn: Transaction, table: Table[Any], conditions: Sequence[Condition]) -> list[Row]:
    """The visible rows of `table` that satisfy every one of `conditions`."""
    match = matcher(table, conditions)
    fixed = {
        c.field: c.value
        for c in conditions
        if c.operator is Operator.EQ and c.value is not None and _hashable(c.value)
    }
    keys = _one(txn, table, fixed) if fixed else None
    if keys is None:
        return [row for _, row in txn.rows(table.name) if match(row)]
    found = []
    for key in keys:
        row = txn.get(table.name, key)
        if row is not None and match(row):
            found.append(row)
    return found


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True
