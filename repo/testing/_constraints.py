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
    found: list[tuple[str, tuple[int, ...]]] = [(table.primary_key_name, table.key_positions)]
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
