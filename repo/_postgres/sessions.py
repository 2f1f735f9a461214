"""Where a repository's SQL runs on PostgreSQL: the sessions.

- `PoolSession`: every call on its own pooled connection (autocommit), so
  that calls issued together run concurrently; its `sql()` is the same for
  SQL repo did not write (the connection then gets the full reset).
- `UnitSession`: one connection and its transaction, owned by a unit of
  work; concurrent calls take turns on a lock.
- `ConnectionSession`: a raw connection the caller manages.

Each lends a connection for an operation of several statements (`atomic`)
and for a server-side cursor (`reading`); every transaction they open is a
`Transaction` (see ``transaction.py`` for the one failure policy).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from repo._observe import Observer
from repo._options import TransactionOptions
from repo._outcome import aborted_at_commit, lost_in_unit
from repo._stream import Stream
from repo.errors import ConnectionLost, InvalidState, ReadOnlyViolation

from .aggregate import PgAggregateReads
from .coalesce import Coalescer, Route, held
from .connection import Conn, mark_raw
from .cursor import Lent, PoolReading, Reading, open_cursor, stream_rows
from .failures import Failures
from .ops import PgTableOps
from .pool import Pool
from .run import PgRunner, call
from .transaction import CallersConnection, Transaction, atomically, begin_statement

if TYPE_CHECKING:
    from repo._aggregate import Aggregate
    from repo._mapping import Table

__all__ = [
    "BeginRead",
    "ConnectionSession",
    "PoolSession",
    "SessionBase",
    "UnitSession",
]

T = TypeVar("T")
R = TypeVar("R")

# Begins a read-only transaction (its BEGIN given) where reads go: a
# replica's connection when one is healthy, else the primary's.
BeginRead = Callable[[str, bool], Awaitable[Transaction]]


class SessionBase(PgRunner):
    """What every PostgreSQL session offers a repository: its table operations,
    hand-written SQL, streams and cursors, and sibling repositories."""

    declare = False
    # Pool-level lookups by key pending together go as one statement; None:
    # every call is its own (units of work, the caller's connection).
    coalescer: Coalescer | None = None

    def route(self) -> Route:
        """Where this session's reads go, and how to run a statement there (for a batch)."""
        return (None, self._run, None)

    @property
    def keeps_locks(self) -> bool:
        """Whether a row lock outlives its call: not where every call is a transaction."""
        return False

    def atomic(self) -> AbstractAsyncContextManager[Conn]:
        """``async with``: one connection inside a transaction, exclusively."""
        raise NotImplementedError

    def reading(self) -> Reading:
        """A connection inside a transaction for a cursor, opened and closed explicitly."""
        raise NotImplementedError

    def ops(self, table: Table[T]) -> PgTableOps[T]:
        return PgTableOps(self, table)

    def sql(self, method: str) -> SessionBase:
        return self

    def aggregate(self, aggregate: Aggregate[T]) -> PgAggregateReads[T]:
        return PgAggregateReads(self, aggregate)

    @asynccontextmanager
    async def atomic_session(self) -> AsyncIterator[SessionBase]:
        """A session on one connection inside a transaction (this session's, in a unit)."""
        async with self.atomic() as conn:
            yield ConnectionSession(conn, declare=self.declare, obs=self.obs)

    def repository(self, cls: Callable[[Any], R]) -> R:
        return cls(self)

    def stream(
        self, sql: str, args: Sequence[Any], make: Callable[[Any], Any], prefetch: int
    ) -> Stream[Any]:
        return stream_rows(self, sql, args, make, prefetch)

    def cursor(
        self, sql: str, args: Sequence[Any], make: Callable[[Any], Any]
    ) -> AbstractAsyncContextManager[Any]:
        return open_cursor(self, sql, args, make)


class PoolSession(SessionBase):
    """Every call takes its own pooled connection (autocommit), so calls run concurrently.

    `raw`: the session of SQL repo did not write; repo cannot know what such
    SQL leaves behind at session level, so its connection is fully reset
    when released. `coalescer`: the Database's, when its lookups by key
    are coalesced (see ``coalesce.py``).
    """

    def __init__(
        self,
        pool: Pool,
        obs: Observer,
        *,
        declare: bool = False,
        raw: bool = False,
        coalescer: Coalescer | None = None,
    ) -> None:
        self._pool = pool
        self._observer = obs
        self.obs = obs
        self.declare = declare
        self._raw = raw
        self.coalescer = None if raw else coalescer
        self._route: Route = (None, self._run, functools.partial(held, pool, obs))

    def route(self) -> Route:
        return self._route

    async def _run(
        self, name: str, sql: str, args: Sequence[Any], table: Table[Any] | None = None
    ) -> Any:
        pool = self._pool
        conn = await pool.take()
        if self._raw:
            mark_raw(conn)
        demoted = False
        try:
            return await call(conn, name, sql, args, self.obs, table=table)
        except ReadOnlyViolation:
            # A pool-level write refused as read-only: the server is a standby
            # now (a failover demoted it), and so is every later statement on
            # this connection; a fresh one finds the new primary.
            demoted = True
            raise
        finally:
            # Not shielded here: the only await in give_back on this path is
            # asyncpg's Pool.release, which shields itself, so a cancelled
            # call still returns its connection.
            await pool.give_back(conn, discard=demoted)

    def sql(self, method: str) -> SessionBase:
        if self._raw:
            return self
        return PoolSession(self._pool, self._observer, declare=self.declare, raw=True)

    def atomic(self) -> AbstractAsyncContextManager[Conn]:
        return atomically(Transaction(self._pool, "BEGIN", self.obs, raw=self._raw))

    def reading(self) -> Reading:
        async def begin() -> Transaction:
            transaction = Transaction(self._pool, "BEGIN READ ONLY", self.obs, raw=self._raw)
            await transaction.begin()
            return transaction

        return PoolReading(begin, declare=self.declare)

    def __repr__(self) -> str:
        return f"<pool of {self._pool.where}>"


class UnitSession(SessionBase):
    """One connection and its transaction, owned by a unit of work.

    Calls issued concurrently (``asyncio.gather``) take turns on a lock, so the
    connection never sees two operations at once.
    """

    @property
    def keeps_locks(self) -> bool:
        return True

    def __init__(
        self,
        pool: Pool,
        obs: Observer,
        options: TransactionOptions,
        *,
        declare: bool = False,
        begin_read: BeginRead | None = None,
    ) -> None:
        self._pool = pool
        self.obs = obs
        self.declare = declare
        self._options = options
        self._begin_read = begin_read
        self._transaction: Transaction | None = None
        self._lock = asyncio.Lock()
        self.describe_state: Callable[[], str] = lambda: "the unit of work is not active"
        self._failures = Failures()
        # Whether the server refused this read-write unit's writes as read-only.
        self._demoted = False

    @property
    def current(self) -> Conn:
        """The connection, for repo's own statements."""
        transaction = self._transaction
        if transaction is None or transaction.conn is None:
            raise InvalidState(self.describe_state())
        return transaction.conn

    @property
    def connection(self) -> Conn:
        """The connection handed out raw (`UnitOfWork.connection`)."""
        conn = self.current
        # Whatever is done on it may outlive the transaction (a session-level
        # SET, an advisory lock): the pool fully resets it on release.
        mark_raw(conn)
        return conn

    async def _run(
        self, name: str, sql: str, args: Sequence[Any], table: Table[Any] | None = None
    ) -> Any:
        async with self._lock:
            try:
                result = await call(self.current, name, sql, args, self.obs, table=table)
            except BaseException as exc:
                err = self._failed(exc)
                if err is exc:
                    raise
                raise err from err.__cause__
            if self._failures.suspects:
                self._failures.succeeded()
            return result

    def _failed(self, exc: BaseException) -> BaseException:
        """Note `exc`, a statement's failure, and return the error to raise for it."""
        self._failures.failed(exc)
        if isinstance(exc, ReadOnlyViolation) and not self._options.readonly:
            # A read-write unit's write refused as read-only: the server is a
            # standby now (a failover demoted it). The connection must not
            # serve anyone again; a fresh one finds the new primary.
            self._demoted = True
        if isinstance(exc, ConnectionLost):
            return lost_in_unit(exc)
        return exc

    @asynccontextmanager
    async def _atomic(self) -> AsyncIterator[Conn]:
        # The unit's transaction already makes the operation atomic: a failure
        # aborts it, and the unit rolls back.
        async with self._lock:
            try:
                yield self.current
            except BaseException as exc:
                err = self._failed(exc)
                if err is exc:
                    raise
                raise err from err.__cause__
            if self._failures.suspects:
                self._failures.succeeded()

    def atomic(self) -> AbstractAsyncContextManager[Conn]:
        return self._atomic()

    def reading(self) -> Reading:
        return Reading(
            lambda: Lent(
                self.current, self._lock, declare=self.declare, obs=self.obs, on_error=self._failed
            )
        )

    def sql(self, method: str) -> SessionBase:
        mark_raw(self.current)
        return self

    async def begin(self) -> None:
        statement = begin_statement(self._options)
        if self._options.readonly and self._begin_read is not None:
            self._transaction = await self._begin_read(statement, False)
            return
        transaction = Transaction(self._pool, statement, self.obs)
        await transaction.begin()
        self._transaction = transaction

    async def commit(self) -> None:
        """COMMIT, and read the server's answer: ``ROLLBACK`` means it rolled back.

        `TransactionAborted` (chained to the failure that aborted the
        transaction) for that answer; the server's error for a COMMIT it
        refused; `ConnectionLost` for a connection lost before COMMIT was
        sent; `OutcomeUnknown` when no answer came.
        """
        async with self._lock:
            transaction = self._transaction
            if transaction is None:
                raise InvalidState(self.describe_state())
            status = await transaction.commit()
        if status == "ROLLBACK":
            first = self._failures.first()
            raise aborted_at_commit(first) from first

    async def rollback(self) -> None:
        async with self._lock:
            transaction = self._transaction
            if transaction is None:
                raise InvalidState(self.describe_state())
            failure = await transaction.rollback()
        if failure is not None:
            raise failure

    async def savepoint(self, name: str) -> None:
        await self._run("execute", f"SAVEPOINT {name}", ())
        self._failures.opened()

    async def release_savepoint(self, name: str) -> None:
        try:
            await self._run("execute", f"RELEASE SAVEPOINT {name}", ())
        finally:
            self._failures.released()

    async def rollback_to_savepoint(self, name: str) -> None:
        # Both in one round trip: undo the savepoint's work, then drop it.
        await self._run("execute", f"ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}", ())
        self._failures.rolled_back()

    async def close(self, *, discard: bool = False) -> None:
        """Give the connection back; one still inside a transaction is terminated.

        `discard` terminates it in any case: its state is unknown (a COMMIT
        or ROLLBACK that failed or was cancelled half-way). So is one on a
        server that refused this read-write unit's writes as read-only.
        """
        transaction, self._transaction = self._transaction, None
        if transaction is not None:
            await transaction.release(discard=discard or self._demoted)

    def __repr__(self) -> str:
        return "<unit of work connection>"


class ConnectionSession(SessionBase):
    """A raw connection that the caller manages (its transactions included)."""

    def __init__(self, conn: Conn, *, declare: bool = False, obs: Observer | None = None) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self.declare = declare
        self.obs = obs

    @property
    def keeps_locks(self) -> bool:
        """Inside the caller's transaction a lock lasts until the caller ends it."""
        return self._conn.is_in_transaction()

    async def _run(
        self, name: str, sql: str, args: Sequence[Any], table: Table[Any] | None = None
    ) -> Any:
        async with self._lock:
            return await call(self._conn, name, sql, args, self.obs, table=table)

    @asynccontextmanager
    async def _atomic(self) -> AsyncIterator[Conn]:
        async with self._lock:
            if self._conn.is_in_transaction():
                # Inside the caller's own transaction, which makes it atomic.
                yield self._conn
                return
            transaction = Transaction(CallersConnection(self._conn), "BEGIN", self.obs)
            async with atomically(transaction) as conn:
                yield conn

    def atomic(self) -> AbstractAsyncContextManager[Conn]:
        return self._atomic()

    def reading(self) -> Reading:
        def lend() -> Lent:
            if not self._conn.is_in_transaction():
                msg = (
                    "a server-side cursor needs a transaction: stream inside a unit of work, "
                    "inside `async with conn.transaction():`, or from db.repository(...)"
                )
                raise InvalidState(msg)
            return Lent(self._conn, self._lock, declare=self.declare, obs=self.obs)

        return Reading(lend)

    def __repr__(self) -> str:
        return "<caller's connection>"
