"""What each column takes: a check per SQL type, and its inline shortcut.

A column's `Plan` says what a bad value should have been (`check`, for the
message) and gives a Python expression true for the common good values
(`fast`), which the code generated in ``_checks`` tests inline before
calling the check. What a column takes follows its SQL type
(`ColumnSpec.kind`), so that a declared ``timestamptz(3)``, ``integer`` or
``real`` is checked as such; a type this module does not know is checked by
the field's annotation.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
import struct
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ._json import JsonRefused, json_text
from ._plans_time import date_check, timestamp_check, timestamptz_check, timetz_check
from ._types import enum_class

if TYPE_CHECKING:
    from ._columns import ColumnSpec

__all__ = ["BASE_ENV", "SCREEN_NOTHING", "Check", "Plan", "plan_of", "shown"]

# Checks a non-None value: returns what the column takes (for the message),
# or None if the value is fine.
Check = Callable[[Any], str | None]

_INT_BITS = {"int8": 64, "int4": 32, "int2": 16}
_PRECISION = re.compile(r"\(\s*(\d+)\s*(?:,\s*(-?\d+)\s*)?\)")
_UUID_TEXT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32}"
)
# The largest magnitude a real (float4) holds, and the least that rounds past it.
_REAL_MAX = struct.unpack("f", struct.pack("I", 0x7F7FFFFF))[0]
_REAL_OVERFLOW = (2 - 2**-24) * 2.0**127
# PostgreSQL's numeric: up to 131072 digits before the point.
_NUMERIC_DIGITS = 131072


def shown(value: Any, limit: int = 80) -> str:
    """`value`'s repr, cut short: a message names a value, it does not print a document."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-2:]}"


@attrs.frozen
class Plan:
    """How one column's values are checked.

    `check` says what a bad value should have been. `fast` is a Python
    expression (on the variable ``{v}``) true for the common good values,
    which generated code tests inline before calling `check`; `screen` is
    the same for screened bulk loads ("" where the driver or the server
    refuses every bad value by itself; None: as `fast`). `env` holds the
    names those expressions use (``{v}`` is replaced in them too).
    """

    check: Check
    fast: str | None = None
    screen: str | None = None
    env: Mapping[str, Any] = attrs.field(factory=dict)


# -- the checks -----------------------------------------------------------


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return "a str"
    if "\x00" in value:
        return "text without NUL characters (PostgreSQL text cannot hold \\x00): strip them"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "text that is valid Unicode (it holds a lone surrogate)"
    return None


def _varchar(length: int, sql_type: str) -> Check:
    """Text for varchar(n): longer only by trailing spaces, which the server cuts off."""

    def check(value: Any) -> str | None:
        wanted = _text(value)
        if wanted is None and len(value) > length and value[length:].strip(" "):
            return (
                f"text of at most {length} characters for {sql_type} (this one has "
                f"{len(value)}): shorten it, or widen the column"
            )
        return wanted

    return check


def _integer(bits: int) -> Check:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def check(value: Any) -> str | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return "an int"
        if not low <= value <= high:
            return f"an int within [{low}, {high}] ({bits}-bit column): it is out of range"
        return None

    return check


def _rounding_limit(precision: int, scale: int) -> decimal.Decimal:
    """The smallest magnitude that overflows numeric(precision, scale) once rounded to scale.

    PostgreSQL rounds half away from zero: for numeric(12,2) that is
    9999999999.995, which would be stored as 10000000000.00.
    """
    whole = precision - scale
    if whole <= 0:
        return decimal.Decimal(f"0.{'0' * -whole}{'9' * precision}5")
    if scale < 0:
        return decimal.Decimal(f"{'9' * precision}5E{-scale - 1}")
    return decimal.Decimal(f"{'9' * whole}.{'9' * scale}5")


def _numeric(sql_type: str) -> tuple[Check, decimal.Decimal | None]:
    found = _PRECISION.search(sql_type)
    limit = None
    places = ""
    if found:
        precision, scale = int(found[1]), int(found[2] or 0)
        limit = _rounding_limit(precision, scale)
        places = f"{scale} decimal places" if scale >= 0 else f"{-scale} zeros"

    def check(value: Any) -> str | None:
        if not isinstance(value, decimal.Decimal | int) or isinstance(value, bool):
            return "a Decimal (or int; floats are refused: they are not exact)"
        number = decimal.Decimal(value)
        if limit is None:
            if number.is_snan():
                return "a Decimal that is not a signalling NaN"
            if number.is_finite() and number.adjusted() >= _NUMERIC_DIGITS:
                return f"a number with at most {_NUMERIC_DIGITS} digits before the point"
            return None
        if not number.is_finite():
            return f"a finite Decimal for {sql_type}"
        if abs(number) >= limit:
            return (
                f"a number below {limit} in absolute value, for {sql_type}: it overflows "
                f"once rounded to {places}"
            )
        return None

    return check, limit


def _float(value: Any) -> str | None:
    if isinstance(value, float):
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        return "a float"
    try:
        float(value)
    except OverflowError:
        return "a float (this int is too large for double precision)"
    return None


def _real(value: Any) -> str | None:
    wanted = _float(value)
    if wanted is not None:
        return wanted
    number = float(value)
    if math.isfinite(number) and abs(number) >= _REAL_OVERFLOW:
        return f"a float within ±{_REAL_MAX:.8g} (real is single precision): it is out of range"
    return None


def _bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else "a bool"


def _of(kind: type | tuple[type, ...], what: str) -> Check:
    def check(value: Any) -> str | None:
        return None if isinstance(value, kind) else what

    return check


def _uuid(value: Any) -> str | None:
    if isinstance(value, uuid.UUID):
        return None
    if isinstance(value, str):
        if _UUID_TEXT.fullmatch(value):
            return None
        return "a UUID, or the str of one (8-4-4-4-12 hex digits); this str is not one"
    return "a UUID"


def _json(jsonb: bool) -> Check:
    name = "jsonb" if jsonb else "json"

    def check(value: Any) -> str | None:
        try:
            json_text(value, jsonb=jsonb)
        except JsonRefused as exc:
            return (
                f"a value JSON can hold (dict, list, str, int, finite float, bool, None) "
                f"for {name}, but {exc}"
            )
        return None

    return check


def _enum(cls: type[Any]) -> Check:
    labels = frozenset(m.value for m in cls)

    def check(value: Any) -> str | None:
        if isinstance(value, cls) or (isinstance(value, str) and value in labels):
            return None
        return f"a {cls.__name__} member (one of {', '.join(sorted(labels))})"

    return check


def _array(element: Check | None, nullable: bool, sql_type: str) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, list | tuple):
            return f"a list for {sql_type} (a str is not one: wrap it, [value])"
        for i, item in enumerate(value):
            if item is None:
                if nullable:
                    continue
                return (
                    f"a list without None for {sql_type}, but element #{i} is None "
                    "(annotate the elements `X | None` to allow it)"
                )
            if isinstance(item, list | tuple):
                return f"a flat list for {sql_type} (arrays of arrays are not supported)"
            wanted = None if element is None else element(item)
            if wanted is not None:
                return f"a list of values each {wanted}, but element #{i} is {shown(item)}"
        return None

    return check


# -- a plan per column ------------------------------------------------------

# What a column of a type the checks do not know takes, by its annotation.
_BY_ANNOTATION: Mapping[Any, str] = {
    str: "text",
    int: "int8",
    bool: "bool",
    float: "float8",
    decimal.Decimal: "numeric",
    dt.date: "date",
    dt.time: "time",
    dt.timedelta: "interval",
    uuid.UUID: "uuid",
    bytes: "bytea",
}

SCREEN_NOTHING = ""


def _scalar_plan(kind: str, tp: Any, sql_type: str) -> Plan | None:
    """The plan for one value of SQL type `kind` (annotated `tp`); None: nothing to check."""
    cls = enum_class(tp)
    if cls is not None:
        return Plan(_enum(cls), "({v}.__class__ is _enum_{v})", env={"_enum_{v}": cls})
    declared = kind
    if kind not in _KNOWN:
        found = _BY_ANNOTATION.get(tp)
        if found is None:
            return None
        kind = found
    if kind == "text":
        fast = '(type({v}) is str and "\\x00" not in {v} and {v}.isascii())'
        # Not a str: the driver refuses it; a NUL or a lone surrogate: the
        # server or the encoder does; too long for a varchar(n): the server.
        declared_length = _PRECISION.search(sql_type) if declared == "text" else None
        if declared_length is None:
            return Plan(_text, fast, SCREEN_NOTHING)
        length = int(declared_length[1])
        fast = f"({fast[1:-1]} and len({{v}}) <= {length})"
        return Plan(_varchar(length, sql_type), fast, SCREEN_NOTHING)
    if kind in _INT_BITS:
        bits = _INT_BITS[kind]
        fast = f"(type({{v}}) is int and {-(2 ** (bits - 1))} <= {{v}} <= {2 ** (bits - 1) - 1})"
        # A bool is an int the driver would store as 0 or 1: refused here.
        # Out of range: the driver refuses it.
        return Plan(_integer(bits), fast, "(type({v}) is int)")
    if kind == "numeric":
        check, limit = _numeric(sql_type)
        finite = "(type({v}) is _Decimal and {v}.is_finite())"
        if limit is None:
            return Plan(check, finite)
        fast = "(type({v}) is _Decimal and {v}.is_finite() and -_limit_{v} < {v} < _limit_{v})"
        # NaN would be stored; a float would be rounded: refused here.
        # Past the column's precision: the server refuses it.
        return Plan(check, fast, finite, {"_limit_{v}": limit})
    if kind == "float8":
        # A bool would be stored as 1.0: refused here, by the type test.
        return Plan(_float, "(type({v}) is float)")
    if kind == "float4":
        fast = "(type({v}) is float and -_real_max <= {v} <= _real_max)"
        return Plan(_real, fast, "(type({v}) is float)", {"_real_max": _REAL_MAX})
    return _PLANS.get(kind)


_PLANS: Mapping[str, Plan] = {
    "bool": Plan(_bool, "(type({v}) is bool)"),
    "timestamptz": Plan(
        timestamptz_check, "(type({v}) is _datetime and {v}.tzinfo is _utc and 1 < {v}.year < 9999)"
    ),
    "timestamp": Plan(timestamp_check, "(type({v}) is _datetime and {v}.tzinfo is None)"),
    "date": Plan(date_check, "(type({v}) is _date)"),
    "time": Plan(_of(dt.time, "a time"), "(type({v}) is _time)"),
    "timetz": Plan(timetz_check, "(type({v}) is _time and {v}.tzinfo is _utc)"),
    "interval": Plan(_of(dt.timedelta, "a timedelta"), "(type({v}) is _timedelta)"),
    "uuid": Plan(_uuid, "(type({v}) is _UUID)"),
    "bytea": Plan(_of((bytes, bytearray, memoryview), "bytes"), "(type({v}) is bytes)"),
    # The json codecs refuse what is not JSON (see _codecs), so a screen
    # leaves these to them.
    "json": Plan(_json(jsonb=False), None, SCREEN_NOTHING),
    "jsonb": Plan(_json(jsonb=True), None, SCREEN_NOTHING),
}
_KNOWN = frozenset({"text", "numeric", "float8", "float4", *_INT_BITS, *_PLANS})


def plan_of(spec: ColumnSpec) -> Plan | None:
    """How values of the column `spec` are checked; None: any value goes."""
    if not spec.array:
        return _scalar_plan(spec.kind, spec.element_type, spec.sql_type)
    element = _scalar_plan(spec.kind, spec.element_type, spec.sql_type)
    return Plan(
        _array(None if element is None else element.check, spec.element_nullable, spec.sql_type)
    )


# The names the inline tests use, in every generated function.
BASE_ENV: Mapping[str, Any] = {
    "_datetime": dt.datetime,
    "_utc": dt.UTC,
    "_Decimal": decimal.Decimal,
    "_date": dt.date,
    "_time": dt.time,
    "_timedelta": dt.timedelta,
    "_UUID": uuid.UUID,
}
