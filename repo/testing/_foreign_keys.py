"""Foreign keys in memory, checked when PostgreSQL checks them: at the end of each statement.

PostgreSQL enforces a foreign key with AFTER triggers that fire when the
statement's own rows are written, so one statement may delete a parent and
its child (a self-referencing table), or insert rows that reference each
other. The fake does the same: a statement writes or deletes its rows, then
runs the checks and actions of each row in turn, in the order the rows went:

- a row written must reference a visible row (MATCH SIMPLE: a NULL part
  skips the check);
- a row deleted: for each foreign key referencing its table (the tables in
  the order the store met them, each one's keys in declared order),
  ``CASCADE`` deletes the referencing rows (a nested statement, whose own
  actions run at once), ``SET NULL`` / ``SET DEFAULT`` set their
  referencing columns to NULL / to the columns' defaults (then the key is
  checked again), and ``NO ACTION`` / ``RESTRICT`` fail if a referencing row
  is still there (``NO ACTION`` passes when another row now holds the key);
- a referenced value an update changed is NO ACTION (``ON UPDATE``).

The errors carry the constraint's name as the server stores it (63 bytes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from repo._columns import ForeignKeySpec, server_name
from repo._mapping import Table
from repo.errors import ForeignKeyViolation

from ._constraints import Uniques, check_not_null
from ._indexes import index_key
from ._store import Row, Transaction

__all__ = ["check_foreign_keys", "check_updated", "delete_rows"]


def _positions(table: Table[Any], columns: Sequence[str]) -> tuple[int, ...]:
    names = [c.column for c in table.columns]
    return tuple(names.index(c) for c in columns)


def _target_exists(
    txn: Transaction, target: Table[Any], columns: tuple[str, ...], values: tuple[Any, ...]
) -> bool:
    if target.key_columns == columns:
        return txn.get(target.name, values if target.composite else values[0]) is not None
    return bool(txn.lookup(target.name, _positions(target, columns), values))


def _shown(values: tuple[Any, ...]) -> str:
    return ", ".join(str(v) for v in values)


def check_foreign_keys(
    txn: Transaction, table: Table[Any], row: Row, old: Row | None = None
) -> None:
    """Every foreign key of `row` with no NULL part points at a visible row (MATCH SIMPLE).

    Of a row updated from `old`, only the keys whose values changed are
    checked, as on the server.
    """
    for fk in table.foreign_keys:
        at = [table.field_names.index(f) for f in fk.fields]
        values = tuple(row[i] for i in at)
        if None in values:
            continue
        if old is not None and index_key(values) == index_key(tuple(old[i] for i in at)):
            continue
        target = txn.store.tables.get(fk.target_table)
        if target is None or not _target_exists(txn, target, fk.target_columns, values):
            name = server_name(fk.name)
            columns = tuple(table.column_of(f) for f in fk.fields)
            listed = ", ".join(columns)
            msg = (
                f"ForeignKeyViolation: constraint {name!r} on {table.name!r} "
                f"(columns: {listed}) violated: insert or update on table "
                f'"{table.name}" violates foreign key constraint "{name}" '
                f"[Key ({listed})=({_shown(values)}) is not present in table "
                f'"{fk.target_table}".]'
            )
            raise ForeignKeyViolation(msg, table=table.name, constraint=name, columns=columns)


def _referencing(txn: Transaction, table: Table[Any]) -> list[tuple[Table[Any], ForeignKeySpec]]:
    return [
        (child, fk)
        for child in txn.store.tables.values()
        for fk in child.foreign_keys
        if fk.target_table == table.name
    ]


def _still_referenced(
    table: Table[Any], child: Table[Any], fk: ForeignKeySpec, values: tuple[Any, ...]
) -> ForeignKeyViolation:
    name = server_name(fk.name)
    columns = tuple(child.column_of(f) for f in fk.fields)
    msg = (
        f"ForeignKeyViolation: constraint {name!r} on {child.name!r} "
        f"(columns: {', '.join(columns)}) violated: update or delete on table "
        f'"{table.name}" violates foreign key constraint "{name}" on table '
        f'"{child.name}" [Key ({", ".join(fk.target_columns)})=({_shown(values)}) is '
        f'still referenced from table "{child.name}".]'
    )
    return ForeignKeyViolation(msg, table=child.name, constraint=name, columns=columns)


def delete_rows(txn: Transaction, table: Table[Any], rows: Sequence[tuple[Any, Row]]) -> int:
    """DELETE `rows` (key, row) of `table` as one statement; return how many went.

    The rows go first; then, row by row, the foreign keys that reference
    them act (as PostgreSQL's triggers do at the end of the statement).
    """
    gone = []
    for key, row in rows:
        if txn.get(table.name, key) is not None:
            txn.put(table.name, key, None)
            gone.append(row)
    if gone:
        referencing = _referencing(txn, table)
        for row in gone:
            for child, fk in referencing:
                _on_delete(txn, table, row, child, fk)
    return len(gone)


def _on_delete(
    txn: Transaction, table: Table[Any], row: Row, child: Table[Any], fk: ForeignKeySpec
) -> None:
    values = tuple(row[i] for i in _positions(table, fk.target_columns))
    if None in values:
        return
    at = tuple(child.field_names.index(f) for f in fk.fields)
    keys = txn.lookup(child.name, at, values)
    if not keys:
        return
    action = " ".join((fk.on_delete or "NO ACTION").upper().split())
    if action == "CASCADE":
        delete_rows(txn, child, [(k, txn.get(child.name, k) or ()) for k in keys])
    elif action in ("SET NULL", "SET DEFAULT"):
        _reset(txn, child, at, keys, default=action == "SET DEFAULT")
        # A default equal to the deleted key leaves the rows referencing it
        # (an update to the same values checks nothing): refused, as the server does.
        if txn.lookup(child.name, at, values) and not _target_exists(
            txn, table, fk.target_columns, values
        ):
            raise _still_referenced(table, child, fk, values)
    elif action == "RESTRICT" or not _target_exists(txn, table, fk.target_columns, values):
        raise _still_referenced(table, child, fk, values)


def _reset(
    txn: Transaction, child: Table[Any], at: tuple[int, ...], keys: list[Any], *, default: bool
) -> None:
    """UPDATE the rows `keys` of `child`: the columns `at` to NULL, or to their defaults."""
    defaults = txn.store.defaults.get(child.name, {}) if default else {}
    uniques = Uniques(txn, child)
    changes = []
    for key in keys:
        old = txn.get(child.name, key)
        if old is None:
            continue
        new = list(old)
        for i in at:
            make = defaults.get(i)
            new[i] = None if make is None else make(txn)
        row = tuple(new)
        check_not_null(child, row)
        uniques.write(key, old, row)
        txn.put(child.name, key, row)
        changes.append((old, row))
    for old, row in changes:
        check_foreign_keys(txn, child, row, old)
    check_updated(txn, child, changes)


def check_updated(txn: Transaction, table: Table[Any], changes: Sequence[tuple[Row, Row]]) -> None:
    """After an UPDATE of `table`: no row may still reference a value it changed (NO ACTION)."""
    if not changes:
        return
    for child, fk in _referencing(txn, table):
        positions = _positions(table, fk.target_columns)
        at = tuple(child.field_names.index(f) for f in fk.fields)
        for old, new in changes:
            values = tuple(old[i] for i in positions)
            if None in values or index_key(values) == index_key(tuple(new[i] for i in positions)):
                continue
            if txn.lookup(child.name, at, values) and not _target_exists(
                txn, table, fk.target_columns, values
            ):
                raise _still_referenced(table, child, fk, values)
