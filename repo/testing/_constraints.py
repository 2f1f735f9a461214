"""The constraints PostgreSQL enforces at each row, checked in memory from the mappings.

NOT NULL from each column's nullability, the primary key and the declared
unique constraints (NULLs never conflict; NaN equals NaN), looked up in the
store's hash indexes. Foreign keys, which the server checks at the end of
each statement, are in `_foreign_keys`. The errors carry the table,
constraint (named as the server stores it: 63 bytes at most) and columns
that the Postgres backend reports for the same violation.
"""

from __future__ import annotations

from typing import Any

from repo._columns import server_name
from repo._mapping import Table
from repo.errors import NotNullViolation, UniqueViolation

from ._store import Row, Transaction

__all__ = ["Uniques", "check_commit", "check_not_null"]


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
        self.constraints = [positions for _, positions in self._constraints]

    def holder(self, positions: tuple[int, ...], values: tuple[Any, ...]) -> Any:
        """The key of the row holding `values` in the constraint on `positions`, or None."""
        table = self._table
        if None in values:
            return None
        if positions == table.key_positions:
            key = values if table.composite else values[0]
            return key if self._txn.get(table.name, key) is not None else None
        found = self._txn.lookup(table.name, positions, values)
        return found[0] if found else None

    def write(self, key: Any, old: Row | None, new: Row) -> None:
        """Check `new` (replacing `old`, if any) against every constraint, before it is put."""
        for declared, positions in self._constraints:
            name = server_name(declared)
            values = tuple(new[i] for i in positions)
            holder = self.holder(positions, values)
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
        for constraint, positions in _constraints(table)[1:]:
            committed = store.index(name, positions)
            for new in written.values():
                if new is None:
                    continue
                holders = committed.get(tuple(new[i] for i in positions))
                if any(k not in written for k in holders):
                    detail = " at commit: another unit of work committed the same value meanwhile"
                    raise _violation(table, server_name(constraint), positions, detail)
