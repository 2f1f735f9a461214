"""The Postgres backend: sessions on the pool or on one connection, and table ops."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

import asyncpg

from ._mapping import Table
from ._query import Condition, Order
from ._sql import statements
from .errors import DatabaseError, InvalidQuery, InvalidState, NotFound, StaleEntity, translate

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    from ._database import Database

__all__ = ["PgTableOps", "PoolSession", "TransactionSession"]

T = TypeVar("T")

Conn: TypeAlias = "asyncpg.Connection | PoolConnectionProxy[asyncpg.Record]"

_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError)

_ISOLATION = {
    "read_committed": "READ COMMITTED",
    "repeatable_read": "REPEATABLE READ",
    "serializable": "SERIALIZABLE",
    "read_uncommitted": "READ UNCOMMITTED",
}


def begin_statement(isolation: str | None, readonly: bool, deferrable: bool) -> str:
    """The BEGIN for a unit of work's options; `InvalidQuery` for an unknown isolation."""
    parts = ["BEGIN"]
    if isolation is not None:
        level = _ISOLATION.get(isolation.lower().replace(" ", "_"))
        if level is None:
            msg = f"unknown isolation {isolation!r}: use one of {', '.join(_ISOLATION)}"
            raise InvalidQuery(msg)
        parts.append(f"ISOLATION LEVEL {level}")
    if readonly:
        parts.append("READ ONLY")
    if deferrable:
        parts.append("DEFERRABLE")
    return " ".join(parts)


def _rowcount(status: str) -> int:
    # asyncpg returns the command tag, e.g. "DELETE 3" or "INSERT 0 5".
    tail = status.rpartition(" ")[2]
    return int(tail) if tail.isdigit() else 0


class PgRunner:
    """Runs hand-written SQL on one connection at a time, translating errors."""

    async def _with(self, name: str, sql: str, args: Sequence[Any]) -> Any:
        raise NotImplementedError

    async def fetch(self, sql: str, args: Sequence[Any]) -> list[asyncpg.Record]:
        result: list[asyncpg.Record] = await self._with("fetch", sql, args)
        return result

    async def fetchrow(self, sql: str, args: Sequence[Any]) -> asyncpg.Record | None:
        result: asyncpg.Record | None = await self._with("fetchrow", sql, args)
        return result

    async def fetchval(self, sql: str, args: Sequence[Any]) -> Any:
        return await self._with("fetchval", sql, args)

    async def execute(self, sql: str, args: Sequence[Any]) -> str:
        result: str = await self._with("execute", sql, args)
        return result

    async def copy_records(
        self,
        table: str,
        columns: Sequence[str],
        records: Iterable[Sequence[Any]],
        schema: str | None,
    ) -> str:
        raise NotImplementedError

    def ops(self, table: Table[T]) -> PgTableOps[T]:
        return PgTableOps(self, table)

    def sql(self, method: str) -> PgRunner:
        return self


async def _call(conn: Conn, name: str, sql: str, args: Sequence[Any]) -> Any:
    try:
        return await getattr(conn, name)(sql, *args)
    except _DRIVER_ERRORS as exc:
        raise translate(exc, closed=conn.is_closed()) from exc


class PoolSession(PgRunner):
    """Every call takes its own pooled connection (autocommit), so calls run concurrently."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def _with(self, name: str, sql: str, args: Sequence[Any]) -> Any:
        async with self._db.acquire(_raw=False) as conn:
            return await _call(conn, name, sql, args)

    async def copy_records(
        self,
        table: str,
        columns: Sequence[str],
        records: Iterable[Sequence[Any]],
        schema: str | None,
    ) -> str:
        async with self._db.acquire(_raw=False) as conn:
            return await _copy(conn, table, columns, records, schema)


async def _copy(
    conn: Conn,
    table: str,
    columns: Sequence[str],
    records: Iterable[Sequence[Any]],
    schema: str | None,
) -> str:
    try:
        return await conn.copy_records_to_table(
            table, records=records, columns=list(columns), schema_name=schema
        )
    except _DRIVER_ERRORS as exc:
        raise translate(exc, closed=conn.is_closed()) from exc


class TransactionSession(PgRunner):
    """One connection and its transaction, owned by a unit of work.

    Calls issued concurrently (``asyncio.gather``) take turns on a lock, so the
    connection never sees two operations at once.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn: Conn | None = None
        self._lock = asyncio.Lock()
        self._acquired: Any = None

    @property
    def connection(self) -> Conn:
        if self._conn is None:
            msg = "the unit of work has no connection: use it inside `async with`"
            raise InvalidState(msg)
        return self._conn

    async def _with(self, name: str, sql: str, args: Sequence[Any]) -> Any:
        async with self._lock:
            return await _call(self.connection, name, sql, args)

    async def copy_records(
        self,
        table: str,
        columns: Sequence[str],
        records: Iterable[Sequence[Any]],
        schema: str | None,
    ) -> str:
        async with self._lock:
            return await _copy(self.connection, table, columns, records, schema)

    async def begin(self, isolation: str | None, readonly: bool, deferrable: bool) -> None:
        statement = begin_statement(isolation, readonly, deferrable)
        self._conn = await self._db._take()
        try:
            await _call(self._conn, "execute", statement, ())
        except BaseException:
            await self.close()
            raise

    async def commit(self) -> None:
        await self._with("execute", "COMMIT", ())

    async def rollback(self) -> None:
        await self._with("execute", "ROLLBACK", ())

    async def savepoint(self, name: str) -> None:
        await self._with("execute", f"SAVEPOINT {name}", ())

    async def release_savepoint(self, name: str) -> None:
        await self._with("execute", f"RELEASE SAVEPOINT {name}", ())

    async def rollback_to_savepoint(self, name: str) -> None:
        # Both in one round trip: undo the savepoint's work, then drop it.
        await self._with("execute", f"ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}", ())

    async def close(self) -> None:
        """Give the connection back; one still inside a transaction is terminated."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._db._give_back(conn)  # type: ignore[arg-type]


class PgTableOps(Generic[T]):
    """The generic repository operations for one table, as SQL."""

    __slots__ = ("_runner", "_st", "_table")

    def __init__(self, runner: PgRunner, table: Table[T]) -> None:
        self._runner = runner
        self._table = table
        self._st = statements(table)

    def _not_found(self, key: Any) -> NotFound:
        t = self._table
        msg = f"no {t.name} with {t.key}={key!r}"
        return NotFound(msg, table=t.name, key=key)

    async def add(self, entity: T) -> T:
        table = self._table
        values = table.values(entity)
        omitted = tuple(f for f, i in table.generated_positions if values[i] is None)
        sql, positions = self._st.insert(omitted)
        row = await self._runner.fetchrow(sql, [values[i] for i in positions])
        if row is None:
            msg = f"INSERT into {table.name} returned no row (a rule or trigger dropped it?)"
            raise DatabaseError(msg)
        return table.from_record(row)

    async def get(self, key: Any) -> T:
        row = await self._runner.fetchrow(self._st.get, (key,))
        if row is None:
            raise self._not_found(key)
        return self._table.from_record(row)

    async def get_many(self, keys: Sequence[Any]) -> list[T]:
        if not keys:
            return []
        rows = await self._runner.fetch(self._st.get_many, (list(keys),))
        table = self._table
        at = table.key_position
        found = {row[at]: row for row in rows}
        missing = [k for k in keys if k not in found]
        if missing:
            msg = f"no {table.name} with {table.key} in {missing!r}"
            raise NotFound(msg, table=table.name, key=missing)
        return [table.from_record(found[k]) for k in keys]

    async def find(
        self,
        conditions: Sequence[Condition],
        orders: Sequence[Order],
        limit: int | None,
        offset: int | None,
    ) -> list[T]:
        sql, args = self._st.select(conditions, orders, limit, offset)
        make = self._table.from_record
        return [make(r) for r in await self._runner.fetch(sql, args)]

    async def count(self, conditions: Sequence[Condition]) -> int:
        sql, args = self._st.count(conditions)
        result: int = await self._runner.fetchval(sql, args)
        return result

    async def exists(self, conditions: Sequence[Condition]) -> bool:
        sql, args = self._st.exists(conditions)
        result: bool = await self._runner.fetchval(sql, args)
        return result

    async def update(self, entity: T) -> T:
        table = self._table
        key = table.key_of(entity)
        values = table.values(entity)
        if key is None:
            msg = (
                f"update needs the key: {table.entity.__name__}.{table.key} is None "
                "(add the entity first, or use the one add() returned)"
            )
            raise InvalidQuery(msg)
        args = [key, *(values[i] for i in self._st.update_positions)]
        row = await self._runner.fetchrow(self._st.update, args)
        if row is None:
            if table.version is not None and await self._runner.fetchval(
                self._st.exists_key, (key,)
            ):
                version = getattr(entity, table.version)
                msg = (
                    f"{table.name} {table.key}={key!r} was changed by someone else "
                    f"(it is no longer at {table.version}={version!r}): reload it and retry"
                )
                raise StaleEntity(msg)
            raise self._not_found(key)
        return table.from_record(row)

    async def delete(self, key: Any) -> None:
        status = await self._runner.execute(self._st.delete, (key,))
        if _rowcount(status) == 0:
            raise self._not_found(key)

    async def add_many(self, entities: Iterable[T]) -> int:
        table = self._table
        columns = [c.column for c in table.columns if not c.generated]
        positions = [i for i, c in enumerate(table.columns) if not c.generated]
        generated = table.generated_positions

        def records() -> Iterator[tuple[Any, ...]]:
            for n, entity in enumerate(entities):
                values = table.values(table.check_entity(entity))
                for field, i in generated:
                    if values[i] is not None:
                        msg = (
                            f"add_many leaves generated columns to the database, but entity "
                            f"#{n} has {field}={values[i]!r}: use add() for it"
                        )
                        raise InvalidQuery(msg)
                yield tuple(values[i] for i in positions)

        status = await self._runner.copy_records(table.name, columns, records(), table.schema)
        return _rowcount(status)
