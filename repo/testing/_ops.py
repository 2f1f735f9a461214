"""The generic repository operations on one table, run on the in-memory store."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Generic, Protocol, TypeVar

from repo._bulk import (
    UpsertResult,
    records,
    update_fields,
    upsert_many_plan,
    upsert_positions,
)
from repo._mapping import Table
from repo._query import Condition, Order
from repo._stream import Stream
from repo.errors import DataError, NotSupportedInMemory

from ._constraints import Uniques, check_not_null
from ._cursor import MemorySource, open_cursor
from ._foreign_keys import check_foreign_keys, check_updated, delete_rows
from ._lookup import select
from ._store import Row, Transaction
from ._values import coerce_conditions, coerce_row, coerce_value, compared_value, same

__all__ = ["MemoryTableOps"]

T = TypeVar("T")

_MUTABLE = (dict, list, set, bytearray)


def _copy(value: Any) -> Any:
    """A deep copy of a stored value: after coercion only lists and dicts are mutable
    (arrays and JSON), and their leaves are not. Much faster than `copy.deepcopy`."""
    if type(value) is list:
        return [_copy(v) for v in value]
    if type(value) is dict:
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, _MUTABLE):
        return copy.deepcopy(value)
    return value


def _frozen(row: Row) -> Row:
    """`row` with no object shared with the caller (entities are values, never aliases)."""
    return tuple(_copy(v) for v in row) if any(isinstance(v, _MUTABLE) for v in row) else row


class Statements(Protocol):
    """What the table operations need of a session: one statement at a time."""

    def statement(self, *, write: bool) -> AbstractAsyncContextManager[Transaction]: ...


class MemoryTableOps(Generic[T]):
    """What `PgTableOps` does in SQL, done on the rows of a `Transaction`."""

    def __init__(self, session: Statements, table: Table[T]) -> None:
        self._session = session
        self._table = table
        self._name = table.name
        self._columns = [c.column for c in table.columns]
        self._fill_at = tuple(i for i, c in enumerate(table.columns) if c.generated)

    def _make(self, row: Row) -> T:
        return self._table.from_record(_frozen(row))

    def _fill(self, txn: Transaction, values: Sequence[Any]) -> Row:
        """The row to insert: generated columns left as None get their default."""
        row = list(values)
        defaults = txn.store.defaults[self._name]
        for i in self._fill_at:
            if row[i] is not None:
                continue
            default = defaults.get(i)
            if default is not None:
                row[i] = default(txn)
            elif self._table.columns[i].python_type is int:
                row[i] = txn.store.next_value(self._name, self._columns[i])
            else:
                spec = self._table.columns[i]
                msg = (
                    f"MemoryDatabase cannot generate {self._name}.{spec.field}: it has no "
                    "server default and is not an integer identity; give it a value in tests"
                )
                raise NotSupportedInMemory(msg)
        return _frozen(tuple(row))

    def _insert(self, txn: Transaction, uniques: Uniques, row: Row) -> None:
        check_not_null(self._table, row)
        key = self._table.row_key(row)
        uniques.write(key, None, row)
        txn.put(self._name, key, row)

    def _replace(self, txn: Transaction, uniques: Uniques, old: Row, new: Row) -> None:
        check_not_null(self._table, new)
        key = self._table.row_key(old)
        uniques.write(key, old, new)
        txn.put(self._name, key, new)

    def _select(self, txn: Transaction, conditions: Sequence[Condition]) -> list[Row]:
        return select(txn, self._table, conditions)

    # -- one row ----------------------------------------------------------

    async def add(self, entity: T) -> T:
        values = coerce_row(self._table, self._table.values(entity))
        async with self._session.statement(write=True) as txn:
            row = self._fill(txn, values)
            self._insert(txn, Uniques(txn, self._table), row)
            check_foreign_keys(txn, self._table, row)
        return self._make(row)

    def _key(self, key: Any) -> Any:
        """A checked key as the store holds it (a tuple for a composite key)."""
        table = self._table
        if table.composite:
            return tuple(
                compared_value(table, f, v) for f, v in zip(table.key_fields, key, strict=True)
            )
        return compared_value(table, table.key_fields[0], key)

    async def get(self, key: Any) -> T:
        key = self._key(key)
        async with self._session.statement(write=False) as txn:
            row = txn.get(self._name, key)
        if row is None:
            raise self._table.not_found(key)
        return self._make(row)

    async def get_many(self, keys: Sequence[Any]) -> list[T]:
        if not keys:
            return []
        keys = [self._key(key) for key in keys]
        async with self._session.statement(write=False) as txn:
            found = {k: txn.get(self._name, k) for k in keys}
        missing = [k for k in keys if found[k] is None]
        if missing:
            raise self._table.not_found(missing)
        return [self._make(found[k] or ()) for k in keys]

    async def update(self, entity: T) -> T:
        table = self._table
        values = coerce_row(table, table.values(entity))
        # Found by the key as given, as the server's WHERE finds it.
        key = self._key(table.key_of(entity))
        async with self._session.statement(write=True) as txn:
            old = txn.get(self._name, key)
            if old is None:
                raise self._table.not_found(key)
            if table.version is not None:
                at = table.field_names.index(table.version)
                if old[at] != values[at]:
                    raise table.stale(key, values[at])
                values[at] = old[at] + 1
            for _, i in table.generated_positions:
                if values[i] is None:
                    values[i] = old[i]
            new = _frozen(tuple(values))
            self._replace(txn, Uniques(txn, table), old, new)
            check_foreign_keys(txn, table, new, old)
            check_updated(txn, table, [(old, new)])
        return self._make(new)

    async def update_many(self, entities: Sequence[T]) -> list[T]:
        return [await self.update(e) for e in entities]

    async def delete(self, key: Any) -> None:
        if not await self.delete_many([key]):
            raise self._table.not_found(self._key(key))

    async def delete_many(self, keys: Sequence[Any]) -> int:
        keys = list(dict.fromkeys(self._key(k) for k in keys))
        async with self._session.statement(write=True) as txn:
            found = [(k, old) for k in keys if (old := txn.get(self._name, k)) is not None]
            return delete_rows(txn, self._table, found)

    async def upsert(self, entity: T, on: tuple[str, ...], update: tuple[str, ...] | None) -> T:
        table = self._table
        values = tuple(coerce_row(table, table.values(entity)))
        positions = upsert_positions(table, values, on)
        chosen = update_fields(table, positions, on, update)
        async with self._session.statement(write=True) as txn:
            uniques = Uniques(txn, table)
            at = self._positions(chosen)
            changes: list[tuple[Row, Row]] = []
            proposed = self._fill(txn, values)
            row, _ = self._upsert_one(txn, uniques, proposed, on, at, changes=changes)
            check_foreign_keys(txn, table, row)
            check_updated(txn, table, changes)
        return self._make(row)

    def _upsert_one(
        self,
        txn: Transaction,
        uniques: Uniques,
        proposed: Row,
        on: tuple[str, ...],
        chosen: tuple[int, ...],
        *,
        affected: set[Any] | None = None,
        changes: list[tuple[Row, Row]],
    ) -> tuple[Row, str]:
        """INSERT `proposed` ... ON CONFLICT (`on`) DO UPDATE SET (the columns at) `chosen`
        WHERE changed.

        Returns the stored row and what happened to it: "inserted", "updated"
        or "unchanged" (the row already held the `chosen` values: not
        written, its version not bumped).
        """
        table = self._table
        check_not_null(table, proposed)
        wanted = {table.field_names.index(f) for f in on}
        positions = next(p for p in uniques.constraints if set(p) == wanted)
        holder = uniques.holder(positions, tuple(proposed[i] for i in positions))
        if holder is None:
            self._insert(txn, uniques, proposed)
            if affected is not None:
                affected.add(table.row_key(proposed))
            return proposed, "inserted"
        key = holder
        if affected is not None and key in affected:
            # As PostgreSQL: a row this statement inserted or updated cannot
            # be updated by it again (one only locked, left unchanged, can).
            msg = (
                "ON CONFLICT DO UPDATE command cannot affect row a second time "
                f"(hint: two {table.name} rows in one upsert_many share {on!r})"
            )
            err = DataError(msg)
            err.sqlstate = "21000"
            raise err
        old = txn.get(self._name, key) or ()
        columns = table.columns
        changed = [i for i in chosen if not same(columns[i], old[i], proposed[i])]
        if not changed:
            return old, "unchanged"
        new = list(old)
        for i in changed:
            new[i] = proposed[i]
        if table.version is not None:
            at = table.field_names.index(table.version)
            new[at] = old[at] + 1
        self._replace(txn, uniques, old, tuple(new))
        changes.append((old, tuple(new)))
        if affected is not None:
            affected.add(key)
        return tuple(new), "updated"

    def _positions(self, chosen: tuple[str, ...]) -> tuple[int, ...]:
        """The positions of the fields an upsert overwrites (the version is bumped apart)."""
        table = self._table
        return tuple(table.field_names.index(f) for f in chosen if f != table.version)

    # -- many rows --------------------------------------------------------

    async def find(
        self,
        conditions: Sequence[Condition],
        orders: Sequence[Order],
        limit: int | None,
        offset: int | None,
    ) -> list[T]:
        conditions = coerce_conditions(self._table, conditions)
        async with self._session.statement(write=False) as txn:
            rows = txn.store.collation.sorter(self._table, orders)(self._select(txn, conditions))
        start = offset or 0
        end = None if limit is None else start + limit
        return [self._make(r) for r in rows[start:end]]

    async def count(self, conditions: Sequence[Condition]) -> int:
        conditions = coerce_conditions(self._table, conditions)
        async with self._session.statement(write=False) as txn:
            return len(self._select(txn, conditions))

    async def exists(self, conditions: Sequence[Condition]) -> bool:
        return await self.count(conditions) > 0

    async def delete_where(self, conditions: Sequence[Condition]) -> int:
        conditions = coerce_conditions(self._table, conditions)
        async with self._session.statement(write=True) as txn:
            row_key = self._table.row_key
            rows = self._select(txn, conditions)
            return delete_rows(txn, self._table, [(row_key(row), row) for row in rows])

    async def update_where(self, values: dict[str, Any], conditions: Sequence[Condition]) -> int:
        table = self._table
        conditions = coerce_conditions(table, conditions)
        sets = [(table.field_names.index(f), coerce_value(table, f, v)) for f, v in values.items()]
        if table.version is not None and table.version not in values:
            bump = table.field_names.index(table.version)
        else:
            bump = -1
        async with self._session.statement(write=True) as txn:
            rows = self._select(txn, conditions)
            uniques = Uniques(txn, table)
            written = []
            for old in rows:
                new = list(old)
                for i, v in sets:
                    new[i] = v
                if bump >= 0:
                    new[bump] = old[bump] + 1
                row = _frozen(tuple(new))
                self._replace(txn, uniques, old, row)
                written.append((old, row))
            for old, row in written:
                check_foreign_keys(txn, table, row, old)
            check_updated(txn, table, written)
        return len(rows)

    async def page(
        self,
        conditions: Sequence[Condition],
        orders: Sequence[Order],
        after_values: tuple[Any, ...] | None,
        limit: int,
    ) -> tuple[list[T], bool]:
        conditions = coerce_conditions(self._table, conditions)
        async with self._session.statement(write=False) as txn:
            rows = self._select(txn, conditions)
        if after_values is not None:
            beyond = txn.store.collation.after(self._table, orders, after_values)
            rows = [r for r in rows if beyond(r)]
        rows = txn.store.collation.sorter(self._table, orders)(rows)[: limit + 1]
        return [self._make(r) for r in rows[:limit]], len(rows) > limit

    # -- bulk -------------------------------------------------------------

    async def add_many(
        self, entities: Iterable[T] | AsyncIterable[T], returning: bool
    ) -> int | list[T]:
        table = self._table
        positions = tuple(i for i, c in enumerate(table.columns) if not c.generated)
        rows = records(table, entities, positions, ())
        stored: list[Row] = []
        async with self._session.statement(write=True) as txn:
            uniques = Uniques(txn, table)
            async for given in _each(rows):
                values: list[Any] = [None] * len(table.columns)
                for i, v in zip(positions, given, strict=True):
                    values[i] = v
                row = self._fill(txn, coerce_row(table, values))
                self._insert(txn, uniques, row)
                stored.append(row)
            for row in stored:
                check_foreign_keys(txn, table, row)
        if returning:
            return [self._make(r) for r in stored]
        return len(stored)

    async def upsert_many(
        self,
        entities: Iterable[T] | AsyncIterable[T],
        on: tuple[str, ...],
        update: tuple[str, ...] | None,
        returning: bool,
    ) -> UpsertResult | list[T]:
        table = self._table
        positions, chosen, required = upsert_many_plan(table, on, update)
        rows = records(table, entities, positions, required)
        stored: list[Row] = []
        counts = dict.fromkeys(("inserted", "updated", "unchanged"), 0)
        at = self._positions(chosen)
        async with self._session.statement(write=True) as txn:
            uniques = Uniques(txn, table)
            affected: set[Any] = set()
            changes: list[tuple[Row, Row]] = []
            async for given in _each(rows):
                values: list[Any] = [None] * len(table.columns)
                for i, v in zip(positions, given, strict=True):
                    values[i] = v
                proposed = self._fill(txn, coerce_row(table, values))
                row, what = self._upsert_one(
                    txn, uniques, proposed, on, at, affected=affected, changes=changes
                )
                stored.append(row)
                counts[what] += 1
            for row in stored:
                check_foreign_keys(txn, table, row)
            check_updated(txn, table, changes)
        if returning:
            return [self._make(r) for r in stored]
        return UpsertResult(**counts)

    # -- streams ----------------------------------------------------------

    def stream(
        self, conditions: Sequence[Condition], orders: Sequence[Order], prefetch: int
    ) -> Stream[T]:
        return Stream(MemorySource(lambda: self._rows(conditions, orders), prefetch))

    def cursor(
        self, conditions: Sequence[Condition], orders: Sequence[Order]
    ) -> AbstractAsyncContextManager[Any]:
        return open_cursor(lambda: self._rows(conditions, orders))

    async def _rows(self, conditions: Sequence[Condition], orders: Sequence[Order]) -> list[T]:
        conditions = coerce_conditions(self._table, conditions)
        async with self._session.statement(write=False) as txn:
            rows = txn.store.collation.sorter(self._table, orders)(self._select(txn, conditions))
        return [self._make(r) for r in rows]


async def _each(rows: Iterator[Row] | AsyncIterator[Row]) -> AsyncIterator[Row]:
    if isinstance(rows, AsyncIterator):
        async for row in rows:
            yield row
    else:
        for row in rows:
            yield row
