"""Conditions and orders evaluated in Python, with PostgreSQL's semantics.

NULL never satisfies a comparison (``ne``, ``not_in`` included); ``None``
filters are IS [NOT] NULL; LIKE's ``%`` and ``_`` are wildcards and a
backslash escapes the next character; ascending order puts NULLs last and
descending puts them first. Text compares by code point, as under the "C"
collation.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from typing import Any

from repo._mapping import Table
from repo._query import Condition, Operator, Order

__all__ = ["after", "matcher", "sorter"]

Row = tuple[Any, ...]


@functools.lru_cache(maxsize=256)
def like_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """The regular expression equivalent to a LIKE pattern."""
    out = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            escaped = next(chars, None)
            if escaped is None:
                # A pattern ending in its escape character matches nothing.
                return re.compile("(?!)")
            out.append(re.escape(escaped))
        elif ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile("".join(out), flags)


def _members(values: Any) -> Any:
    """The values of an IN list as a set (one hash per row, not a scan), where they hash;
    `in` finds the same members in either."""
    try:
        return frozenset(values)
    except TypeError:
        return values


def _test(op: Operator, value: Any) -> Callable[[Any], bool]:
    if value is None:
        if op is Operator.EQ:
            return lambda v: v is None
        return lambda v: v is not None
    match op:
        case Operator.EQ:
            return lambda v: v is not None and v == value
        case Operator.NE:
            return lambda v: v is not None and v != value
        case Operator.LT:
            return lambda v: v is not None and v < value
        case Operator.LE:
            return lambda v: v is not None and v <= value
        case Operator.GT:
            return lambda v: v is not None and v > value
        case Operator.GE:
            return lambda v: v is not None and v >= value
        case Operator.IN:
            members = _members(value)
            return lambda v: v is not None and v in members
        case Operator.NOT_IN:
            members = _members(value)
            return lambda v: v is not None and v not in members
        case Operator.BETWEEN:
            low, high = value
            return lambda v: v is not None and low <= v <= high
        case Operator.LIKE | Operator.ILIKE:
            regex = like_regex(value, op is Operator.ILIKE)
            return lambda v: v is not None and regex.fullmatch(str(v)) is not None


def matcher(table: Table[Any], conditions: Sequence[Condition]) -> Callable[[Row], bool]:
    """A predicate on stored rows (values in column order) for every condition at once."""
    tests = [(table.field_names.index(c.field), _test(c.operator, c.value)) for c in conditions]

    def match(row: Row) -> bool:
        return all(test(row[i]) for i, test in tests)

    return match


def _compare(a: Any, b: Any) -> int:
    # NULL sorts as larger than every value, as in PostgreSQL.
    if a is None:
        return 0 if b is None else 1
    if b is None:
        return -1
    return -1 if a < b else (1 if a > b else 0)


def sorter(table: Table[Any], orders: Sequence[Order]) -> Callable[[list[Row]], list[Row]]:
    """Sorts rows by `orders`: NULLS LAST ascending, NULLS FIRST descending."""
    keys = [(table.field_names.index(o.field), -1 if o.descending else 1) for o in orders]

    def compare(x: Row, y: Row) -> int:
        for i, sign in keys:
            c = _compare(x[i], y[i])
            if c:
                return sign * c
        return 0

    key = functools.cmp_to_key(compare)
    return lambda rows: sorted(rows, key=key) if keys else list(rows)


def after(
    table: Table[Any], orders: Sequence[Order], values: Sequence[Any]
) -> Callable[[Row], bool]:
    """The keyset condition ``(a, b) > (x, y)`` (``<`` when descending) of a page."""
    positions = [table.field_names.index(o.field) for o in orders]
    descending = bool(orders) and orders[0].descending
    bound = tuple(values)

    def test(row: Row) -> bool:
        mine = tuple(row[i] for i in positions)
        return mine < bound if descending else mine > bound

    return test
