"""The SQL type of a field's annotation, and the enum conversions a row needs."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import re
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from .errors import InvalidQuery

__all__ = [
    "check_enum",
    "decoder",
    "enum_class",
    "enum_type_name",
    "sql_type_of",
    "unwrap_optional",
]

_SCALARS: Mapping[Any, str] = {
    str: "text",
    int: "bigint",
    bool: "boolean",
    float: "double precision",
    decimal.Decimal: "numeric",
    dt.datetime: "timestamp with time zone",
    dt.date: "date",
    dt.time: "time without time zone",
    dt.timedelta: "interval",
    uuid.UUID: "uuid",
    bytes: "bytea",
    dict: "jsonb",
    list: "jsonb",
}


def unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """``X | None`` → ``(X, True)``; anything else → ``(tp, False)``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(args) < len(typing.get_args(tp))
        return (args[0] if len(args) == 1 else tp), optional
    return tp, False


def enum_type_name(cls: type[enum.Enum]) -> str:
    """The PostgreSQL enum type of `cls` by convention: its name in snake_case."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", cls.__name__).lower()


def enum_class(tp: Any) -> type[enum.Enum] | None:
    """`tp` if it is an Enum class, else None."""
    return tp if isinstance(tp, type) and issubclass(tp, enum.Enum) else None


def check_enum(cls: type[enum.Enum], where: str) -> None:
    """Refuse an Enum whose members would not reach the server as their text labels."""
    if not issubclass(cls, str):
        msg = (
            f"{where} is the Enum {cls.__name__}, whose members are not strings: "
            "make it a StrEnum (PostgreSQL enum labels are text)"
        )
        raise InvalidQuery(msg)


def sql_type_of(tp: Any, where: str) -> str:
    """The SQL type for the annotation `tp` of `where`; `InvalidQuery` if there is none."""
    base = typing.get_origin(tp) or tp
    if base in _SCALARS:
        return _SCALARS[base]
    if tp is Any:
        return "jsonb"
    if isinstance(base, type) and issubclass(base, enum.Enum):
        return enum_type_name(base)
    msg = f"cannot infer the SQL type of {where} ({tp!r}): declare Column(type=...)"
    raise InvalidQuery(msg)


def _same(value: Any) -> Any:
    return value


def decoder(cls: type[enum.Enum] | None) -> Callable[[Any], Any]:
    """What turns a column value into a field value: the Enum's lookup, else nothing."""
    if cls is None:
        return _same
    return lambda v: None if v is None else cls(v)
