"""Server defaults in memory: the expressions whose meaning is plain, and a refusal for the rest.

A column's ``server_default`` is SQL the server evaluates when a row leaves
the column out (a generated column) or when ``ON DELETE SET DEFAULT`` resets
it. The fake runs the expressions that mean one thing on every server:

- ``gen_random_uuid()``: a random (version 4) uuid;
- ``now()``, ``CURRENT_TIMESTAMP``, ``transaction_timestamp()``: the
  transaction's start time (the same for every row it writes);
  ``statement_timestamp()``: the statement's; ``clock_timestamp()``: the
  clock's, at each row;
- constants and casts of constants: ``0``, ``-1.5``, ``true``, ``NULL``,
  ``'x'``, ``'x'::text``, ``'{}'::jsonb``, ``'{}'::text[]``, ``'{a,b}'``
  (an array of plain, unquoted elements), ``(0)``.

Anything else (a sequence, a function of the user's, arithmetic) is refused
with `NotSupportedInMemory` when the table is first used, never guessed. Only
the defaults the fake may evaluate are read: those of generated columns and
of columns an ``ON DELETE SET DEFAULT`` resets; every other column always
receives its value from the entity.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import attrs

from repo._columns import ColumnSpec
from repo._mapping import Table
from repo._types import BUILTIN_KINDS
from repo.errors import NotSupportedInMemory

from ._values import coerce_value

__all__ = ["Clock", "Default", "column_defaults"]


class Clock(Protocol):
    """What a default reads of the transaction evaluating it."""

    @property
    def now(self) -> dt.datetime: ...

    @property
    def statement_now(self) -> dt.datetime: ...


Default = Callable[[Clock], Any]

_TIMES: dict[str, Callable[[Clock], dt.datetime]] = {
    "now()": lambda c: c.now,
    "current_timestamp": lambda c: c.now,
    "transaction_timestamp()": lambda c: c.now,
    "statement_timestamp()": lambda c: c.statement_now,
    "clock_timestamp()": lambda c: dt.datetime.now(dt.UTC),
}
_UUIDS = frozenset({"gen_random_uuid()"})
# A literal, then any number of casts (`::text`, `::character varying(3)[]`).
_CONSTANT = re.compile(
    r"""^(?P<literal>'(?:[^']|'')*'|[+-]?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|true|false|null)
        (?P<casts>(?:\s*::\s*[a-z_][a-z0-9_ ]*(?:\(\s*\d+\s*(?:,\s*\d+\s*)?\))?(?:\[\])*)*)$""",
    re.IGNORECASE | re.VERBOSE,
)
_TRUE = frozenset({"t", "true", "y", "yes", "on", "1"})
_FALSE = frozenset({"f", "false", "n", "no", "off", "0"})
_INTS = frozenset({"int2", "int4", "int8"})


def _strip(expression: str) -> str:
    text = expression.strip()
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1].strip()
    return text


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def _from_text(spec: ColumnSpec, text: str) -> Any:
    """A string literal read as the column's type reads its input."""
    kind = spec.kind
    if spec.array:
        inner = text.strip()
        if not (inner.startswith("{") and inner.endswith("}")) or any(
            c in inner[1:-1] for c in '{}"\\'
        ):
            raise ValueError(text)
        if not inner[1:-1].strip():
            return []
        element = attrs.evolve(spec, array=False)
        return [
            None if part.strip().upper() == "NULL" else _from_text(element, part.strip())
            for part in inner[1:-1].split(",")
        ]
    if kind in _INTS:
        return int(text.strip())
    if kind == "numeric":
        return decimal.Decimal(text.strip())
    if kind in ("float4", "float8"):
        return float(text.strip())
    if kind == "bool":
        word = text.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise ValueError(text)
    if kind == "uuid":
        return uuid.UUID(text.strip())
    if kind in ("json", "jsonb"):
        return json.loads(text)
    if kind == "date":
        return dt.date.fromisoformat(text.strip())
    if kind == "text" or kind not in BUILTIN_KINDS:
        # text, varchar, or an enum type (whose label the column stores)
        return text
    raise ValueError(text)


def _constant(spec: ColumnSpec, literal: str) -> Any:
    low = literal.lower()
    if low == "null":
        return None
    if literal.startswith("'"):
        return _from_text(spec, literal[1:-1].replace("''", "'"))
    if low in ("true", "false"):
        if spec.kind != "bool":
            raise ValueError(literal)
        return low == "true"
    if spec.kind in _INTS:
        return int(literal)
    if spec.kind == "numeric":
        return decimal.Decimal(literal)
    if spec.kind in ("float4", "float8"):
        return float(literal)
    raise ValueError(literal)


def _refuse(table: Table[Any], spec: ColumnSpec, why: str) -> NotSupportedInMemory:
    msg = (
        f"MemoryDatabase cannot evaluate the server default of {table.name}.{spec.column} "
        f"({spec.server_default!r}): {why}. It runs gen_random_uuid(), now() / "
        "CURRENT_TIMESTAMP / transaction_timestamp() / statement_timestamp() / "
        "clock_timestamp() and constants (or casts of them); give the field a value in "
        "the entity instead, or test this table on PostgreSQL (repo.testing.RollbackDatabase)"
    )
    return NotSupportedInMemory(msg)


def _default(table: Table[Any], spec: ColumnSpec) -> Default:
    expression = _strip(spec.server_default or "")
    word = expression.lower()
    if word in _TIMES:
        if spec.kind in ("timestamp", "date", "time", "timetz"):
            why = (
                f"on a {spec.sql_type} column its value depends on the session's TimeZone; "
                "declare the column timestamptz"
            )
            raise _refuse(table, spec, why)
        if spec.kind != "timestamptz":
            raise _refuse(table, spec, f"it makes a timestamptz, and the column is {spec.sql_type}")
        return _TIMES[word]
    if word in _UUIDS:
        if spec.kind != "uuid":
            raise _refuse(table, spec, f"it makes a uuid, and the column is {spec.sql_type}")
        return lambda _: uuid.uuid4()
    found = _CONSTANT.match(expression)
    if found is None:
        raise _refuse(table, spec, "it is neither a constant nor one of the functions it knows")
    try:
        value = coerce_value(table, spec.field, _constant(spec, found["literal"]))
    except (ValueError, ArithmeticError, TypeError) as exc:
        why = f"its constant is not a value of the column's type {spec.sql_type}"
        raise _refuse(table, spec, why) from exc
    if isinstance(value, (list, dict)):
        frozen = json.dumps(value)
        return lambda _: json.loads(frozen)
    return lambda _: value


def _used(table: Table[Any]) -> set[str]:
    """The fields whose server default the fake may evaluate: generated ones, and those
    an ``ON DELETE SET DEFAULT`` resets (every other column always gets its value)."""
    used = {c.field for c in table.columns if c.generated}
    for fk in table.foreign_keys:
        if (fk.on_delete or "").upper() == "SET DEFAULT":
            used.update(fk.fields)
    return used


def column_defaults(table: Table[Any]) -> dict[int, Default]:
    """The default of each column (by position) the fake may need, where one is declared.

    Raises `NotSupportedInMemory` naming the first such column whose default
    the fake cannot evaluate.
    """
    used = _used(table)
    return {
        i: _default(table, spec)
        for i, spec in enumerate(table.columns)
        if spec.field in used and spec.server_default and spec.server_default.strip()
    }
