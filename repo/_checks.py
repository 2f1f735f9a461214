"""Client-side checks of values against a mapping, compiled once per column.

A value the column cannot hold is refused before any SQL is sent, with an
error that names the field and the value and says what to do, rather than a
driver message about "query argument $3" or, worse, a silent surprise (a
naive datetime taken as the server's local time, a bool stored as 1). The
checks are plain ``isinstance`` tests picked once per column, so the hot
paths pay a few attribute lookups per value, no reflection.

What a column takes follows its SQL type (`ColumnSpec.kind`), so that a
declared ``timestamptz(3)``, ``integer`` or ``real`` is checked as such;
a type it does not know is checked by the field's annotation.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
import struct
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ._codecs import JsonRefused, json_text
from ._types import enum_class
from .errors import DataError, InvalidQuery, NotNullViolation

if TYPE_CHECKING:
    from ._mapping import ColumnSpec

__all__ = ["Check", "compile_check", "compile_key_check", "compile_values_check", "shown"]

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


def _timestamptz(value: Any) -> str | None:
    if not isinstance(value, dt.datetime):
        return "an aware datetime"
    if value.tzinfo is None or value.utcoffset() is None:
        return (
            "an aware datetime, but this one is naive (no tzinfo) and timestamptz would "
            "read it in the server's time zone: use an aware datetime (tzinfo), "
            "e.g. datetime.now(UTC)"
        )
    try:
        value.astimezone(dt.UTC)
    except OverflowError:
        return (
            "an aware datetime that is still a datetime in UTC, where timestamptz stores it: "
            "this one falls outside the years 1 to 9999 there"
        )
    if value in _TZ_INFINITIES:
        return (
            "an aware datetime other than datetime.max or datetime.min in UTC: the driver "
            "stores those as infinity and -infinity, which read back as naive datetimes"
        )
    return None


_TZ_INFINITIES = (dt.datetime.max.replace(tzinfo=dt.UTC), dt.datetime.min.replace(tzinfo=dt.UTC))


def _timestamp(value: Any) -> str | None:
    if not isinstance(value, dt.datetime):
        return "a naive datetime"
    if value.tzinfo is not None and value.utcoffset() is not None:
        return (
            "a naive datetime, but this one is aware and timestamp (without time zone) would "
            "drop its zone: give it naive (in the zone you mean), or make the column timestamptz"
        )
    return None


def _date(value: Any) -> str | None:
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        return "a date (not a datetime)"
    return None


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

_SCREEN_NOTHING = ""


def _scalar_plan(kind: str, tp: Any, sql_type: str) -> Plan | None:
    """The plan for one value of SQL type `kind` (annotated `tp`); None: nothing to check."""
    cls = enum_class(tp)
    if cls is not None:
        return Plan(_enum(cls), "({v}.__class__ is _enum_{v})", env={"_enum_{v}": cls})
    if kind not in _KNOWN:
        found = _BY_ANNOTATION.get(tp)
        if found is None:
            return None
        kind = found
    if kind == "text":
        fast = '(type({v}) is str and "\\x00" not in {v} and {v}.isascii())'
        # Not a str: the driver refuses it; a NUL or a lone surrogate: the
        # server or the encoder does.
        return Plan(_text, fast, _SCREEN_NOTHING)
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
        _timestamptz, "(type({v}) is _datetime and {v}.tzinfo is _utc and 1 < {v}.year < 9999)"
    ),
    "timestamp": Plan(_timestamp, "(type({v}) is _datetime and {v}.tzinfo is None)"),
    "date": Plan(_date, "(type({v}) is _date)"),
    "time": Plan(_of(dt.time, "a time"), "(type({v}) is _time)"),
    "timetz": Plan(_of(dt.time, "a time"), "(type({v}) is _time)"),
    "interval": Plan(_of(dt.timedelta, "a timedelta"), "(type({v}) is _timedelta)"),
    "uuid": Plan(_uuid, "(type({v}) is _UUID)"),
    "bytea": Plan(_of((bytes, bytearray, memoryview), "bytes"), "(type({v}) is bytes)"),
    # The json codecs refuse what is not JSON (see _codecs), so a screen
    # leaves these to them.
    "json": Plan(_json(jsonb=False), None, _SCREEN_NOTHING),
    "jsonb": Plan(_json(jsonb=True), None, _SCREEN_NOTHING),
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


# -- generated code ---------------------------------------------------------

_BASE_ENV: Mapping[str, Any] = {
    "_datetime": dt.datetime,
    "_utc": dt.UTC,
    "_Decimal": decimal.Decimal,
    "_date": dt.date,
    "_time": dt.time,
    "_timedelta": dt.timedelta,
    "_UUID": uuid.UUID,
}


def _inline(plan: Plan, v: str, env: dict[str, Any], *, screen: bool) -> str | None:
    """`plan`'s inline test on the variable `v` (its names put in `env`)."""
    for name, value in plan.env.items():
        env[name.format(v=v)] = value
    test = plan.fast
    if screen and plan.screen is not None:
        test = plan.screen
    return None if test is None else test.format(v=v)


def compile_values_check(
    specs: Sequence[ColumnSpec], table: str
) -> Callable[[Sequence[Any], str | int], None]:
    """One function checking a row of values (in column order), generated once per table.

    Like attrs' generated ``__init__``: the common good values pass inline
    type tests with no call at all; anything else goes to the column's full
    check, which raises with the message. `where` names the values' origin
    for that message; an int n stands for "entity #n".
    """
    env: dict[str, Any] = {}
    names = [f"v{i}" for i in range(len(specs))]
    lines = ["def check_values(values, where):", f"    {', '.join(names)}, = values"]
    lines += check_lines(specs, table, names, env)
    if len(lines) == 2:
        lines.append("    return None")
    exec("\n".join(lines), env)
    generated: Callable[[Sequence[Any], str | int], None] = env["check_values"]
    return generated


def check_lines(
    specs: Sequence[ColumnSpec],
    table: str,
    names: Sequence[str],
    env: dict[str, Any],
    *,
    screen: bool = False,
    skip: Collection[int] = (),
) -> list[str]:
    """Source lines checking the variables `names` (one per column), for generated code.

    They read `where` (a str, or n for "entity #n") and fill `env` with what
    they call. Columns at `skip` are left out.

    With `screen`, only what the driver and the server would let through
    unnoticed is checked (a bool for an int, a NaN or a float for a numeric,
    a naive datetime): a wrong type, an int out of range, a NUL in a text, a
    numeric overflow or a value JSON cannot hold fail the statement anyway,
    and `screened` callers then check again precisely (see ``_bulk.records``).
    """
    env.update(_BASE_ENV)
    origin = 'where if where.__class__ is str else f"entity #{where}"'
    lines = []
    for i, spec in enumerate(specs):
        if i in skip:
            continue
        v = names[i]
        env[f"_check_{v}"] = compile_check(spec, table)
        optional = spec.nullable or spec.generated
        plan = plan_of(spec)
        if plan is None:
            if not optional:
                lines.append(f"    _check_{v}({v}, {origin})")
            continue
        fast = _inline(plan, v, env, screen=screen)
        if fast == _SCREEN_NOTHING:
            continue
        if fast is None:
            lines.append(f"    _check_{v}({v}, {origin})")
            continue
        if optional:
            fast = f"({v} is None or {fast})"
        lines.append(f"    if not {fast}:")
        lines.append(f"        _check_{v}({v}, {origin})")
    return lines


def compile_check(spec: ColumnSpec, table: str) -> Callable[[Any, str], None]:
    """What refuses a bad value for one column: ``check(value, where)``.

    `where` says which entity or filter the value came from, for the message.
    """
    plan = plan_of(spec)
    of_type = None if plan is None else plan.check
    required = not spec.nullable and not spec.generated
    name = f"{table}.{spec.field}"

    def check(value: Any, where: str) -> None:
        if value is None:
            if required:
                msg = (
                    f"{name} is NOT NULL but {where} has None: give it a value "
                    "(or make the field optional and migrate)"
                )
                raise NotNullViolation(msg, table=table, columns=(spec.column,))
            return
        if of_type is not None:
            wanted = of_type(value)
            if wanted is not None:
                msg = f"{name} takes {wanted}; {where} has {shown(value)} ({type(value).__name__})"
                raise DataError(msg)

    return check


def _key_value(spec: ColumnSpec) -> Callable[[Any], Any]:
    """What a key that passed its check is looked up as: one Python value per key.

    A uuid's str is the UUID it spells, an enum's label its member, and a
    bytes-like its bytes, so that both backends find the same row.
    """
    cls = enum_class(spec.element_type)
    if cls is not None:
        return cls
    if spec.kind == "uuid":
        return lambda key: key if isinstance(key, uuid.UUID) else uuid.UUID(key)
    if spec.kind == "bytea":
        return bytes
    return lambda key: key


def compile_key_check(spec: ColumnSpec, table: str) -> Callable[[Any, str], Any]:
    """``check_key(key, where)``: `key` as looked up, or `InvalidQuery` naming it.

    A key of the wrong type cannot match any row, and PostgreSQL would only
    say "invalid input for query argument $1": it is refused here, on both
    backends, before any SQL is sent. Generated once per table, with the
    common good key tested inline.
    """
    plan = plan_of(spec)
    of_type = None if plan is None else plan.check
    value_of = _key_value(spec)
    name = f"{table}.{spec.field}"

    def slow(key: Any, where: str) -> Any:
        if key is None:
            msg = f"{where}: {table} keys are never None"
            raise InvalidQuery(msg)
        wanted = None if of_type is None else of_type(key)
        if wanted is not None:
            msg = (
                f"{where}: {name} is the key, which takes {wanted}; "
                f"got {shown(key)} ({type(key).__name__})"
            )
            raise InvalidQuery(msg)
        return value_of(key)

    env: dict[str, Any] = {"_slow": slow}
    fast = None if plan is None else _inline(plan, "key", env, screen=False)
    if fast is None or spec.array:
        return slow
    env.update(_BASE_ENV)
    lines = [
        "def check_key(key, where):",
        f"    if {fast}:",
        "        return key",
        "    return _slow(key, where)",
    ]
    exec("\n".join(lines), env)
    generated: Callable[[Any, str], Any] = env["check_key"]
    return generated
