"""Client-side checks of values against a mapping, compiled once per column.

A value the column cannot hold is refused before any SQL is sent, with an
error that names the field and the value and says what to do, rather than a
driver message about "query argument $3" or, worse, a silent surprise (a
naive datetime taken as the server's local time, a bool stored as 1). The
checks are plain ``isinstance`` tests picked once per column, so the hot
paths pay a few attribute lookups per value, no reflection.

What each column takes, and the inline test of its common good values, is
its `Plan` (``_plans``); this module turns the plans into the generated
functions the hot paths call.
"""

from __future__ import annotations

import decimal
import re
import uuid
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ._plans import BASE_ENV, SCREEN_NOTHING, Plan, plan_of, shown
from ._types import enum_class
from .errors import DataError, InvalidQuery, NotNullViolation

if TYPE_CHECKING:
    from ._columns import ColumnSpec

__all__ = [
    "check_lines",
    "compile_check",
    "compile_filter_check",
    "compile_key_check",
    "compile_values_check",
    "plan_of",
    "shown",
]


# -- generated code ---------------------------------------------------------


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
    env.update(BASE_ENV)
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
        if fast == SCREEN_NOTHING:
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


def compile_filter_check(spec: ColumnSpec, table: str) -> Callable[[Any, str], None]:
    """What refuses a filter's value for one column: ``check(value, where)``.

    As `compile_check`, except that a ``numeric(p,s)`` column's filter takes
    any finite number and a ``varchar(n)``'s any text: its bind parameter is
    plain numeric or text, so ``price < 1e15`` is a fair question about a
    numeric(12,2), and it is never stored.
    """
    strict = compile_check(spec, table)
    if spec.kind not in ("numeric", "text") or spec.array or "(" not in spec.sql_type:
        return strict
    loose = compile_check(
        attrs.evolve(spec, sql_type=re.sub(r"\s*\([^)]*\)", "", spec.sql_type)), table
    )
    if spec.kind == "text":
        return loose

    def check(value: Any, where: str) -> None:
        if isinstance(value, decimal.Decimal) and not value.is_finite():
            strict(value, where)
        loose(value, where)

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


def compile_key_check(
    specs: ColumnSpec | tuple[ColumnSpec, ...], table: str
) -> Callable[[Any, str], Any]:
    """``check_key(key, where)``: `key` as looked up, or `InvalidQuery` naming it.

    A key of the wrong type cannot match any row, and PostgreSQL would only
    say "invalid input for query argument $1": it is refused here, on both
    backends, before any SQL is sent. Generated once per table, with the
    common good key tested inline. A composite key (several `specs`) is a
    tuple (or list) of one value per part, in order: it comes back a tuple.
    """
    if not isinstance(specs, tuple):
        return _single_key_check(specs, table)
    if len(specs) == 1:
        return _single_key_check(specs[0], table)
    parts = tuple(_single_key_check(spec, table) for spec in specs)
    names = ", ".join(spec.field for spec in specs)
    n = len(specs)

    def check_key(key: Any, where: str) -> Any:
        if type(key) is not tuple:
            if not isinstance(key, tuple | list):
                msg = (
                    f"{where}: {table} has a composite key ({names}): give a tuple of "
                    f"{n} values, got {shown(key)} ({type(key).__name__})"
                )
                raise InvalidQuery(msg)
            key = tuple(key)
        if len(key) != n:
            msg = (
                f"{where}: {table} has a composite key ({names}): give a tuple of {n} "
                f"values, got {len(key)}: {shown(key)}"
            )
            raise InvalidQuery(msg)
        return tuple([check(part, where) for check, part in zip(parts, key, strict=True)])

    return check_key


def _single_key_check(spec: ColumnSpec, table: str) -> Callable[[Any, str], Any]:
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
    env.update(BASE_ENV)
    lines = [
        "def check_key(key, where):",
        f"    if {fast}:",
        "        return key",
        "    return _slow(key, where)",
    ]
    exec("\n".join(lines), env)
    generated: Callable[[Any, str], Any] = env["check_key"]
    return generated
