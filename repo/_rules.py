"""`Check` and `Index`: the rules a `Table` declares beyond its key, unique and foreign keys.

A check is written with the filters' operator helpers (several ANDed), or as
SQL for the server with a Python predicate for `MemoryDatabase`. An index is
plain or unique, and partial with ``where=`` filters. Both are resolved here
against the mapping and named by the one convention (``ck_<table>_<name>``,
``ix_<table>_<cols>``, ``uq_<table>_<cols>`` for a unique index), and
`predicate_sql` writes their conditions as SQL with literal values, for the
DDL the migrations emit.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

import attrs

from ._columns import IndexSpec, check_identifier, server_name
from ._query import Condition, Fields, Operator, parse_filters
from .errors import InvalidQuery

__all__ = [
    "Check",
    "CheckSpec",
    "Index",
    "check_spec",
    "index_of",
    "predicate_sql",
    "refuse_names_twice",
    "unique_indexes",
]


class Ruled(Fields, Protocol):
    """What the rules need of the `Table` being made."""

    def column_of(self, name: str) -> str: ...


class Check:
    """A CHECK constraint: ``Check("fee_not_negative", fee=ge(0))``, named ``ck_<table>_<name>``.

    Written like a `find` filter: a value or an operator helper (`ge`, `lt`,
    `in_`, `not_in`, `like`, `between`, ``None`` for IS NULL, ...) per
    field, several ANDed. As in SQL, a row passes a check whose condition is
    NULL (unknown): ``fee=ge(0)`` lets a NULL fee through; add ``ne(None)``
    ... or make the column NOT NULL to refuse it.

    What the helpers cannot say takes ``sql=`` (the expression PostgreSQL
    checks) and ``test=`` (the same rule in Python for `MemoryDatabase`: it
    gets the entity and returns False for a row that breaks the rule; None,
    like SQL's NULL, passes). Without ``test=``, `MemoryDatabase` refuses
    the first write to the table with `NotSupportedInMemory`, naming the
    check, rather than guess. The keywords ``sql`` and ``test`` are taken:
    a field of either name is checked with ``sql=``.
    """

    __slots__ = ("filters", "name", "sql", "test")

    def __init__(
        self,
        name: str,
        /,
        *,
        sql: str | None = None,
        test: Callable[[Any], object] | None = None,
        **filters: object,
    ) -> None:
        self.name = check_identifier(name, "check name")
        if sql is not None and (not isinstance(sql, str) or not sql.strip()):
            msg = f"Check {name!r}: sql= takes the SQL expression to check, got {sql!r}"
            raise InvalidQuery(msg)
        if filters and (sql is not None or test is not None):
            msg = (
                f"Check {name!r}: give filters (fee=ge(0)) or sql= (with test= for "
                "MemoryDatabase), not both"
            )
            raise InvalidQuery(msg)
        if not filters and sql is None:
            msg = (
                f"Check {name!r} says nothing to check: give filters (fee=ge(0)), or "
                "sql='...' and test=<predicate on the entity>"
            )
            raise InvalidQuery(msg)
        given: object = test
        if given is not None and not callable(given):
            msg = f"Check {name!r}: test= takes a predicate on the entity, got {test!r}"
            raise InvalidQuery(msg)
        self.filters: Mapping[str, object] = dict(filters)
        self.sql = sql
        self.test = test

    def __repr__(self) -> str:
        if self.sql is not None:
            return f"Check({self.name!r}, sql={self.sql!r}, test={self.test!r})"
        given = ", ".join(f"{k}={v!r}" for k, v in self.filters.items())
        return f"Check({self.name!r}, {given})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Check):
            return NotImplemented
        mine = (self.name, self.filters, self.sql, self.test)
        return mine == (other.name, other.filters, other.sql, other.test)

    __hash__ = None  # type: ignore[assignment]


def _fields(given: tuple[object, ...]) -> tuple[str, ...]:
    """The fields of an index, in order; at least one."""
    if not given or not all(isinstance(f, str) for f in given):
        msg = f"Index needs its fields, each a field name, in order: got {given!r}"
        raise InvalidQuery(msg)
    return tuple(str(f) for f in given)


def _name(name: str | None) -> str | None:
    return None if name is None else check_identifier(name, "index name")


def _where(where: object) -> Mapping[str, object]:
    if where is None:
        return {}
    if not isinstance(where, Mapping):
        msg = f"Index where= takes filters as a dict ({{'returned_at': None}}), got {where!r}"
        raise InvalidQuery(msg)
    return dict(where)


class Index:
    """An index: ``Index("copy_id", unique=True, where={"returned_at": None})``.

    `fields` in order; `unique` makes it refuse a second row with the same
    values (NULLs never conflict); `where` makes it partial, written like
    `find` filters: only the rows matching it are indexed (and, for a
    unique index, must differ). The default name is ``ix_<table>_<cols>``,
    or ``uq_<table>_<cols>`` for a unique index; `name` overrides it (give
    one to tell apart two indexes on the same columns).
    """

    __slots__ = ("fields", "name", "unique", "where")

    def __init__(
        self,
        *fields: str,
        unique: bool = False,
        where: Mapping[str, object] | None = None,
        name: str | None = None,
    ) -> None:
        flag: object = unique
        if not isinstance(flag, bool):
            msg = f"Index unique= takes True or False, got {unique!r}"
            raise InvalidQuery(msg)
        self.fields = _fields(fields)
        self.unique = flag
        self.where = _where(where)
        self.name = _name(name)

    def __repr__(self) -> str:
        listed = ", ".join(repr(f) for f in self.fields)
        return f"Index({listed}, unique={self.unique}, where={self.where!r}, name={self.name!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Index):
            return NotImplemented
        mine = (self.fields, self.unique, self.where, self.name)
        return mine == (other.fields, other.unique, other.where, other.name)

    __hash__ = None  # type: ignore[assignment]


@attrs.frozen
class CheckSpec:
    """A resolved check: its server name, the SQL the server checks, and how the fake does.

    `conditions` (a check written with filters) or `test` (given with
    ``sql=``) say it in Python; `columns` are the columns its filters name.
    """

    name: str
    label: str
    sql: str
    conditions: tuple[Condition, ...]
    test: Callable[[Any], object] | None
    columns: tuple[str, ...]


def _conditions(table: Ruled, filters: Mapping[str, object], what: str) -> tuple[Condition, ...]:
    conditions = parse_filters(table, filters)
    for c in conditions:
        if c.operator in (Operator.IN, Operator.NOT_IN) and not c.value:
            msg = f"{what}: the {c.operator.name.lower()} filter on {c.field!r} is empty"
            raise InvalidQuery(msg)
        spec = table.field(c.field)
        if spec.array or spec.kind in ("json", "jsonb") or spec.python_type is bytes:
            msg = (
                f"{what}: {table.name}.{c.field} is {spec.sql_type}, which a rule cannot "
                "compare with filters: write it as Check(name, sql=..., test=...)"
            )
            raise InvalidQuery(msg)
    return conditions


def check_spec(table: Ruled, given: object) -> CheckSpec:
    """`given` (a `Check`) resolved for `table`: ``ck_<table>_<name>``, cut to 63 bytes."""
    if not isinstance(given, Check):
        msg = f"Table {table.name!r}: checks= takes Check(...) objects, got {given!r}"
        raise InvalidQuery(msg)
    check = given
    name = server_name(f"ck_{table.name}_{check.name}")
    if check.sql is not None:
        return CheckSpec(name, check.name, check.sql, (), check.test, ())
    conditions = _conditions(table, check.filters, f"Check {check.name!r} on {table.name}")
    columns = tuple(dict.fromkeys(table.column_of(c.field) for c in conditions))
    sql = predicate_sql(table, conditions)
    return CheckSpec(name, check.name, sql, conditions, None, columns)


def index_of(table: Ruled, index: Index) -> IndexSpec:
    """`index` resolved for `table`, named ``ix_``/``uq_<table>_<cols>`` unless it has a name."""
    for f in index.fields:
        table.field(f, purpose="indexes")
    if len(set(index.fields)) < len(index.fields):
        msg = f"Table {table.name!r}: the index {index.fields!r} names a field twice"
        raise InvalidQuery(msg)
    cols = "_".join(table.column_of(f) for f in index.fields)
    name = index.name or server_name(f"{'uq' if index.unique else 'ix'}_{table.name}_{cols}")
    where = _conditions(table, index.where, f"Index {name} on {table.name}")
    return IndexSpec(
        name,
        index.fields,
        unique=index.unique,
        where=where,
        where_sql=predicate_sql(table, where) if where else None,
    )


def refuse_names_twice(table: str, *names: str) -> None:
    """`InvalidQuery` if two of a table's constraints and indexes have one (server) name."""
    cut = [server_name(n) for n in names]
    twice = sorted({n for n in cut if cut.count(n) > 1})
    if twice:
        msg = (
            f"Table {table!r}: two constraints or indexes are named {twice[0]!r}: drop "
            "the repeated one, or give an Index its own name= (a Check its own name)"
        )
        raise InvalidQuery(msg)


def unique_indexes(
    table: str, fields: tuple[str, ...], indexes: Sequence[IndexSpec]
) -> list[tuple[str, ...]]:
    """The unique indexes an upsert's ON CONFLICT can use; `InvalidQuery` for a partial one
    on exactly `fields` (the server would need its WHERE to pick it)."""
    for ix in indexes:
        if ix.unique and ix.where and set(fields) == set(ix.fields):
            msg = (
                f"upsert on={fields!r}: the unique index {ix.name} of {table} is partial, "
                "and ON CONFLICT cannot use it without its WHERE: add the row with add() "
                "and catch UniqueViolation, or upsert on another unique key"
            )
            raise InvalidQuery(msg)
    return [ix.fields for ix in indexes if ix.unique and not ix.where]


def _literal(value: object) -> str:
    """`value` as a quoted SQL literal; the server reads it as the compared column's type."""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = (
            repr(value)
            if math.isfinite(value)
            else ("NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity"))
        )
    elif isinstance(value, dt.timedelta):
        text = f"{value.days} days {value.seconds} seconds {value.microseconds} microseconds"
    elif isinstance(value, dt.date | dt.time):
        text = value.isoformat()
    elif isinstance(value, str | int | Decimal | uuid.UUID):
        text = str(value)
    else:
        msg = (
            f"a rule cannot write {value!r} ({type(value).__name__}) as SQL: "
            "write it as Check(name, sql=..., test=...)"
        )
        raise InvalidQuery(msg)
    return "'" + text.replace("'", "''") + "'"


def predicate_sql(table: Ruled, conditions: Sequence[Condition]) -> str:
    """The conditions as one SQL expression with literal values (ANDed), for DDL."""
    parts = []
    for c in conditions:
        column = '"' + table.column_of(c.field).replace('"', '""') + '"'
        op = c.operator
        if c.value is None:
            parts.append(f"{column} IS {'NOT ' if op is Operator.NE else ''}NULL")
        elif op in (Operator.IN, Operator.NOT_IN):
            listed = ", ".join(_literal(v) for v in c.value)
            parts.append(f"{column} {op.value.upper()} ({listed})")
        elif op is Operator.BETWEEN:
            low, high = c.value
            parts.append(f"{column} BETWEEN {_literal(low)} AND {_literal(high)}")
        else:
            parts.append(f"{column} {op.value.upper()} {_literal(c.value)}")
    return " AND ".join(parts)
