"""Filters, operators and ordering: validated against a mapping, backend-neutral.

A query is parsed once into `Condition`s and `Order`s that name fields the
mapping knows. The Postgres backend renders them to SQL; the in-memory backend
evaluates them in Python. Anything unknown is refused here, with
`InvalidQuery`, before any SQL exists.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol

import attrs

from ._types import BUILTIN_KINDS
from .errors import DataError, InvalidQuery, InvalidState

if TYPE_CHECKING:
    from ._columns import ColumnSpec

__all__ = [
    "Condition",
    "Fields",
    "Op",
    "Operator",
    "Order",
    "RowLock",
    "between",
    "eq",
    "ge",
    "gt",
    "ilike",
    "in_",
    "le",
    "like",
    "lt",
    "ne",
    "not_in",
    "parse_filters",
    "parse_order",
    "row_lock",
]


class Operator(enum.Enum):
    """The comparison a filter makes; `None` values become IS [NOT] NULL."""

    EQ = "="
    NE = "<>"
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    IN = "in"
    NOT_IN = "not in"
    LIKE = "like"
    ILIKE = "ilike"
    BETWEEN = "between"


class Fields(Protocol):
    """What filters and orders need of a mapping (a `Table`): its name, fields and checks."""

    @property
    def name(self) -> str: ...

    def field(self, name: str, *, purpose: str = ...) -> ColumnSpec: ...

    def check_value(self, field: str, value: Any, where: str) -> None: ...

    def check_filter_value(self, field: str, value: Any, where: str) -> None: ...


_MANY: Final = (Operator.IN, Operator.NOT_IN, Operator.BETWEEN)

_BY_NAME: Final = {op.name.lower(): op for op in Operator} | {op.value: op for op in Operator}


def _operator(name: object) -> Operator:
    if isinstance(name, Operator):
        return name
    if isinstance(name, str) and name.lower() in _BY_NAME:
        return _BY_NAME[name.lower()]
    known = ", ".join(sorted(op.name.lower() for op in Operator))
    msg = f"unknown filter operator {name!r}: use one of {known}"
    raise InvalidQuery(msg)


@attrs.frozen
class Op:
    """A filter value with an operator: ``find(price=gt(10))``.

    Build it with the helpers (`eq`, `ne`, `lt`, `le`, `gt`, `ge`, `in_`,
    `not_in`, `like`, `ilike`, `between`) or as ``Op("gt", 10)``; an operator
    name that is not one of those raises `InvalidQuery`.
    """

    operator: Operator = attrs.field(converter=_operator)
    value: Any


def eq(value: object) -> Op:
    """``field = value`` (``IS NULL`` for `None`)."""
    return Op(Operator.EQ, value)


def ne(value: object) -> Op:
    """``field <> value`` (``IS NOT NULL`` for `None`); rows where field is NULL never match."""
    return Op(Operator.NE, value)


def lt(value: object) -> Op:
    """``field < value``."""
    return Op(Operator.LT, value)


def le(value: object) -> Op:
    """``field <= value``."""
    return Op(Operator.LE, value)


def gt(value: object) -> Op:
    """``field > value``."""
    return Op(Operator.GT, value)


def ge(value: object) -> Op:
    """``field >= value``."""
    return Op(Operator.GE, value)


def in_(values: Iterable[object]) -> Op:
    """``field IN (values)``; an empty collection matches nothing."""
    return Op(Operator.IN, values)


def not_in(values: Iterable[object]) -> Op:
    """``field NOT IN (values)``; an empty collection matches every non-NULL field."""
    return Op(Operator.NOT_IN, values)


def like(pattern: str) -> Op:
    """``field LIKE pattern`` (``%`` and ``_`` are wildcards, case-sensitive)."""
    return Op(Operator.LIKE, pattern)


def ilike(pattern: str) -> Op:
    """``field ILIKE pattern``: LIKE, ignoring case."""
    return Op(Operator.ILIKE, pattern)


def between(low: object, high: object) -> Op:
    """``field BETWEEN low AND high`` (both ends included)."""
    return Op(Operator.BETWEEN, (low, high))


@attrs.frozen
class Condition:
    """One validated filter: `field` is an attribute name the mapping knows."""

    field: str
    operator: Operator
    value: Any

    @property
    def shape(self) -> tuple[str, Operator, bool]:
        """What the SQL text depends on: the field, the operator, and NULL-ness."""
        return (self.field, self.operator, self.value is None)


@attrs.frozen
class Order:
    """One ``order_by`` key: a field and a direction."""

    field: str
    descending: bool = False


_ORDERING: Final = (Operator.LT, Operator.LE, Operator.GT, Operator.GE, Operator.BETWEEN)


def _refuse_unsupported(table: Fields, spec: ColumnSpec, operator: Operator, value: object) -> None:
    """`InvalidQuery` for a comparison the column's type has no operator for.

    json has no equality at all; json and jsonb no order the two backends
    share; an array or JSON value in an IN list would be taken for a list of
    values by the driver.
    """
    if value is None and operator in (Operator.EQ, Operator.NE):
        return
    name = spec.field
    if spec.kind == "json" and not spec.array:
        msg = (
            f"{table.name}.{name} is json, which has no equality or order in PostgreSQL: "
            f"only {name}=None and ne(None) filter it; use jsonb to compare values"
        )
        raise InvalidQuery(msg)
    if spec.kind == "jsonb" and not spec.array and operator in _ORDERING:
        msg = (
            f"{operator.name.lower()} filter on {table.name}.{name}: jsonb values have no "
            "order to compare by (only eq and ne): compare a field inside it in hand-written SQL"
        )
        raise InvalidQuery(msg)
    if operator in (Operator.IN, Operator.NOT_IN) and (
        spec.array or spec.kind in ("json", "jsonb")
    ):
        what = f"an array ({spec.sql_type})" if spec.array else spec.kind
        msg = (
            f"{operator.name.lower()} filter on {table.name}.{name}: it is {what}, whose "
            "values cannot travel in an IN list: filter with eq() once per value"
        )
        raise InvalidQuery(msg)


def _textual(spec: ColumnSpec) -> bool:
    """Whether LIKE applies: a text column (or a str field of a type repo does not know)."""
    if spec.array:
        return False
    if spec.kind in BUILTIN_KINDS:
        return spec.kind == "text"
    return spec.python_type is str


def _ends_in_escape(pattern: str) -> bool:
    """Whether a LIKE pattern ends in a backslash that escapes nothing."""
    trailing = len(pattern) - len(pattern.rstrip("\\"))
    return trailing % 2 == 1


def _encodes(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def parse_filters(table: Fields, filters: Mapping[str, object]) -> tuple[Condition, ...]:
    """Validate ``**filters`` against `table` and return them as conditions."""
    conditions = []
    for name, raw in filters.items():
        spec = table.field(name)  # refuses unknown fields
        op = raw if isinstance(raw, Op) else Op(Operator.EQ, raw)
        value = op.value
        operator = op.operator
        _refuse_unsupported(table, spec, operator, value)
        if operator in (Operator.IN, Operator.NOT_IN):
            if value is None or isinstance(value, str | bytes) or not isinstance(value, Iterable):
                msg = (
                    f"{operator.name.lower()} filter on {name!r} needs a collection of values, "
                    f"got {value!r}"
                )
                raise InvalidQuery(msg)
            value = list(value)
            if any(v is None for v in value):
                msg = (
                    f"{operator.name.lower()} filter on {name!r} cannot hold None: "
                    f"filter with {name}=None (IS NULL) instead"
                )
                raise InvalidQuery(msg)
        elif operator is Operator.BETWEEN:
            if not (isinstance(value, tuple) and len(value) == 2) or None in value:
                msg = f"between filter on {name!r} needs two non-None bounds, got {value!r}"
                raise InvalidQuery(msg)
        elif value is None and operator not in (Operator.EQ, Operator.NE):
            msg = (
                f"{operator.name.lower()} filter on {name!r} cannot compare with None: "
                f"use {name}=None or ne(None)"
            )
            raise InvalidQuery(msg)
        if operator in (Operator.LIKE, Operator.ILIKE):
            if not isinstance(value, str):
                msg = (
                    f"{operator.name.lower()} filter on {name!r} needs a str pattern, got {value!r}"
                )
                raise InvalidQuery(msg)
            if not _textual(spec):
                msg = f"{operator.name.lower()} filter on {name!r}: only text fields match patterns"
                raise InvalidQuery(msg)
            if _ends_in_escape(value):
                # PostgreSQL refuses it only once a row's text reaches the end
                # of the pattern; refused up front, the outcome does not
                # depend on the data, on either backend.
                msg = (
                    f"{operator.name.lower()} filter on {name!r}: the pattern {value!r} ends "
                    "in its escape character (a backslash): escape it too (\\\\) to match one"
                )
                raise DataError(msg)
            if "\x00" in value or not _encodes(value):
                # The server refuses the parameter itself, whatever the rows.
                msg = (
                    f"{operator.name.lower()} filter on {name!r}: the pattern {value!r} holds a "
                    "NUL or a lone surrogate, which PostgreSQL's text cannot hold"
                )
                raise DataError(msg)
        elif value is not None:
            where = f"the {operator.name.lower()} filter on {name}"
            for v in value if operator in _MANY else (value,):
                table.check_filter_value(name, v, where)
        conditions.append(Condition(name, operator, value))
    return tuple(conditions)


def parse_order(table: Fields, order_by: str | Sequence[str] | None) -> tuple[Order, ...]:
    """Validate ``order_by`` (a field name, ``-name`` for descending, or a sequence of them)."""
    if order_by is None:
        return ()
    keys = (order_by,) if isinstance(order_by, str) else tuple(order_by)
    orders = []
    for key in keys:
        if not isinstance(key, str) or not key.lstrip("-"):
            msg = f"order_by takes field names ('name' or '-name'), got {key!r}"
            raise InvalidQuery(msg)
        descending = key.startswith("-")
        name = key[1:] if descending else key
        spec = table.field(name, purpose="order_by")
        if spec.kind in ("json", "jsonb") and not spec.array:
            msg = (
                f"order_by {name!r}: {table.name}.{name} is {spec.kind}, which has no order "
                "to sort by: sort by another field"
            )
            raise InvalidQuery(msg)
        orders.append(Order(name, descending))
    return tuple(orders)


def check_limit(limit: int | None, offset: int | None) -> None:
    """Refuse a limit or offset that is not a non-negative int."""
    for label, value in (("limit", limit), ("offset", offset)):
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 0
        ):
            msg = f"{label} must be a non-negative int or None, got {value!r}"
            raise InvalidQuery(msg)


@attrs.frozen
class RowLock:
    """A validated row-lock clause: ``FOR UPDATE`` or ``FOR SHARE``, and how to meet a
    row another transaction holds: wait (the default), skip it, or fail at once."""

    exclusive: bool
    skip_locked: bool = False
    nowait: bool = False

    @property
    def sql(self) -> str:
        """The clause, as PostgreSQL takes it after LIMIT and OFFSET."""
        mode = " FOR UPDATE" if self.exclusive else " FOR SHARE"
        if self.skip_locked:
            return f"{mode} SKIP LOCKED"
        return f"{mode} NOWAIT" if self.nowait else mode


def row_lock(  # noqa: PLR0917 (the flags in the order the repository methods take them)
    method: str,
    keeps_locks: bool,
    for_update: bool = False,
    for_share: bool = False,
    skip_locked: bool = False,
    nowait: bool = False,
) -> RowLock | None:
    """The `RowLock` the keyword arguments of `method` ask for, or `None`.

    `InvalidQuery` for a combination PostgreSQL has no clause for;
    `InvalidState` for a lock on a session that does not keep it beyond the
    call (the pool, where every call is its own transaction).
    """
    given: dict[str, object] = {
        "for_update": for_update,
        "for_share": for_share,
        "skip_locked": skip_locked,
        "nowait": nowait,
    }
    for name, value in given.items():
        if not isinstance(value, bool):
            msg = f"{method}({name}=...) takes True or False, got {value!r}"
            raise InvalidQuery(msg)
    if for_update and for_share:
        msg = f"{method}() takes for_update=True or for_share=True, not both"
        raise InvalidQuery(msg)
    if skip_locked and nowait:
        msg = (
            f"{method}() takes skip_locked=True (pass over rows others hold) or nowait=True "
            "(fail on them), not both"
        )
        raise InvalidQuery(msg)
    if not (for_update or for_share):
        if skip_locked or nowait:
            which = "skip_locked" if skip_locked else "nowait"
            msg = f"{method}({which}=True) needs for_update=True or for_share=True"
            raise InvalidQuery(msg)
        return None
    if not keeps_locks:
        msg = (
            f"{method}() with a row lock outside a unit of work: the lock would end with its "
            "own statement. Take it inside `async with YourUnitOfWork(db) as uow:`"
        )
        raise InvalidState(msg)
    return RowLock(exclusive=for_update, skip_locked=skip_locked, nowait=nowait)
