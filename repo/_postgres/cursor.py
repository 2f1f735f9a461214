"""Server-side cursors: a connection lent to a cursor, and the cursors and streams on it.

- `Lent`: a connection lent for a cursor's statements (taking turns on a
  unit's lock), each translated and observed;
- `Reading`: where a cursor's connection comes from, opened and closed
  explicitly (a unit's own connection, or a pooled one in a read-only
  transaction of its own, see `PoolReading`);
- `PgCursor` and `PgSource`: the moves of `repo.Cursor` and the batches of a
  `repo.Stream`, on asyncpg's cursors or (behind PgBouncer) ``DECLARE``d ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from time import perf_counter
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import asyncpg

from repo._observe import Observer
from repo._stream import Stream, check_count
from repo.errors import InvalidState

from .bouncer import declare_cursor
from .connection import DRIVER_ERRORS, Conn
from .errors import failure
from .run import DEBUG, debug_cached
from .transaction import Transaction

if TYPE_CHECKING:
    pass

__all__ = [
    "Lent",
    "PgCursor",
    "PgSource",
    "PoolReading",
    "Reader",
    "Reading",
    "open_cursor",
    "stream_rows",
]

T = TypeVar("T")


class Lent:
    """A connection lent for several statements; `lock` guards it between them."""

    __slots__ = ("conn", "declare", "lock", "obs", "on_error", "query")

    def __init__(
        self,
        conn: Conn,
        lock: asyncio.Lock | None,
        *,
        declare: bool = False,
        obs: Observer | None = None,
        on_error: Callable[[BaseException], BaseException] | None = None,
    ) -> None:
        self.conn = conn
        self.lock = lock
        self.declare = declare
        self.obs = obs
        # Told of every failure, and returns the error to raise (a unit of
        # work notes it, and says a lost connection in its own words).
        self.on_error = on_error
        self.query = ""

    async def open_cursor(self, sql: str, args: Sequence[Any]) -> Any:
        """A cursor for `sql` (the portal lives until the transaction ends).

        asyncpg's own, or with `declare` (behind PgBouncer) a ``DECLARE``d
        one, which needs no named prepared statement.
        """
        self.query = sql
        if self.declare:
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
            err = failure(exc, self.conn)
            if self.on_error is not None:
                err = self.on_error(err)
            if err is exc:
                raise
            raise err from err.__cause__
        if self.obs is not None:
            self._observe(fn, args, perf_counter() - start, result, None)
        return result

    def _observe(
        self, fn: Any, args: tuple[Any, ...], elapsed: float, result: Any, error: Exception | None
    ) -> None:
        obs = self.obs
        if obs is None or not (
            obs.hooks or elapsed >= obs.slow or debug_cached(DEBUG) is not False
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


class PgCursor(Generic[T]):
    """A Postgres cursor on a lent connection, mapping rows with `make`."""

    def __init__(self, lent: Lent, cursor: Any, make: Callable[[Any], T]) -> None:
        self._lent = lent
        self._cursor = cursor
        self._make = make
        self.closed = False

    def _check(self) -> None:
        if self.closed:
            msg = "the cursor is closed: use it inside its `async with` block"
            raise InvalidState(msg)

    async def fetch(self, n: int) -> list[T]:
        self._check()
        rows = await self._lent.cursor_call(self._cursor.fetch, check_count(n, "fetch()"))
        make = self._make
        return [make(r) for r in rows]

    async def fetchrow(self) -> T | None:
        self._check()
        row = await self._lent.cursor_call(self._cursor.fetchrow)
        return None if row is None else self._make(row)

    async def forward(self, n: int) -> int:
        self._check()
        moved: int = await self._lent.cursor_call(self._cursor.forward, check_count(n, "forward()"))
        return moved


class PgSource(Generic[T]):
    """Batches of `make(row)` from a Postgres cursor over `sql`."""

    def __init__(
        self,
        reading: Reading,
        sql: str,
        args: Sequence[Any],
        make: Callable[[Any], T],
        prefetch: int,
        *,
        make_many: Callable[[list[Any]], list[T]] | None = None,
    ) -> None:
        self._reading = reading
        self._sql = sql
        self._args = args
        self._make_many = make_many or (lambda rows: [make(r) for r in rows])
        self._prefetch = prefetch
        self._cursor: Any = None
        self._lent: Lent | None = None
        self._done = False

    async def batch(self) -> list[T]:
        if self._done:
            return []
        if self._lent is None:
            self._lent = await self._reading.open()
            self._cursor = await self._lent.open_cursor(self._sql, self._args)
        rows = await self._lent.cursor_call(self._cursor.fetch, self._prefetch)
        if len(rows) < self._prefetch:
            self._done = True
        return self._make_many(rows)

    async def close(self) -> None:
        self._done = True
        await self._reading.close()


class Reader(Protocol):
    """What lends a connection to a cursor: any of the sessions."""

    def reading(self) -> Reading: ...


def stream_rows(
    runner: Reader,
    sql: str,
    args: Sequence[Any],
    make: Any,
    prefetch: int,
    *,
    make_many: Any = None,
) -> Stream[Any]:
    """A `Stream` of `make(row)` over a server-side cursor for `sql`.

    `make_many(rows)`, if given, maps a whole batch (a list comprehension
    with no call per row is measurably faster on big streams).
    """
    return Stream(PgSource(runner.reading(), sql, args, make, prefetch, make_many=make_many))


@asynccontextmanager
async def open_cursor(
    runner: Reader, sql: str, args: Sequence[Any], make: Any
) -> AsyncIterator[PgCursor[Any]]:
    """``async with``: a `PgCursor` for `sql`, closed (and its connection freed) at the end."""
    reading = runner.reading()
    try:
        lent = await reading.open()
        cursor = PgCursor(lent, await lent.open_cursor(sql, args), make)
        try:
            yield cursor
        finally:
            cursor.closed = True
    finally:
        await asyncio.shield(reading.close())


class PoolReading(Reading):
    """A pooled connection in a read-only transaction, for as long as a cursor lives."""

    def __init__(self, begin: Callable[[], Awaitable[Transaction]], *, declare: bool) -> None:
        self._begin = begin
        self._declare = declare
        self._transaction: Transaction | None = None
        self._closed = False

    async def open(self) -> Lent:
        if self._closed:
            msg = "this cursor is closed"
            raise InvalidState(msg)
        transaction = await self._begin()
        self._transaction = transaction
        conn = transaction.conn
        if conn is None:
            msg = "the cursor's transaction ended before it opened"
            raise InvalidState(msg)
        return Lent(conn, None, declare=self._declare, obs=transaction.obs)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        transaction, self._transaction = self._transaction, None
        if transaction is not None:
            # A stream broken off, failed or cancelled must not leave its
            # connection inside a transaction, nor out of the pool.
            await transaction.rollback()
            await transaction.release()
