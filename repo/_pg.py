"""Running SQL on a Postgres connection: `call`, lending a connection, `PgRunner`.

- `call`: one statement, its driver errors translated, observed;
- `Lent` and `Reading`: a connection lent to a cursor;
- `PgRunner`: what every Postgres session offers the table operations.

The sessions themselves (pool, unit of work, caller's connection) are in
`_sessions`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from time import perf_counter
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import asyncpg

from ._begin import begin_statement
from ._mapping import Table
from ._observe import Observer
from ._observe import log as sql_log
from .errors import InvalidState, translate

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    from ._pgops import PgTableOps
    from ._repository import Repository
    from ._stream import PgCursor, Stream

__all__ = [
    "DRIVER_ERRORS",
    "Conn",
    "Lent",
    "PgRunner",
    "Reading",
    "begin_statement",
    "call",
    "discard",
    "gone",
]

T = TypeVar("T")
R = TypeVar("R", bound="Repository[Any]")

Conn: TypeAlias = "asyncpg.Connection | PoolConnectionProxy[asyncpg.Record]"

DRIVER_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
    asyncio.TimeoutError,
)


def gone(conn: Any) -> bool:
    """Whether `conn` is closed, or is a pooled connection asyncpg already took back.

    When the server ends a session (a restart, ``pg_terminate_backend``, a
    network cut), asyncpg closes the connection and detaches it from its pool
    proxy, after which even ``is_closed()`` raises on the proxy.
    """
    try:
        closed: bool = conn.is_closed()
    except asyncpg.InterfaceError:
        return True
    return closed


def discard(conn: Any) -> None:
    """Terminate `conn` unless it is already gone: its state is unknown."""
    if not gone(conn):
        conn.terminate()


async def call(
    conn: Conn, name: str, sql: str, args: Sequence[Any], obs: Observer | None = None
) -> Any:
    """``conn.<name>(sql, *args)`` with driver errors translated, observed by `obs`."""
    start = perf_counter()
    try:
        result = await getattr(conn, name)(sql, *args)
    except DRIVER_ERRORS as exc:
        if obs is not None:
            obs.statement(name, sql, args, perf_counter() - start, error=exc)
        # An internal driver error with the connection still open (a codec
        # COPY cannot use) leaves the session usable: only a closed one is lost.
        raise translate(exc, closed=gone(conn)) from exc
    if obs is not None:
        # The hot path: with no hook, no DEBUG and a fast statement, nothing
        # more than these checks runs.
        elapsed = perf_counter() - start
        if obs.hooks or elapsed >= obs.slow or debug_cached(_DEBUG) is not False:
            obs.statement(name, sql, args, elapsed, result=result)
    return result


_DEBUG = logging.DEBUG
# The logger's own cache of isEnabledFor answers (a dict that logging empties
# whenever a level changes): one lookup instead of a method call per
# statement. Not cached yet (None) leads to Observer.statement, whose
# isEnabledFor fills it.
debug_cached: Callable[[int], bool | None] = getattr(sql_log, "_cache", {}).get


class Lent:
    """A connection lent for several statements; `lock` guards it between them."""

    __slots__ = ("conn", "declare", "lock", "obs", "query")

    def __init__(
        self,
        conn: Conn,
        lock: asyncio.Lock | None,
        *,
        declare: bool = False,
        obs: Observer | None = None,
    ) -> None:
        self.conn = conn
        self.lock = lock
        self.declare = declare
        self.obs = obs
        self.query = ""

    async def open_cursor(self, sql: str, args: Sequence[Any]) -> Any:
        """A cursor for `sql` (the portal lives until the transaction ends).

        asyncpg's own, or with `declare` (behind PgBouncer) a ``DECLARE``d
        one, which needs no named prepared statement.
        """
        self.query = sql
        if self.declare:
            from ._bouncer import declare_cursor

            return await self.cursor_call(declare_cursor, self.conn, sql, args)
        return await self.cursor_call(self.conn.cursor, sql, *args)

    async def cursor_call(self, fn: Any, *args: Any) -> Any:
        """`fn(*args)` on this connection, taking its turn, with errors translated."""
        start = perf_counter()
        try:
            if self.lock is None:
                result = await fn(*args)
            else:
                async with self.lock:
                    result = await fn(*args)
        except DRIVER_ERRORS as exc:
            if self.obs is not None:
                self._observe(fn, args, perf_counter() - start, None, exc)
            if isinstance(exc, asyncpg.exceptions.NoActiveSQLTransactionError):
                msg = "a server-side cursor needs a transaction: use a unit of work"
                raise InvalidState(msg) from exc
            raise translate(exc, closed=gone(self.conn)) from exc
        if self.obs is not None:
            self._observe(fn, args, perf_counter() - start, result, None)
        return result

    def _observe(
        self, fn: Any, args: tuple[Any, ...], elapsed: float, result: Any, error: Exception | None
    ) -> None:
        obs = self.obs
        if obs is None or not (
            obs.hooks or elapsed >= obs.slow or debug_cached(_DEBUG) is not False
        ):
            return
        name = getattr(fn, "__name__", "")
        if name in ("fetch", "fetchrow", "forward"):
            # A batch of an open cursor: no parameters of its own.
            count = args[0] if args else 1
            verb = "MOVE" if name == "forward" else "FETCH"
            sql = f"{verb} {count} FROM cursor for {self.query}"
            obs.statement(name, sql, (), elapsed, result=result, error=error)
        else:
            # Opening the cursor: its query and parameters.
            params = args[2] if name == "declare_cursor" else args[1:]
            obs.statement("cursor", self.query, params, elapsed, error=error)


class Reading:
    """A connection lent to a cursor: `open` it, use it, `close` it (idempotent).

    Plain coroutines rather than an async context manager, so that a stream
    dropped mid-way can be closed in one ordered step.
    """

    def __init__(self, lend: Callable[[], Lent]) -> None:
        self._lend = lend

    async def open(self) -> Lent:
        return self._lend()

    async def close(self) -> None:
        return None


class PgRunner:
    """Hand-written SQL on some connection, with errors translated."""

    obs: Observer | None = None

    async def _run(self, name: str, sql: str, args: Sequence[Any]) -> Any:
        raise NotImplementedError

    def atomic(self) -> Any:
        """``async with``: one connection (a `Conn`) inside a transaction, exclusively."""
        raise NotImplementedError

    def reading(self) -> Reading:
        """A connection inside a transaction for a cursor, opened and closed explicitly."""
        raise NotImplementedError

    async def fetch(self, sql: str, args: Sequence[Any]) -> list[asyncpg.Record]:
        result: list[asyncpg.Record] = await self._run("fetch", sql, args)
        return result

    async def fetchrow(self, sql: str, args: Sequence[Any]) -> asyncpg.Record | None:
        result: asyncpg.Record | None = await self._run("fetchrow", sql, args)
        return result

    async def fetchval(self, sql: str, args: Sequence[Any]) -> Any:
        return await self._run("fetchval", sql, args)

    async def execute(self, sql: str, args: Sequence[Any]) -> str:
        result: str = await self._run("execute", sql, args)
        return result

    def stream(
        self, sql: str, args: Sequence[Any], make: Callable[[Any], Any], prefetch: int
    ) -> Stream[Any]:
        from ._pgops import stream_rows

        result: Stream[Any] = stream_rows(self, sql, args, make, prefetch)
        return result

    def cursor(
        self, sql: str, args: Sequence[Any], make: Callable[[Any], Any]
    ) -> AbstractAsyncContextManager[PgCursor[Any]]:
        from ._pgops import open_cursor

        return open_cursor(self, sql, args, make)

    def ops(self, table: Table[T]) -> PgTableOps[T]:
        from ._pgops import PgTableOps

        return PgTableOps(self, table)

    def sql(self, method: str) -> PgRunner:
        return self

    def repository(self, cls: type[R]) -> R:
        return cls(self)
