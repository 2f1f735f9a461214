"""Conditions and orders evaluated in Python, with PostgreSQL's semantics.

NULL never satisfies a comparison (``ne``, ``not_in`` included), but
``x NOT IN ()`` holds for every row and ``x IN ()`` for none; ``None``
filters are IS [NOT] NULL; LIKE's ``%`` and ``_`` are wildcards and a
backslash escapes the next character; ILIKE lowers the pattern and the text
one character at a time (as ``lower()`` in a UTF-8 database with a libc
locale: no final sigma, no special folds) and then matches as LIKE;
ascending order puts NULLs last and descending puts them first. A float's
NaN equals NaN and is greater than every number; an enum compares in the
order its labels are declared. Text compares by code point, as under the
"C" collation.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from repo._columns import ColumnSpec
from repo._mapping import Table
from repo._query import Condition, Operator, Order
from repo._types import BUILTIN_KINDS, enum_class

__all__ = ["after", "matcher", "sorter"]

Row = tuple[Any, ...]


Key = Callable[[Any], Any]

# The one character whose full lowercase (str.lower) is not its simple one.
_DOTTED_I = "\u0130"


def simple_lower(text: str) -> str:
    """`text` lowered one character at a time, as PostgreSQL's ``lower()`` in a UTF-8 database.

    str.lower applies Unicode's full mappings: a final sigma becomes ς and
    İ becomes two characters. The server maps each character alone (libc's
    towlower), which the first character of its lowercase gives.
    """
    if "\u03a3" not in text and _DOTTED_I not in text:
        return text.lower()
    return "".join(ch.lower()[0] for ch in text)


@functools.lru_cache(maxsize=256)
def like_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """The regular expression equivalent to a LIKE pattern (ILIKE: to test lowered text)."""
    out = []
    chars = iter(simple_lower(pattern) if ignore_case else pattern)
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
    return re.compile("".join(out), re.DOTALL)


def _float_key(value: Any) -> Any:
    return (1, 0.0) if math.isnan(value) else (0, value)


def _decimal_key(value: Any) -> Any:
    return (1, 0) if value.is_nan() else (0, value)


def _timetz_key(value: Any) -> Any:
    """A timetz as PostgreSQL orders it: by the time in UTC (not wrapped at midnight), then
    east before west; equal only with the same offset (12:00+02 is not 10:00+00)."""
    offset = value.utcoffset() // dt.timedelta(microseconds=1)
    micros = ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000
    return (micros + value.microsecond - offset, -offset)


def _json_key(value: Any) -> Any:
    """jsonb as it compares: true is not 1 (a tuple stands apart from every JSON value)."""
    if value is True or value is False:
        return ("bool", value)
    if isinstance(value, dict):
        return {k: _json_key(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_key(v) for v in value]
    return value


def _array_key(element: Key | None) -> Key:
    """An array as it compares: element by element, a NULL element above every value."""
    if element is None:
        return lambda value: tuple((1,) if v is None else (0, v) for v in value)
    return lambda value: tuple((1,) if v is None else (0, element(v)) for v in value)


@functools.lru_cache(maxsize=512)
def key_of(spec: ColumnSpec) -> Key | None:
    """What a stored value of `spec`'s column compares as, where Python's own comparison is
    not the server's; None: as it is."""
    cls = enum_class(spec.element_type)
    key: Key | None = None
    if cls is not None and spec.kind not in BUILTIN_KINDS:
        rank = {member: i for i, member in enumerate(cls)}
        key = lambda value: rank[cls(value)]  # noqa: E731
    elif spec.kind in ("float4", "float8"):
        key = _float_key
    elif spec.kind == "numeric":
        key = _decimal_key
    elif spec.kind == "jsonb":
        key = _json_key
    elif spec.kind == "timetz":
        key = _timetz_key
    return _array_key(key) if spec.array else key


def _keyed(op: Operator, value: Any, key: Key) -> Any:
    if op in (Operator.IN, Operator.NOT_IN):
        return [key(v) for v in value]
    if op is Operator.BETWEEN:
        return (key(value[0]), key(value[1]))
    return key(value)


def _members(values: Any) -> Any:
    """The values of an IN list as a set (one hash per row, not a scan), where they hash;
    `in` finds the same members in either."""
    try:
        return frozenset(values)
    except TypeError:
        return values


def _test(op: Operator, value: Any, key: Key | None = None) -> Callable[[Any], bool]:
    if value is None:
        if op is Operator.EQ:
            return lambda v: v is None
        return lambda v: v is not None
    if op in (Operator.IN, Operator.NOT_IN) and not value:
        # Nothing to compare with, so no NULL to yield: IN () is false, NOT IN () true.
        holds = op is Operator.NOT_IN
        return lambda v: holds
    if key is not None and op not in (Operator.LIKE, Operator.ILIKE):
        test = _test(op, _keyed(op, value, key))
        return lambda v: v is not None and test(key(v))
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
        case Operator.LIKE:
            regex = like_regex(value, False)
            return lambda v: v is not None and regex.fullmatch(str(v)) is not None
        case Operator.ILIKE:
            regex = like_regex(value, True)
            return lambda v: v is not None and regex.fullmatch(simple_lower(str(v))) is not None


def matcher(table: Table[Any], conditions: Sequence[Condition]) -> Callable[[Row], bool]:
    """A predicate on stored rows (values in column order) for every condition at once."""
    tests = [
        (table.field_names.index(c.field), _test(c.operator, c.value, key_of(table.field(c.field))))
        for c in conditions
    ]

    def match(row: Row) -> bool:
        return all(test(row[i]) for i, test in tests)

    return match


def _getter(table: Table[Any], field: str) -> Callable[[Row], Any]:
    """A row's value of `field`, as it compares (see `key_of`); None stays None."""
    i = table.field_names.index(field)
    key = key_of(table.field(field))
    if key is None:
        return lambda row: row[i]
    return lambda row: None if row[i] is None else key(row[i])


def _compare(a: Any, b: Any) -> int:
    # NULL sorts as larger than every value, as in PostgreSQL.
    if a is None:
        return 0 if b is None else 1
    if b is None:
        return -1
    return -1 if a < b else (1 if a > b else 0)


def sorter(table: Table[Any], orders: Sequence[Order]) -> Callable[[list[Row]], list[Row]]:
    """Sorts rows by `orders`: NULLS LAST ascending, NULLS FIRST descending."""
    keys = [(_getter(table, o.field), -1 if o.descending else 1) for o in orders]

    def compare(x: Row, y: Row) -> int:
        for get, sign in keys:
            c = _compare(get(x), get(y))
            if c:
                return sign * c
        return 0

    key = functools.cmp_to_key(compare)
    return lambda rows: sorted(rows, key=key) if keys else list(rows)


def after(
    table: Table[Any], orders: Sequence[Order], values: Sequence[Any]
) -> Callable[[Row], bool]:
    """The keyset condition ``(a, b) > (x, y)`` (``<`` when descending) of a page."""
    getters = [_getter(table, o.field) for o in orders]
    keys = [key_of(table.field(o.field)) for o in orders]
    descending = bool(orders) and orders[0].descending
    bound = tuple(v if k is None or v is None else k(v) for k, v in zip(keys, values, strict=True))

    def test(row: Row) -> bool:
        mine = tuple(get(row) for get in getters)
        return mine < bound if descending else mine > bound

    return test
