"""The values asyncpg would refuse to send for a column, refused in memory the same way.

asyncpg encodes each argument for its column's type before anything reaches
the server, so a value of the wrong type is a `DataError` that leaves the
transaction usable. The fake checks the same thing, before its statement.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from repo._mapping import Table
from repo._query import Condition, Operator
from repo._types import enum_class
from repo.errors import DataError

__all__ = ["check_conditions", "check_row", "check_value"]

_ACCEPTED: dict[Any, tuple[type, ...]] = {
    str: (str,),
    int: (int,),
    float: (int, float, Decimal),
    Decimal: (int, float, Decimal),
    bool: (bool,),
    dt.datetime: (dt.datetime,),
    dt.date: (dt.date,),
    uuid.UUID: (uuid.UUID, str),
}


def _accepted(tp: Any) -> tuple[type, ...] | None:
    if enum_class(tp) is not None:
        return (str,)
    return _ACCEPTED.get(tp)


def check_value(table: Table[Any], field: str, value: Any) -> None:
    """`DataError` unless `value` (not None) can travel to `field`'s column."""
    if value is None:
        return
    spec = table.field(field)
    accepted = _accepted(spec.python_type)
    if accepted is not None and not isinstance(value, accepted):
        expected = getattr(spec.python_type, "__name__", str(spec.python_type))
        msg = (
            f"invalid input for {table.name}.{field}: {value!r} "
            f"(expected {expected}, got {type(value).__name__})"
        )
        raise DataError(msg)


def check_row(table: Table[Any], values: Sequence[Any]) -> None:
    for field, value in zip(table.field_names, values, strict=True):
        check_value(table, field, value)


def check_conditions(table: Table[Any], conditions: Iterable[Condition]) -> None:
    for c in conditions:
        if c.operator in (Operator.IN, Operator.NOT_IN, Operator.BETWEEN):
            for v in c.value:
                check_value(table, c.field, v)
        elif c.operator not in (Operator.LIKE, Operator.ILIKE):
            check_value(table, c.field, c.value)
