"""Client-side checks of values against a mapping, compiled once per column.

A value the column cannot hold is refused before any SQL is sent, with an
error that names the field and the value and says what to do, rather than a
driver message about "query argument $3" or, worse, a silent surprise (a
naive datetime taken as the server's local time, a bool stored as 1). The
checks are plain ``isinstance`` tests picked once per column, so the hot
paths pay a few attribute lookups per value, no reflection.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

from ._types import enum_class
from .errors import DataError, NotNullViolation

if TYPE_CHECKING:
    from ._mapping import ColumnSpec

__all__ = ["Check", "compile_check", "compile_values_check"]

# Checks a non-None value: returns an error message, or None if it is fine.
Check = Callable[[Any], str | None]

_INT_BITS = {"smallint": 16, "int2": 16, "integer": 32, "int": 32, "int4": 32}
_NUMERIC = re.compile(r"^(?:numeric|decimal)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)$", re.IGNORECASE)


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


def _numeric(sql_type: str) -> Check:
    found = _NUMERIC.match(sql_type)
    limit = None
    if found:
        precision, scale = int(found[1]), int(found[2] or 0)
        limit = decimal.Decimal(10) ** (precision - scale)

    def check(value: Any) -> str | None:
        if not isinstance(value, decimal.Decimal | int) or isinstance(value, bool):
            return "a Decimal (or int; floats are refused: they are not exact)"
        if limit is not None and isinstance(value, decimal.Decimal) and not value.is_finite():
            return f"a finite Decimal for {sql_type}"
        if limit is not None and abs(decimal.Decimal(value)) >= limit:
            return f"a number below {limit} in absolute value, for {sql_type}: it overflows"
        return None

    return check


def _timestamptz(value: Any) -> str | None:
    if not isinstance(value, dt.datetime):
        return "an aware datetime"
    if value.tzinfo is None or value.utcoffset() is None:
        return (
            "an aware datetime, but this one is naive (no tzinfo) and timestamptz would "
            "read it in the server's time zone: use an aware datetime (tzinfo), "
            "e.g. datetime.now(UTC)"
        )
    return None


def _date(value: Any) -> str | None:
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        return "a date (not a datetime)"
    return None


def _float(value: Any) -> str | None:
    if not isinstance(value, float | int) or isinstance(value, bool):
        return "a float"
    return None


def _of(kind: type | tuple[type, ...], what: str) -> Check:
    def check(value: Any) -> str | None:
        return None if isinstance(value, kind) else what

    return check


def _bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else "a bool"


def _enum(cls: type[Any]) -> Check:
    labels = frozenset(m.value for m in cls)

    def check(value: Any) -> str | None:
        if isinstance(value, cls) or (isinstance(value, str) and value in labels):
            return None
        return f"a {cls.__name__} member (one of {', '.join(sorted(labels))})"

    return check


def _for_type(spec: ColumnSpec) -> Check | None:
    tp = spec.python_type
    sql = spec.sql_type.lower()
    if enum_class(tp) is not None:
        return _enum(tp)
    if tp is str:
        return _text
    if tp is bool:
        return _bool
    if tp is int:
        return _integer(_INT_BITS.get(sql, 64))
    if tp is float:
        return _float
    if tp is decimal.Decimal:
        return _numeric(sql)
    if tp is dt.datetime:
        return _timestamptz if "with time zone" in sql or sql == "timestamptz" else None
    if tp is dt.date:
        return _date
    if tp is dt.time:
        return _of(dt.time, "a time")
    if tp is dt.timedelta:
        return _of(dt.timedelta, "a timedelta")
    if tp is uuid.UUID:
        return _of((uuid.UUID, str), "a UUID")
    if tp is bytes:
        return _of((bytes, bytearray, memoryview), "bytes")
    return None


def _fast(spec: ColumnSpec, v: str) -> str | None:
    """A Python expression on `v` true for the common good values; None: no shortcut."""
    tp = spec.python_type
    if tp is str:
        return f'(type({v}) is str and "\\x00" not in {v} and {v}.isascii())'
    if tp is int:
        bits = _INT_BITS.get(spec.sql_type.lower(), 64)
        return f"(type({v}) is int and {-(2 ** (bits - 1))} <= {v} <= {2 ** (bits - 1) - 1})"
    if tp is bool:
        return f"(type({v}) is bool)"
    if tp is dt.datetime and _for_type(spec) is _timestamptz:
        return f"(type({v}) is _datetime and {v}.tzinfo is _utc)"
    if tp is decimal.Decimal:
        found = _NUMERIC.match(spec.sql_type)
        if found is None:
            return f"(type({v}) is _Decimal and {v}.is_finite())"
        digits = int(found[1]) - int(found[2] or 0)
        return f"(type({v}) is _Decimal and {v}.is_finite() and {v}.adjusted() < {digits})"
    return None


def _screen(spec: ColumnSpec, v: str) -> str | None:
    """Like `_fast`, for a screen: "" where the driver or server refuses every bad value."""
    tp = spec.python_type
    if tp is str:
        # Not a str: the driver refuses it; a NUL or a lone surrogate: the
        # server or the encoder does.
        return ""
    if tp is int:
        # A bool is an int the driver would store as 0 or 1: refused here.
        # Out of range: the driver refuses it.
        return f"(type({v}) is int)"
    if tp is decimal.Decimal:
        # NaN would be stored; a float would be rounded: refused here.
        # Past the column's precision: the server refuses it.
        return f"(type({v}) is _Decimal and {v}.is_finite())"
    return _fast(spec, v)


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
    a naive datetime): a wrong type, an int out of range, a NUL in a text or a
    numeric overflow fail the statement anyway, and `screened` callers then
    check again precisely (see ``_bulk.records``).
    """
    env.update(_datetime=dt.datetime, _utc=dt.UTC, _Decimal=decimal.Decimal)
    origin = 'where if where.__class__ is str else f"entity #{where}"'
    lines = []
    for i, spec in enumerate(specs):
        if i in skip:
            continue
        v = names[i]
        env[f"_check_{v}"] = compile_check(spec, table)
        optional = spec.nullable or spec.generated
        fast = _screen(spec, v) if screen else _fast(spec, v)
        if fast == "":
            continue
        if fast is None:
            if _for_type(spec) is None and optional:
                continue
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
    of_type = _for_type(spec)
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
                msg = f"{name} takes {wanted}; {where} has {value!r} ({type(value).__name__})"
                raise DataError(msg)

    return check
