"""Values as PostgreSQL stores them, for the in-memory backend.

The core (``repo/_checks.py``) has refused every value a column cannot
hold before a backend sees it, on both backends alike. What is left here is
what the server does to a value it accepts, so that the fake stores and
returns what PostgreSQL would: the str of a uuid is the UUID, a tuple for an
array is a list, jsonb goes through JSON (int keys become str, tuples
lists), a numeric is rounded to its scale (half away from zero) and has no
negative zero, a real to single precision, a timestamptz is returned in
UTC, a time loses its zone (a timetz keeps its offset, as a plain
`timezone`), bytes-likes are bytes. A value is coerced once, as it is written, or as a
filter is parsed.

`same` says whether two stored values are equal the way ``IS DISTINCT
FROM`` decides it: NaN equals NaN, json compares its text.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import json
import math
import re
import struct
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from repo._columns import ColumnSpec
from repo._json import json_text
from repo._mapping import Table
from repo._query import Condition, Operator

__all__ = ["coerce_conditions", "coerce_row", "coerce_value", "compared_value", "same"]

Coerce = Callable[[Any], Any]

_PRECISION = re.compile(r"\(\s*(\d+)\s*(?:,\s*(-?\d+)\s*)?\)")


def _same(value: Any) -> Any:
    return value


def _uuid(value: Any) -> Any:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(value)


def _bytes(value: Any) -> Any:
    return value if type(value) is bytes else bytes(value)


# One NaN of each kind, stored for every NaN: PostgreSQL holds NaN equal to
# NaN (a unique constraint refuses a second one), and Python's dicts and
# tuples find a NaN only as the same object.
_NAN = math.nan
_DECIMAL_NAN = decimal.Decimal("NaN")


def _real(value: Any) -> float:
    result: float = struct.unpack("f", struct.pack("f", value))[0]
    return _NAN if result != result else result  # noqa: PLR0124


def _double(value: Any) -> float:
    result = float(value)
    return _NAN if result != result else result  # noqa: PLR0124


def _decimal(value: Any) -> decimal.Decimal:
    result = decimal.Decimal(value)
    if result.is_nan():
        return _DECIMAL_NAN
    # PostgreSQL's numeric has no sign on zero: -0.000 is stored as 0.000.
    return result.copy_abs() if result.is_zero() else result


def _utc(value: Any) -> Any:
    return value if value.tzinfo is dt.UTC else value.astimezone(dt.UTC)


def _naive_time(value: Any) -> Any:
    return value if value.tzinfo is None else value.replace(tzinfo=None)


def _timetz(value: Any) -> Any:
    """An aware time with its offset as a plain, unnamed `timezone`, as the driver reads it."""
    offset = value.utcoffset()
    return value.replace(tzinfo=dt.timezone(offset) if offset else dt.UTC)


def _jsonb(value: Any) -> Any:
    return json.loads(json_text(value))


def _json(value: Any) -> Any:
    return json.loads(json_text(value, jsonb=False))


def _numeric(sql_type: str) -> Coerce:
    found = _PRECISION.search(sql_type)
    if found is None:
        return _decimal
    precision, scale = int(found[1]), int(found[2] or 0)
    step = decimal.Decimal(1).scaleb(-scale)
    context = decimal.Context(prec=max(precision, 1) + 2, rounding=decimal.ROUND_HALF_UP)

    def coerce(value: Any) -> decimal.Decimal:
        return _decimal(decimal.Decimal(value).quantize(step, context=context))

    return coerce


def _varchar(sql_type: str) -> Coerce | None:
    found = _PRECISION.search(sql_type)
    if found is None:
        return None
    length = int(found[1])
    # Checked: anything past `length` is spaces, which the server cuts off.
    return lambda value: value if len(value) <= length else value[:length]


def _scalar(spec: ColumnSpec) -> Coerce | None:
    kind = spec.kind
    if kind == "numeric":
        return _numeric(spec.sql_type)
    if kind == "text":
        return _varchar(spec.sql_type)
    return {
        "uuid": _uuid,
        "bytea": _bytes,
        "float4": _real,
        "float8": _double,
        "timestamptz": _utc,
        "time": _naive_time,
        "timetz": _timetz,
        "json": _json,
        "jsonb": _jsonb,
    }.get(kind)


def _array(element: Coerce | None) -> Coerce:
    if element is None:
        return list
    return lambda value: [None if v is None else element(v) for v in value]


@functools.lru_cache(maxsize=512)
def _coercions(table: Table[Any]) -> tuple[tuple[int, Coerce], ...]:
    """(position, coerce) of each column whose values the server changes."""
    found = []
    for i, spec in enumerate(table.columns):
        element = _scalar(spec)
        coerce = _array(element) if spec.array else element
        if coerce is not None:
            found.append((i, coerce))
    return tuple(found)


def coerce_row(table: Table[Any], values: Sequence[Any]) -> list[Any]:
    """`values` (a checked row, in column order) as PostgreSQL would store them."""
    row = list(values)
    for i, coerce in _coercions(table):
        if row[i] is not None:
            row[i] = coerce(row[i])
    return row


def coerce_value(table: Table[Any], field: str, value: Any) -> Any:
    """One checked value of `field` as PostgreSQL would store it."""
    if value is None:
        return None
    at = table.field_names.index(field)
    for i, coerce in _coercions(table):
        if i == at:
            return coerce(value)
    return value


def compared_value(table: Table[Any], field: str, value: Any) -> Any:
    """A filter's (or a looked-up key's) value as the server compares it with the column.

    As stored, except that a numeric is not rounded to the column's scale,
    nor a varchar(n) cut to its length: a bind parameter is plain numeric or
    text, so ``price = 0.125`` finds no 0.13.
    """
    spec = table.field(field)
    if value is None or spec.kind not in ("numeric", "text"):
        return coerce_value(table, field, value)
    element: Coerce = _decimal if spec.kind == "numeric" else _same
    if spec.array:
        return [None if v is None else element(v) for v in value]
    return element(value)


def coerce_conditions(table: Table[Any], conditions: Iterable[Condition]) -> list[Condition]:
    """`conditions` with their values as the server would compare them."""
    out = []
    for c in conditions:
        value = c.value
        if value is not None and c.operator not in (Operator.LIKE, Operator.ILIKE):
            if c.operator in (Operator.IN, Operator.NOT_IN):
                value = [compared_value(table, c.field, v) for v in value]
            elif c.operator is Operator.BETWEEN:
                value = tuple(compared_value(table, c.field, v) for v in value)
            else:
                value = compared_value(table, c.field, value)
        out.append(Condition(c.field, c.operator, value))
    return out


def _same_json(a: Any, b: Any) -> bool:
    """jsonb equality: numbers by value, bool apart from numbers, objects by key."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _same_scalar(a: Any, b: Any) -> bool:
    if a == b:
        return True
    if isinstance(a, float) and isinstance(b, float):
        return math.isnan(a) and math.isnan(b)
    if isinstance(a, decimal.Decimal) and isinstance(b, decimal.Decimal):
        return a.is_nan() and b.is_nan()
    return False


def same(spec: ColumnSpec, a: Any, b: Any) -> bool:
    """Whether stored values `a` and `b` of `spec`'s column are not distinct, as the server says."""
    if a is None or b is None:
        return a is None and b is None
    if spec.kind == "json" and not spec.array:
        return json_text(a, jsonb=False) == json_text(b, jsonb=False)
    if spec.kind == "jsonb" and not spec.array:
        return _same_json(a, b)
    if spec.array:
        return len(a) == len(b) and all(
            (x is None and y is None) or (x is not None and y is not None and _same_scalar(x, y))
            for x, y in zip(a, b, strict=True)
        )
    return _same_scalar(a, b)
