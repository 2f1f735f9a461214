"""The generic repository operations on one table, as SQL on a Postgres session."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Generic, Protocol, TypeVar, cast

import asyncpg

from repo._bulk import (
    UpsertResult,
    numbered,
    records,
    update_fields,
    upsert_many_plan,
    upsert_positions,
)
from repo._columns import quote
from repo._mapping import Table
from repo._observe import Observer
from repo._query import Condition, Operator, Order, RowLock
from repo._stream import Stream
from repo.errors import DatabaseError, InvalidQuery

from .coalesce import Coalescer, Route
from .connection import Conn
from .copy import blame, copy, rowcount, through_staging
from .cursor import Reading, open_cursor, stream_rows
from .sql import arguments, statements
from .update_many import update_many_rows

__all__ = ["PgTableOps", "Runner", "rowcount"]

T = TypeVar("T")

# Up to this many entities in a list, add_many(returning=True) sends one
# INSERT ... SELECT FROM unnest(...); beyond it (or for any other iterable)
# it COPYs into a staging table, which streams and is faster for big loads.
UNNEST_MAX = 5_000


class Runner(Protocol):
    """What the table operations need of a session (see ``sessions.py``)."""

    obs: Observer | None
    coalescer: Coalescer | None

    def route(self) -> Route: ...

    async def _run(
        self, name: str, sql: str, args: Sequence[Any], table: Table[Any] | None = None
    ) -> Any: ...

    async def fetch(
        self, sql: str, args: Sequence[Any], table: Table[Any] | None = None
    ) -> list[asyncpg.Record]: ...

    async def fetchrow(
        self, sql: str, args: Sequence[Any], table: Table[Any] | None = None
    ) -> asyncpg.Record | None: ...

    async def fetchval(
        self, sql: str, args: Sequence[Any], table: Table[Any] | None = None
    ) -> Any: ...

    async def execute(
        self, sql: str, args: Sequence[Any], table: Table[Any] | None = None
    ) -> str: ...

    def atomic(self) -> AbstractAsyncContextManager[Conn]: ...

    def reading(self) -> Reading: ...


def by_key(table: Table[Any], conditions: Sequence[Condition]) -> tuple[Any] | None:
    """The key, as a lookup takes it, when `conditions` are equality on the key alone.

    Only a single-column key (a composite one's parts are separate filters).
    None otherwise, or for a value the key's check refuses: that filter then
    runs as written, and fails as it would have.
    """
    if len(conditions) != 1 or table.composite:
        return None
    condition = conditions[0]
    if (
        condition.operator is not Operator.EQ
        or condition.value is None
        or condition.field != table.key_fields[0]
    ):
        return None
    try:
        return (table.check_key(condition.value, "find()"),)
    except InvalidQuery:
        return None


class PgTableOps(Generic[T]):
    """The generic repository operations for one table, as SQL."""

    __slots__ = ("_coalescer", "_reader", "_runner", "_st", "_table")

    def __init__(self, runner: Runner, table: Table[T], reader: Runner | None = None) -> None:
        self._runner = runner
        # Reads may go elsewhere (a replica) than writes.
        self._reader = reader or runner
        self._table = table
        self._st = statements(table)
        # Pool-level lookups by key join others pending at the same moment.
        self._coalescer = self._reader.coalescer

    # -- one row ----------------------------------------------------------

    async def add(self, entity: T) -> T:
        table = self._table
        values = table.values(entity)
        omitted = tuple(f for f, i in table.generated_positions if values[i] is None)
        sql, positions = self._st.insert(omitted)
        row = await self._runner.fetchrow(sql, [values[i] for i in positions], self._table)
        if row is None:
            msg = f"INSERT into {table.name} returned no row (a rule or trigger dropped it?)"
            raise DatabaseError(msg)
        return table.from_record(row)

    async def get(self, key: Any, lock: RowLock | None = None) -> T:
        table = self._table
        coalescer = self._coalescer
        if coalescer is not None and lock is None:
            row = (await coalescer.rows(self._reader.route(), self._st, table, (key,)))[0]
        else:
            # _run rather than fetchrow: one coroutine fewer on the hottest path.
            args = key if table.composite else (key,)
            sql = self._st.get if lock is None else self._st.locked(self._st.get, lock)
            row = await self._reader._run("fetchrow", sql, args, table)
        if row is None:
            raise table.not_found(key)
        return table.from_record(row)

    async def get_many(self, keys: Sequence[Any]) -> list[T]:
        if not keys:
            return []
        table = self._table
        coalescer = self._coalescer
        if coalescer is not None and coalescer.fits(len(keys)):
            got = await coalescer.rows(self._reader.route(), self._st, table, keys, many=True)
            missing = [k for k, row in zip(keys, got, strict=True) if row is None]
            if missing:
                raise table.not_found(missing)
            return [table.from_record(row) for row in got]
        rows = await self._reader.fetch(self._st.get_many, table.keys_args(keys))
        row_key = table.row_key
        found = {row_key(row): row for row in rows}
        missing = [k for k in keys if k not in found]
        if missing:
            raise table.not_found(missing)
        return [table.from_record(found[k]) for k in keys]

    async def update(self, entity: T) -> T:
        table = self._table
        key = table.key_of(entity)
        values = table.values(entity)
        args = [*table.key_args(key), *(values[i] for i in self._st.update_positions)]
        row = await self._runner.fetchrow(self._st.update, args, self._table)
        if row is None:
            if table.version is not None and await self._runner.fetchval(
                self._st.exists_key, table.key_args(key)
            ):
                raise table.stale(key, getattr(entity, table.version))
            raise self._table.not_found(key)
        return table.from_record(row)

    async def update_many(self, entities: Sequence[T]) -> list[T]:
        table = self._table
        if len(entities) < 2:
            return [await self.update(e) for e in entities]
        rows = await update_many_rows(self._runner, self._st, entities)
        found = {table.row_key(r): r for r in rows}
        for entity in entities:
            key = table.key_of(entity)
            if key not in found:
                if table.version is not None and await self._runner.fetchval(
                    self._st.exists_key, table.key_args(key)
                ):
                    raise table.stale(key, getattr(entity, table.version))
                raise table.not_found(key)
        return [table.from_record(found[table.key_of(e)]) for e in entities]

    async def delete_many(self, keys: Sequence[Any]) -> int:
        table = self._table
        if not keys:
            return 0
        args = table.keys_args(keys)
        return rowcount(await self._runner.execute(self._st.delete_many, args, table))

    async def delete(self, key: Any) -> None:
        status = await self._runner.execute(self._st.delete, self._table.key_args(key), self._table)
        if rowcount(status) == 0:
            raise self._table.not_found(key)

    async def upsert(self, entity: T, on: tuple[str, ...], update: tuple[str, ...] | None) -> T:
        table = self._table
        values = table.values(entity)
        positions = upsert_positions(table, values, on)
        chosen = update_fields(table, positions, on, update)
        sql = self._st.upsert_one(positions, on, chosen)
        row = await self._runner.fetchrow(sql, [values[i] for i in positions], self._table)
        if row is None:
            # The row left unchanged was committed by another transaction
            # after this statement's snapshot was taken: a new statement sees it.
            at = [values[table.field_names.index(f)] for f in on]
            row = await self._runner.fetchrow(self._st.by_values(on), at, self._table)
        if row is None:
            msg = f"upsert into {table.name} returned no row"
            raise DatabaseError(msg)
        return table.from_record(row)

    # -- many rows --------------------------------------------------------

    async def find(
        self,
        conditions: Sequence[Condition],
        orders: Sequence[Order],
        limit: int | None,
        offset: int | None,
        lock: RowLock | None = None,
    ) -> list[T]:
        if (
            self._coalescer is not None
            and lock is None
            and not offset
            and (limit is None or limit > 0)
        ):
            key = by_key(self._table, conditions)
            if key is not None:
                # At most one row, whatever the order and limit: a lookup.
                rows = await self._coalescer.rows(self._reader.route(), self._st, self._table, key)
                return [] if rows[0] is None else [self._table.from_record(rows[0])]
        sql, args = self._st.select(conditions, orders, limit, offset)
        sql = self._st.locked(sql, lock)
        return self._table.from_records(await self._reader.fetch(sql, args, self._table))

    async def count(self, conditions: Sequence[Condition]) -> int:
        sql, args = self._st.count(conditions)
        result: int = await self._reader.fetchval(sql, args, self._table)
        return result

    async def exists(self, conditions: Sequence[Condition]) -> bool:
        sql, args = self._st.exists(conditions)
        result: bool = await self._reader.fetchval(sql, args, self._table)
        return result

    async def delete_where(self, conditions: Sequence[Condition]) -> int:
        sql, args = self._st.delete_where(conditions)
        return rowcount(await self._runner.execute(sql, args, self._table))

    async def update_where(self, values: dict[str, Any], conditions: Sequence[Condition]) -> int:
        fields = tuple(values)
        sql, _ = self._st.update_where(fields, conditions)
        args = [*values.values(), *arguments(conditions)]
        return rowcount(await self._runner.execute(sql, args, self._table))

    async def page(
        self,
        conditions: Sequence[Condition],
        orders: Sequence[Order],
        after: tuple[Any, ...] | None,
        limit: int,
    ) -> tuple[list[T], bool]:
        sql, args = self._st.page(conditions, orders, after is not None)
        if after is not None:
            args.extend(after)
        args.append(limit + 1)
        rows = await self._reader.fetch(sql, args, self._table)
        return self._table.from_records(rows[:limit]), len(rows) > limit

    # -- bulk -------------------------------------------------------------

    async def add_many(
        self, entities: Iterable[T] | AsyncIterable[T], returning: bool
    ) -> int | list[T]:
        table = self._table
        positions = tuple(i for i, c in enumerate(table.columns) if not c.generated)
        columns = [table.columns[i].column for i in positions]
        rows = records(table, entities, positions, (), screen=True)
        obs = self._runner.obs
        if not returning:
            with blame(table, entities, positions, ()):
                async with self._runner.atomic() as conn:
                    return await copy(
                        conn, table, table.name, columns, rows, schema=table.schema, obs=obs
                    )
        if (
            isinstance(entities, Sequence)
            and len(entities) <= UNNEST_MAX
            and self._st.can_unnest(positions)
        ):
            # Measured (bench notes in docs/bulk.md): one INSERT ... unnest()
            # round trip beats the five of a staging table for small lists.
            checked = list(cast("Iterator[tuple[Any, ...]]", rows))
            arrays = [list(column) for column in zip(*checked, strict=True)] or [
                [] for _ in positions
            ]
            stored = await self._runner.fetch(
                self._st.unnest_insert(positions), arrays, self._table
            )
            return table.from_records(stored)
        insert = self._st.bulk_insert(positions, quote(self._st.staging_name))
        with blame(table, entities, positions, ()):
            async with self._runner.atomic() as conn:
                _, stored = await self._staged(conn, positions, rows, insert)
        return table.from_records(stored)

    async def upsert_many(
        self,
        entities: Iterable[T] | AsyncIterable[T],
        on: tuple[str, ...],
        update: tuple[str, ...] | None,
        returning: bool,
    ) -> UpsertResult | list[T]:
        table = self._table
        positions, chosen, required = upsert_many_plan(table, on, update)
        # Screened like add_many's: the staging table's columns are the
        # table's, so the server refuses what the screen lets through, and
        # `blame` finds the entity at fault. A jsonb value is then encoded
        # once, not checked by one encoding and sent by another.
        rows = records(table, entities, positions, required, screen=True)
        staging = self._st.staging_name
        if returning:
            sql = self._st.upsert_all(positions, on, chosen, quote(staging))
        else:
            # Counted on the server: one row back, not one per row written.
            sql = self._st.upsert_counted(positions, on, chosen, quote(staging))
        with blame(table, entities, positions, required):
            async with self._runner.atomic() as conn:
                given, stored = await self._staged(conn, positions, rows, sql)
        if returning:
            return table.from_records(stored)
        # Rows left unchanged are not written: the rest of those given.
        inserted, written = stored[0]
        return UpsertResult(
            inserted=inserted, updated=written - inserted, unchanged=given - written
        )

    async def _staged(
        self, conn: Conn, positions: tuple[int, ...], rows: Any, sql: str
    ) -> tuple[int, list[asyncpg.Record]]:
        """`rows` (the fields at `positions`) COPYed into the staging table, numbered, then
        `sql` run from it (add_many's and upsert_many's): how many came, and what it returned."""
        table = self._table
        columns = [table.columns[i].column for i in positions]
        return await through_staging(
            conn,
            table,
            self._st.staging_name,
            create=self._st.staging(positions),
            columns=["_repo_ord", *columns],
            rows=numbered(rows),
            sql=sql,
            obs=self._runner.obs,
            checked=rows,
        )

    # -- streams ----------------------------------------------------------

    def stream(
        self,
        conditions: Sequence[Condition],
        orders: Sequence[Order],
        prefetch: int,
        lock: RowLock | None = None,
    ) -> Stream[T]:
        sql, args = self._st.select(conditions, orders)
        sql = self._st.locked(sql, lock)
        table = self._table
        result: Stream[T] = stream_rows(
            self._reader, sql, args, table.from_record, prefetch, make_many=table.from_records
        )
        return result

    def cursor(self, conditions: Sequence[Condition], orders: Sequence[Order]) -> Any:
        sql, args = self._st.select(conditions, orders)
        return open_cursor(self._reader, sql, args, self._table.from_record)
