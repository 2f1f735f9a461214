"""The constraints PostgreSQL enforces, checked in memory from the mappings.

NOT NULL from each column's nullability, the primary key, the declared
unique constraints (NULLs never conflict) and foreign keys (checked when a
row is written, and when a referenced row is deleted: NO ACTION, unless the
mapping says CASCADE or SET NULL). The errors carry the table, constraint
and columns that the Postgres backend reports for the same violation.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from repo._mapping import Table
from repo._query import Operator
from repo.errors import (
    CheckViolation,
    ForeignKeyViolation,
    NotNullViolation,
    NotSupportedInMemory,
    UniqueViolation,
)

from ._eval import matcher
from ._store import Row, Transaction

__all__ = [
    "Uniques",
    "check_commit",
    "check_foreign_keys",
    "check_not_null",
    "check_rules",
    "delete_row",
]


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


Constraint = tuple[str, tuple[int, ...], Callable[[Row], bool] | None]


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


def _held(positions: tuple[int, ...], where: Callable[[Row], bool] | None, row: Row) -> Any:
    """The row's values in a unique constraint, or None if it cannot conflict there."""
    values = tuple(row[i] for i in positions)
    if None in values or (where is not None and not where(row)):
        return None
    return values


class Uniques:
    """The unique values of a table's visible rows, for the rows one statement writes."""

    def __init__(self, txn: Transaction, table: Table[Any]) -> None:
        self._table = table
        self._constraints = _constraints(table)
        self.constraints = [at for _, at, where in self._constraints if where is None]
        self._seen: list[dict[tuple[Any, ...], Any]] = [{} for _ in self._constraints]
        for key, row in txn.rows(table.name):
            self._add(key, row)

    def _add(self, key: Any, row: Row) -> None:
        for seen, (_, positions, where) in zip(self._seen, self._constraints, strict=True):
            values = _held(positions, where, row)
            if values is not None:
                seen[values] = key

    def _drop(self, key: Any, row: Row) -> None:
        for seen, (_, positions, where) in zip(self._seen, self._constraints, strict=True):
            values = _held(positions, where, row)
            if values is not None and seen.get(values, _NONE) == key:
                del seen[values]

    def holder(self, positions: tuple[int, ...], values: tuple[Any, ...]) -> Any:
        """The key of the row holding `values` in the constraint on `positions`, or None."""
        for seen, (_, at, where) in zip(self._seen, self._constraints, strict=True):
            if at == positions and where is None:
                return seen.get(values)
        msg = f"no unique constraint on {positions}"  # pragma: no cover - guarded by the caller
        raise LookupError(msg)

    def write(self, key: Any, old: Row | None, new: Row) -> None:
        """Check `new` (replacing `old`, if any) against every constraint, then record it."""
        table = self._table
        if old is not None:
            self._drop(key, old)
        for seen, (name, positions, where) in zip(self._seen, self._constraints, strict=True):
            values = _held(positions, where, new)
            if values is None:
                continue
            holder = seen.get(values, _NONE)
            if holder is not _NONE and (old is None or holder != key):
                columns = tuple(table.columns[i].column for i in positions)
                shown = ", ".join(repr(v) for v in values)
                msg = (
                    f"UniqueViolation: constraint {name!r} on {table.name!r} "
                    f"(columns: {', '.join(columns)}) violated: duplicate key value violates "
                    f'unique constraint "{name}" [Key ({", ".join(columns)})=({shown}) '
                    "already exists.]"
                )
                raise UniqueViolation(msg, table=table.name, constraint=name, columns=columns)
        self._add(key, new)

    def forget(self, key: Any, row: Row) -> None:
        self._drop(key, row)


_NONE: Any = object()


def _target_exists(
    txn: Transaction, target: Table[Any], columns: tuple[str, ...], values: tuple[Any, ...]
) -> bool:
    if target.key_columns == columns:
        return txn.get(target.name, values if target.composite else values[0]) is not None
    names = [c.column for c in target.columns]
    at = [names.index(c) for c in columns]
    return any(
        all(row[i] == v for i, v in zip(at, values, strict=True))
        for _, row in txn.rows(target.name)
    )


def _shown(values: tuple[Any, ...]) -> str:
    return ", ".join(str(v) for v in values)


def check_foreign_keys(txn: Transaction, table: Table[Any], row: Row) -> None:
    """Every foreign key of `row` with no NULL part points at a visible row (MATCH SIMPLE)."""
    for fk in table.foreign_keys:
        values = tuple(row[table.field_names.index(f)] for f in fk.fields)
        if None in values:
            continue
        target = txn.store.tables.get(fk.target_table)
        if target is None or not _target_exists(txn, target, fk.target_columns, values):
            columns = tuple(table.column_of(f) for f in fk.fields)
            listed = ", ".join(columns)
            msg = (
                f"ForeignKeyViolation: constraint {fk.name!r} on {table.name!r} "
                f"(columns: {listed}) violated: insert or update on table "
                f'"{table.name}" violates foreign key constraint "{fk.name}" '
                f"[Key ({listed})=({_shown(values)}) is not present in table "
                f'"{fk.target_table}".]'
            )
            raise ForeignKeyViolation(msg, table=table.name, constraint=fk.name, columns=columns)


def _referencing(txn: Transaction, table: Table[Any]) -> Iterable[tuple[Table[Any], Any]]:
    for child in txn.store.tables.values():
        for fk in child.foreign_keys:
            if fk.target_table == table.name:
                yield child, fk


def delete_row(txn: Transaction, table: Table[Any], key: Any, row: Row) -> None:
    """Delete `row`, then apply the foreign keys that reference it (NO ACTION by default)."""
    txn.put(table.name, key, None)
    columns = [c.column for c in table.columns]
    for child, fk in _referencing(txn, table):
        values = tuple(row[columns.index(c)] for c in fk.target_columns)
        if None in values:
            continue
        at = [child.field_names.index(f) for f in fk.fields]
        holders = [
            (k, r)
            for k, r in txn.rows(child.name)
            if all(r[i] == v for i, v in zip(at, values, strict=True))
        ]
        if not holders:
            continue
        action = (fk.on_delete or "NO ACTION").upper()
        if action == "CASCADE":
            for k, r in holders:
                if txn.get(child.name, k) is not None:
                    delete_row(txn, child, k, r)
        elif action == "SET NULL":
            for k, r in holders:
                txn.put(child.name, k, tuple(None if i in at else v for i, v in enumerate(r)))
        else:
            listed = ", ".join(child.column_of(f) for f in fk.fields)
            msg = (
                f"ForeignKeyViolation: constraint {fk.name!r} on {child.name!r} "
                f"(columns: {listed}) violated: update or delete on table "
                f'"{table.name}" violates foreign key constraint "{fk.name}" on table '
                f'"{child.name}" [Key ({", ".join(fk.target_columns)})=({_shown(values)}) is '
                f'still referenced from table "{child.name}".]'
            )
            raise ForeignKeyViolation(
                msg,
                table=child.name,
                constraint=fk.name,
                columns=tuple(child.column_of(f) for f in fk.fields),
            )


def check_commit(txn: Transaction) -> None:
    """Before commit: the unique values written are still free of others' commits since.

    PostgreSQL would have made the second inserter wait and then fail; the
    fake cannot wait, so the later of two units to commit fails instead.
    """
    store = txn.store
    for name, written in txn.writes.items():
        table = store.tables[name]
        committed = store.rows[name]
        for constraint, positions, where in _constraints(table)[1:]:
            taken = set()
            for key, row in committed.items():
                if key not in written:
                    taken.add(_held(positions, where, row))
            for new in written.values():
                if new is None:
                    continue
                values = _held(positions, where, new)
                if values is not None and values in taken:
                    columns = tuple(table.columns[i].column for i in positions)
                    msg = (
                        f"UniqueViolation: constraint {constraint!r} on {name!r} "
                        f"(columns: {', '.join(columns)}) violated at commit: another unit of "
                        "work committed the same value meanwhile"
                    )
                    raise UniqueViolation(msg, table=name, constraint=constraint, columns=columns)
