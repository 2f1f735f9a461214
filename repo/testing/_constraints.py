"""The constraints PostgreSQL enforces, checked in memory from the mappings.

NOT NULL from each column's nullability, the primary key, the declared
unique constraints (NULLs never conflict) and foreign keys (checked when a
row is written, and when a referenced row is deleted: NO ACTION, unless the
mapping says CASCADE or SET NULL). The errors carry the table, constraint
and columns that the Postgres backend reports for the same violation.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from repo._mapping import Table
from repo.errors import ForeignKeyViolation, NotNullViolation, UniqueViolation

from ._store import Row, Transaction

__all__ = ["Uniques", "check_commit", "check_foreign_keys", "check_not_null", "delete_row"]


def check_not_null(table: Table[Any], row: Row) -> None:
    for spec, value in zip(table.columns, row, strict=True):
        if value is None and not spec.nullable:
            msg = (
                f"NotNullViolation: a constraint on {table.name!r} (columns: {spec.column}) "
                f'violated: null value in column "{spec.column}" of relation "{table.name}" '
                "violates not-null constraint"
            )
            raise NotNullViolation(msg, table=table.name, columns=(spec.column,))


def _constraints(table: Table[Any]) -> list[tuple[str, tuple[int, ...]]]:
    found: list[tuple[str, tuple[int, ...]]] = [(table.primary_key_name, (table.key_position,))]
    for u in table.unique:
        found.append((u.name, tuple(table.field_names.index(f) for f in u.fields)))
    return found


class Uniques:
    """The unique values of a table's visible rows, for the rows one statement writes."""

    def __init__(self, txn: Transaction, table: Table[Any]) -> None:
        self._table = table
        self._constraints = _constraints(table)
        self.constraints = [positions for _, positions in self._constraints]
        self._seen: list[dict[tuple[Any, ...], Any]] = [{} for _ in self._constraints]
        for key, row in txn.rows(table.name):
            self._add(key, row)

    def _add(self, key: Any, row: Row) -> None:
        for seen, (_, positions) in zip(self._seen, self._constraints, strict=True):
            values = tuple(row[i] for i in positions)
            if None not in values:
                seen[values] = key

    def _drop(self, key: Any, row: Row) -> None:
        for seen, (_, positions) in zip(self._seen, self._constraints, strict=True):
            values = tuple(row[i] for i in positions)
            if seen.get(values, _NONE) == key:
                del seen[values]

    def holder(self, positions: tuple[int, ...], values: tuple[Any, ...]) -> Any:
        """The key of the row holding `values` in the constraint on `positions`, or None."""
        for seen, (_, at) in zip(self._seen, self._constraints, strict=True):
            if at == positions:
                return seen.get(values)
        msg = f"no unique constraint on {positions}"  # pragma: no cover - guarded by the caller
        raise LookupError(msg)

    def write(self, key: Any, old: Row | None, new: Row) -> None:
        """Check `new` (replacing `old`, if any) against every constraint, then record it."""
        table = self._table
        if old is not None:
            self._drop(key, old)
        for seen, (name, positions) in zip(self._seen, self._constraints, strict=True):
            values = tuple(new[i] for i in positions)
            if None in values:
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


def _target_exists(txn: Transaction, target: Table[Any], column: str, value: Any) -> bool:
    if target.key_column == column:
        return txn.get(target.name, value) is not None
    at = [c.column for c in target.columns].index(column)
    return any(row[at] == value for _, row in txn.rows(target.name))


def check_foreign_keys(txn: Transaction, table: Table[Any], row: Row) -> None:
    """Every non-NULL foreign key of `row` points at a visible row."""
    for fk in table.foreign_keys:
        value = row[table.field_names.index(fk.field)]
        if value is None:
            continue
        target = txn.store.tables.get(fk.target_table)
        if target is None or not _target_exists(txn, target, fk.target_column, value):
            column = table.column_of(fk.field)
            msg = (
                f"ForeignKeyViolation: constraint {fk.name!r} on {table.name!r} "
                f"(columns: {column}) violated: insert or update on table "
                f'"{table.name}" violates foreign key constraint "{fk.name}" '
                f'[Key ({column})=({value}) is not present in table "{fk.target_table}".]'
            )
            raise ForeignKeyViolation(msg, table=table.name, constraint=fk.name, columns=(column,))


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
        value = row[columns.index(fk.target_column)]
        at = child.field_names.index(fk.field)
        holders = [(k, r) for k, r in txn.rows(child.name) if r[at] == value]
        if not holders:
            continue
        action = (fk.on_delete or "NO ACTION").upper()
        if action == "CASCADE":
            for k, r in holders:
                if txn.get(child.name, k) is not None:
                    delete_row(txn, child, k, r)
        elif action == "SET NULL":
            for k, r in holders:
                txn.put(child.name, k, (*r[:at], None, *r[at + 1 :]))
        else:
            column = child.column_of(fk.field)
            msg = (
                f"ForeignKeyViolation: constraint {fk.name!r} on {child.name!r} "
                f"(columns: {column}) violated: update or delete on table "
                f'"{table.name}" violates foreign key constraint "{fk.name}" on table '
                f'"{child.name}" [Key ({fk.target_column})=({value}) is still referenced '
                f'from table "{child.name}".]'
            )
            raise ForeignKeyViolation(msg, table=child.name, constraint=fk.name, columns=(column,))


def check_commit(txn: Transaction) -> None:
    """Before commit: the unique values written are still free of others' commits since.

    PostgreSQL would have made the second inserter wait and then fail; the
    fake cannot wait, so the later of two units to commit fails instead.
    """
    store = txn.store
    for name, written in txn.writes.items():
        table = store.tables[name]
        committed = store.rows[name]
        for constraint, positions in _constraints(table)[1:]:
            taken = set()
            for key, row in committed.items():
                if key not in written:
                    taken.add(tuple(row[i] for i in positions))
            for new in written.values():
                if new is None:
                    continue
                values = tuple(new[i] for i in positions)
                if None not in values and values in taken:
                    columns = tuple(table.columns[i].column for i in positions)
                    msg = (
                        f"UniqueViolation: constraint {constraint!r} on {name!r} "
                        f"(columns: {', '.join(columns)}) violated at commit: another unit of "
                        "work committed the same value meanwhile"
                    )
                    raise UniqueViolation(msg, table=name, constraint=constraint, columns=columns)
