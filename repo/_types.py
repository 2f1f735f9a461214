"""The SQL type of a field's annotation, and the enum conversions a row needs.

Also the one reading of a SQL type's spelling that the checks, the SQL and
the in-memory backend share: `kind_of` gives its canonical name (however it
is spelled: ``timestamp(3) with time zone`` is ``timestamptz``) and whether it
is an array of it.
"""

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
    "BUILTIN_KINDS",
    "check_enum",
    "decoder",
    "element_of",
    "enum_class",
    "enum_type_name",
    "kind_of",
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
}

# Canonical names of the built-in types, by their other spellings.
_ALIASES: Mapping[str, str] = {
    "bigint": "int8",
    "int8": "int8",
    "bigserial": "int8",
    "serial8": "int8",
    "integer": "int4",
    "int": "int4",
    "int4": "int4",
    "serial": "int4",
    "serial4": "int4",
    "smallint": "int2",
    "int2": "int2",
    "smallserial": "int2",
    "serial2": "int2",
    "numeric": "numeric",
    "decimal": "numeric",
    "double precision": "float8",
    "float8": "float8",
    "float": "float8",
    "real": "float4",
    "float4": "float4",
    "boolean": "bool",
    "bool": "bool",
    "text": "text",
    "varchar": "text",
    "character varying": "text",
    "timestamptz": "timestamptz",
    "timestamp with time zone": "timestamptz",
    "timestamp": "timestamp",
    "timestamp without time zone": "timestamp",
    "date": "date",
    "time": "time",
    "time without time zone": "time",
    "timetz": "timetz",
    "time with time zone": "timetz",
    "interval": "interval",
    "uuid": "uuid",
    "bytea": "bytea",
    "json": "json",
    "jsonb": "jsonb",
}

# Every canonical name `kind_of` gives a built-in type.
BUILTIN_KINDS = frozenset(_ALIASES.values())

_MODIFIERS = re.compile(r"\s*\([^)]*\)")
_ARRAY = re.compile(r"(?:\s*\[\s*\d*\s*\])+$|\s+array(?:\s*\[\s*\d*\s*\])?$")


def kind_of(sql_type: str) -> tuple[str, bool]:
    """The canonical name of `sql_type` and whether it is an array of that.

    ``"timestamp(3) with time zone"`` → ``("timestamptz", False)``,
    ``"integer[]"`` → ``("int4", True)``, ``"numeric(12, 2)"`` →
    ``("numeric", False)``; a name it does not know (an enum type) comes
    back lowercased, without its schema.
    """
    text = " ".join(sql_type.lower().split())
    array = False
    found = _ARRAY.search(text)
    if found is not None:
        array = True
        text = text[: found.start()]
    text = " ".join(_MODIFIERS.sub("", text).split())
    text = text.rpartition(".")[2].strip('"')
    return _ALIASES.get(text, text), array


def unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """``X | None`` → ``(X, True)``; anything else → ``(tp, False)``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(args) < len(typing.get_args(tp))
        return (args[0] if len(args) == 1 else tp), optional
    return tp, False


def element_of(tp: Any) -> tuple[Any, bool] | None:
    """For ``list[X]`` (or ``list[X | None]``) with X a scalar or an Enum: (X, X admits None).

    None for anything else, ``list[dict]``, ``list[Any]`` and a bare `list`
    included: those are JSON.
    """
    if typing.get_origin(tp) is not list:
        return None
    args = typing.get_args(tp)
    if len(args) != 1:
        return None
    element, optional = unwrap_optional(args[0])
    if element in _SCALARS or enum_class(element) is not None:
        return element, optional
    return None


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


def _scalar_type(tp: Any) -> str | None:
    if tp in _SCALARS:
        return _SCALARS[tp]
    found = enum_class(tp)
    return enum_type_name(found) if found is not None else None


def sql_type_of(tp: Any, where: str) -> str:
    """The SQL type for the annotation `tp` of `where`; `InvalidQuery` if there is none.

    A scalar maps to its type, ``list[X]`` of a scalar X to an array of X's
    type (``list[str]`` → ``text[]``), and ``dict``, ``list``, ``list[dict]``,
    ``list[Any]`` and ``Any`` to ``jsonb``.
    """
    scalar = _scalar_type(tp)
    if scalar is not None:
        return scalar
    element = element_of(tp)
    if element is not None:
        return f"{_scalar_type(element[0])}[]"
    base = typing.get_origin(tp) or tp
    if tp is Any or base in (dict, list):
        return "jsonb"
    msg = f"cannot infer the SQL type of {where} ({tp!r}): declare Column(type=...)"
    raise InvalidQuery(msg)


def _same(value: Any) -> Any:
    return value


def decoder(cls: type[enum.Enum] | None, *, array: bool = False) -> Callable[[Any], Any]:
    """What turns a column value into a field value: the Enum's lookup, else nothing.

    With `array`, the lookup of each element of a list.
    """
    if cls is None:
        return _same
    if array:
        return lambda v: None if v is None else [None if x is None else cls(x) for x in v]
    return lambda v: None if v is None else cls(v)
