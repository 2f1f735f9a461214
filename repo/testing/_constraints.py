"""The constraints PostgreSQL enforces at each row, checked in memory from the mappings.

NOT NULL from each column's nullability, the CHECK constraints (a condition
that is NULL passes, as in SQL), the primary key, the declared unique
constraints and unique indexes (a partial one only among the rows its WHERE
matches; NULLs never conflict; NaN equals NaN), looked up in the store's
hash indexes. Foreign keys, which the server checks at the end of each
statement, are in `_foreign_keys`. The errors carry the table, constraint
(named as the server stores it: 63 bytes at most) and columns that the
Postgres backend reports for the same violation.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from repo._columns import server_name
from repo._mapping import Table
from repo._query import Operator
from repo.errors import CheckViolation, NotNullViolation, NotSupportedInMemory, UniqueViolation

from ._eval import matcher
from ._store import Row, Transaction

__all__ = ["Uniques", "check_commit", "check_not_null", "check_rules"]


def check_not_null(table: Table[Any], row: Row) -> None:
    """NOT NULL, then the CHECK constraints: what the server checks of a row before its indexes."""
    for spec, value in zip(table.columns, row, strict=True):
        if value is None and not spec.nullable:
            msg = (
                f"NotNullViolation: a constraint on {table.name!r} (columns: {spec.column}) "
                f'violated: null value in column "{spec.column}" of relation "{table.name}" '
                "violates not-null constraint"
            )
            raise NotNullViolation(msg, table=table.name, columns=(spec.column,))
    if table.checks:
        check_rules(table, row)


def _key(value: Any) -> tuple[int, Any]:
    """A number as PostgreSQL orders it: NaN equals NaN and is above every other value."""
    nan = value.is_nan() if isinstance(value, Decimal) else value != value  # noqa: PLR0124
    return (1, 0) if nan else (0, value)


def _numeric(table: Table[Any], condition: Any) -> Callable[[Row], bool]:
    """A comparison of a float or numeric column, with NaN where PostgreSQL puts it."""
    at = table.field_names.index(condition.field)
    op, value = condition.operator, condition.value
    if op in (Operator.IN, Operator.NOT_IN):
        keys = {_key(v) for v in value}
        return lambda row: (_key(row[at]) in keys) == (op is Operator.IN)
    if op is Operator.BETWEEN:
        low, high = _key(value[0]), _key(value[1])
        return lambda row: low <= _key(row[at]) <= high
    compare = _COMPARE[op]
    bound = _key(value)
    return lambda row: compare(_key(row[at]), bound)


_COMPARE: dict[Operator, Callable[[Any, Any], bool]] = {
    Operator.EQ: operator.eq,
    Operator.NE: operator.ne,
    Operator.LT: operator.lt,
    Operator.LE: operator.le,
    Operator.GT: operator.gt,
    Operator.GE: operator.ge,
}


def _fails(table: Table[Any], conditions: Any) -> Callable[[Row], bool]:
    """Whether a row makes a check's conditions FALSE: NULL (unknown) passes, as in SQL."""
    tests = []
    for c in conditions:
        spec = table.field(c.field)
        numeric = c.value is not None and spec.python_type in (float, Decimal)
        test = _numeric(table, c) if numeric else matcher(table, (c,))
        tests.append((c.value is None, table.field_names.index(c.field), test))
    return lambda row: any(
        (is_null or row[i] is not None) and not test(row) for is_null, i, test in tests
    )


def check_rules(table: Table[Any], row: Row) -> None:
    """The table's CHECK constraints, on a row about to be written, in name order as the server."""
    for ck in sorted(table.checks, key=lambda c: c.name):
        if ck.conditions:
            failed = _fails(table, ck.conditions)(row)
        elif ck.test is not None:
            failed = ck.test(table.from_record(row)) is False
        else:
            msg = (
                f"{ck.name} on {table.name} is SQL ({ck.sql}) with no Python test: give "
                f"Check({ck.label!r}, sql=..., test=<predicate on the entity>) for "
                "MemoryDatabase to enforce it"
            )
            raise NotSupportedInMemory(msg)
        if failed:
            listed = f" (columns: {', '.join(ck.columns)})" if ck.columns else ""
            msg = (
                f"CheckViolation: constraint {ck.name!r} on {table.name!r}{listed} violated: "
                f'new row for relation "{table.name}" violates check constraint "{ck.name}"'
            )
            raise CheckViolation(msg, table=table.name, constraint=ck.name, columns=ck.columns)


Where = Callable[[Row], bool] | None
Constraint = tuple[str, tuple[int, ...], Where]


def _constraints(table: Table[Any]) -> list[Constraint]:
    """The primary key, unique constraints and unique indexes (with a partial one's WHERE)."""
    found: list[Constraint] = [(table.primary_key_name, table.key_positions, None)]
    for u in table.unique:
        found.append((u.name, tuple(table.field_names.index(f) for f in u.fields), None))
    for ix in table.indexes:
        if ix.unique:
            where = matcher(table, ix.where) if ix.where else None
            found.append((ix.name, tuple(table.field_names.index(f) for f in ix.fields), where))
    return found


def _violation(
    table: Table[Any], name: str, positions: tuple[int, ...], detail: str
) -> UniqueViolation:
    columns = tuple(table.columns[i].column for i in positions)
    msg = (
        f"UniqueViolation: constraint {name!r} on {table.name!r} "
        f"(columns: {', '.join(columns)}) violated{detail}"
    )
    return UniqueViolation(msg, table=table.name, constraint=name, columns=columns)


class Uniques:
    """The unique constraints of a table, checked against its visible rows as a statement
    writes them (through the transaction's indexes: one lookup per constraint)."""

    def __init__(self, txn: Transaction, table: Table[Any]) -> None:
        self._txn = txn
        self._table = table
        self._constraints = _constraints(table)
        # What ON CONFLICT may name: the constraints that hold for every row.
        self.constraints = [at for _, at, where in self._constraints if where is None]

    def holder(
        self, positions: tuple[int, ...], values: tuple[Any, ...], where: Where = None
    ) -> Any:
        """The key of the row holding `values` in the constraint on `positions`, or None."""
        table, txn = self._table, self._txn
        if None in values:
            return None
        if positions == table.key_positions:
            key = values if table.composite else values[0]
            return key if txn.get(table.name, key) is not None else None
        for key in txn.lookup(table.name, positions, values):
            if where is None or where(txn.get(table.name, key) or ()):
                return key
        return None

    def write(self, key: Any, old: Row | None, new: Row) -> None:
        """Check `new` (replacing `old`, if any) against every constraint, before it is put."""
        for declared, positions, where in self._constraints:
            if where is not None and not where(new):
                continue
            name = server_name(declared)
            values = tuple(new[i] for i in positions)
            holder = self.holder(positions, values, where)
            if holder is not None and (old is None or holder != key):
                shown = ", ".join(repr(v) for v in values)
                columns = ", ".join(self._table.columns[i].column for i in positions)
                detail = (
                    f': duplicate key value violates unique constraint "{name}" '
                    f"[Key ({columns})=({shown}) already exists.]"
                )
                raise _violation(self._table, name, positions, detail)


def check_commit(txn: Transaction) -> None:
    """Before commit: the unique values written are still free of others' commits since.

    PostgreSQL would have made the second inserter wait and then fail; the
    fake cannot wait, so the later of two units to commit fails instead.
    """
    store = txn.store
    for name, written in txn.writes.items():
        table = store.tables[name]
        committed_rows = store.rows[name]
        for constraint, positions, where in _constraints(table)[1:]:
            committed = store.index(name, positions)
            for new in written.values():
                if new is None or (where is not None and not where(new)):
                    continue
                values = tuple(new[i] for i in positions)
                if None in values:
                    continue
                holders = [
                    k
                    for k in committed.get(values)
                    if k not in written and (where is None or where(committed_rows[k]))
                ]
                if holders:
                    detail = " at commit: another unit of work committed the same value meanwhile"
                    raise _violation(table, server_name(constraint), positions, detail)
