"""Hash indexes of the in-memory store: the rows holding given values in given columns.

One `Index` per (table, columns) that a unique constraint, a foreign key or
a lookup needs, so that a unique check, a foreign-key check or a key lookup
costs one dict access instead of a scan of the table. Values are compared
as a btree index on the server compares them: NaN equals NaN, and a row
with a NULL in the indexed columns is in no entry (NULLs are distinct).
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections.abc import Iterable
from typing import Any

__all__ = ["Index", "index_key"]

Row = tuple[Any, ...]


class _NaN:
    """Stands for every NaN in an index key: on the server NaN equals NaN."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NaN"


NAN = _NaN()


def _hashable(value: Any) -> Any:
    kind = type(value)
    if kind is float:
        return NAN if math.isnan(value) else value
    if kind is decimal.Decimal:
        return NAN if value.is_nan() else value
    if kind is list:
        return ("[]", tuple(_hashable(v) for v in value))
    if kind is dict:
        return ("{}", frozenset((k, _hashable(v)) for k, v in value.items()))
    if kind is dt.time and value.tzinfo is not None:
        # timetz: equal only with the same offset, where Python's == compares in UTC
        return ("timetz", value.replace(tzinfo=None), value.utcoffset())
    return value


def index_key(values: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The entry `values` go under, or None when one is NULL (such a row is in no entry)."""
    if None in values:
        return None
    return tuple(_hashable(v) for v in values)


class Index:
    """The keys of the rows holding each tuple of values at `positions`."""

    __slots__ = ("entries", "positions")

    def __init__(self, positions: tuple[int, ...], rows: Iterable[tuple[Any, Row]] = ()) -> None:
        self.positions = positions
        self.entries: dict[tuple[Any, ...], set[Any]] = {}
        for key, row in rows:
            self.add(key, row)

    def _entry(self, row: Row) -> tuple[Any, ...] | None:
        return index_key(tuple(row[i] for i in self.positions))

    def add(self, key: Any, row: Row) -> None:
        entry = self._entry(row)
        if entry is not None:
            self.entries.setdefault(entry, set()).add(key)

    def remove(self, key: Any, row: Row) -> None:
        entry = self._entry(row)
        if entry is None:
            return
        keys = self.entries.get(entry)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self.entries[entry]

    def get(self, values: tuple[Any, ...]) -> set[Any]:
        """The keys of the rows holding `values` (empty when one of them is NULL)."""
        entry = index_key(values)
        if entry is None:
            return set()
        return self.entries.get(entry, set())
