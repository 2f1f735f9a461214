"""The Postgres backend's sessions: where a repository's SQL runs.

- `PoolSession`: every call on its own pooled connection (autocommit);
  `HandWritten` is the same for SQL repo did not write.
- `TransactionSession`: one connection and its transaction, owned by a unit
  of work; concurrent calls take turns on a lock.
- `ConnectionSession`: a raw connection the caller manages.

Each can also lend a connection for a multi-statement operation (`atomic`)
and for a server-side cursor (`reading`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from time import perf_counter
from typing import TYPE_CHECKING, Any

from ._begin import begin_statement
from ._conn import mark_raw
from ._observe import Observer
from ._outcome import Failures, aborted_at_commit, carry, lost_in_unit, outcome_unknown
from ._pg import DRIVER_ERRORS, Conn, Lent, PgRunner, Reading, call, discard, gone
from .errors import ConnectionLost, InvalidState, ReadOnlyViolation, RepoError

if TYPE_CHECKING:
    from ._database import Database

__all__ = [
    "ConnectionSession",
    "HandWritten",
    "PoolReading",
    "PoolSession",
    "TransactionSession",
]


class PoolReading(Reading):
    """A pooled connection in a read-only transaction, for as long as a cursor lives."""

    def __init__(self, db: Database, *, replica: bool = False, raw: bool = False) -> None:
        self._db = db
        self._conn: Conn | None = None
        self._closed = False
        self._replica = replica
        self._raw = raw

    async def open(self) -> Lent:
        if self._closed:
            msg = "this cursor is closed"
            raise InvalidState(msg)
        if self._replica:
            self._conn = await self._db._begin_read("BEGIN READ ONLY")
            if self._raw:
                mark_raw(self._conn)
            return Lent(self._conn, None, declare=self._db.pgbouncer, obs=self._db.observer)
        conn = await self._db._take()
        self._conn = conn
        if self._raw:
            mark_raw(conn)
        await call(conn, "execute", "BEGIN READ ONLY", (), self._db.observer)
        return Lent(conn, None, declare=self._db.pgbouncer, obs=self._db.observer)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            # A stream broken off, failed or cancelled must not leave its
            # connection inside a transaction, nor out of the pool.
            try:
                await _end(conn, "ROLLBACK", self._db.observer)
            finally:
                await self._db._give_back(conn)


class PoolSession(PgRunner):
    """Every call takes its own pooled connection (autocommit), so calls run concurrently."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.obs = db.observer

    async def _run(self, name: str, sql: str, args: Sequence[Any], raw: bool = False) -> Any:
        db = self._db
        conn = await db._take()
        if raw:
            mark_raw(conn)
        try:
            return await call(conn, name, sql, args, self.obs)
        finally:
            # Not shielded here: the only await in _give_back on this path is
            # asyncpg's Pool.release, which shields itself, so a cancelled
            # call still returns its connection.
            await db._give_back(conn)

    def sql(self, method: str) -> PgRunner:
        return HandWritten(self)

    @asynccontextmanager
    async def atomic(self, raw: bool = False) -> AsyncIterator[Conn]:
        conn = await self._db._take()
        if raw:
            mark_raw(conn)
        try:
            await call(conn, "execute", "BEGIN", (), self.obs)
            yield conn
        except BaseException:
            # Shielded: a cancelled operation must still end its transaction,
            # and return its connection, before the error goes on.
            await asyncio.shield(self._roll_back(conn))
            raise
        # Carried to the server's answer even if the task is cancelled: cut
        # off half-way, whether it took effect would be unknown.
        done, cancelled = await carry(call(conn, "execute", "COMMIT", (), self.obs))
        error = None if done.cancelled() else done.exception()
        # A COMMIT the server refused rolled back, on a healthy connection;
        # one with no answer may or may not have taken effect, and its
        # connection is not reused.
        answered = error is None or (
            isinstance(error, RepoError) and not isinstance(error, ConnectionLost)
        )
        await asyncio.shield(self._db._give_back(conn, discard=done.cancelled() or not answered))
        if cancelled is not None:
            raise cancelled
        if error is not None:
            raise error

    async def _roll_back(self, conn: Conn) -> None:
        try:
            await _end(conn, "ROLLBACK", self.obs)
        finally:
            await self._db._give_back(conn)

    def reading(self, raw: bool = False) -> Reading:
        return PoolReading(self._db, raw=raw)

    def __repr__(self) -> str:
        return f"<pool of {self._db!r}>"


class HandWritten(PgRunner):
    """Hand-written SQL through a `PoolSession`.

    repo cannot know what such SQL leaves behind at session level, so the
    connection it ran on gets asyncpg's full reset when released.
    """

    __slots__ = ("_session",)

    def __init__(self, session: PoolSession) -> None:
        self._session = session

    async def _run(self, name: str, sql: str, args: Sequence[Any]) -> Any:
        return await self._session._run(name, sql, args, raw=True)

    def atomic(self) -> Any:
        return self._session.atomic(raw=True)

    def reading(self) -> Reading:
        return self._session.reading(raw=True)

    def __repr__(self) -> str:
        return repr(self._session)


async def _end(conn: Conn, statement: str, obs: Observer | None) -> None:
    """End the transaction on `conn`; if that fails, the pool will not reuse it."""
    start = perf_counter()
    try:
        status = await conn.execute(statement)
    except DRIVER_ERRORS as exc:
        if obs is not None:
            obs.statement("execute", statement, (), perf_counter() - start, error=exc)
        discard(conn)
        return
    if obs is not None:
        obs.statement("execute", statement, (), perf_counter() - start, result=status)


class TransactionSession(PgRunner):
    """One connection and its transaction, owned by a unit of work.

    Calls issued concurrently (``asyncio.gather``) take turns on a lock, so the
    connection never sees two operations at once.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn: Conn | None = None
        self._lock = asyncio.Lock()
        self.obs = db.observer
        self.describe_state: Callable[[], str] = lambda: "the unit of work is not active"
        self._failures = Failures()
        # A read-write unit, and whether the server refused its writes as read-only.
        self._writes = True
        self._demoted = False

    @property
    def current(self) -> Conn:
        """The connection, for repo's own statements."""
        if self._conn is None:
            raise InvalidState(self.describe_state())
        return self._conn

    @property
    def connection(self) -> Conn:
        """The connection handed out raw (`UnitOfWork.connection`)."""
        conn = self.current
        # Whatever is done on it may outlive the transaction (a session-level
        # SET, an advisory lock): the pool fully resets it on release.
        mark_raw(conn)
        return conn

    async def _run(self, name: str, sql: str, args: Sequence[Any]) -> Any:
        async with self._lock:
            try:
                result = await call(self.current, name, sql, args, self.obs)
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
        if isinstance(exc, ReadOnlyViolation) and self._writes:
            # A read-write unit's write refused as read-only: the server is a
            # standby now (a failover demoted it). The connection must not
            # serve anyone again; a fresh one finds the new primary.
            self._demoted = True
        if isinstance(exc, ConnectionLost):
            return lost_in_unit(exc)
        return exc

    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[Conn]:
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

    def reading(self) -> Reading:
        declare = self._db.pgbouncer
        return Reading(
            lambda: Lent(
                self.current, self._lock, declare=declare, obs=self.obs, on_error=self._failed
            )
        )

    def sql(self, method: str) -> PgRunner:
        mark_raw(self.current)
        return self

    async def begin(
        self,
        isolation: str | None,
        readonly: bool,
        deferrable: bool,
        *,
        timeouts: Mapping[str, float | None] | None = None,
    ) -> None:
        statement = begin_statement(isolation, readonly, deferrable, timeouts)
        self._writes = not readonly
        if readonly:
            # A replica's connection when one is healthy, else the primary's.
            self._conn = await self._db._begin_read(statement)
            return
        self._conn = await self._db._take()
        try:
            await call(self._conn, "execute", statement, (), self.obs)
        except BaseException:
            # Shielded: a BEGIN cancelled in flight may still have run on the
            # server; the ROLLBACK (which waits for the cancelled command to
            # finish) makes sure the connection leaves no transaction behind.
            await asyncio.shield(self._abandon())
            raise

    async def _abandon(self) -> None:
        conn = self._conn
        if conn is not None and not gone(conn):
            await _end(conn, "ROLLBACK", self.obs)
        await self.close()

    async def commit(self) -> None:
        """COMMIT, and read the server's answer: ``ROLLBACK`` means it rolled back.

        `TransactionAborted` (chained to the failure that aborted the
        transaction) for that answer; the server's error for a COMMIT it
        refused; `ConnectionLost` for a connection lost before COMMIT was
        sent; `OutcomeUnknown` when no answer came.
        """
        async with self._lock:
            conn = self.current
            if gone(conn):
                msg = (
                    "the connection to the server was lost: the server closed it before COMMIT "
                    "was sent, so the unit of work's work was not committed; run it again in "
                    "a new unit (run_in_unit does)"
                )
                raise ConnectionLost(msg)
            try:
                status = await call(conn, "execute", "COMMIT", (), self.obs)
            except ConnectionLost as exc:
                raise outcome_unknown(exc) from exc
            except RepoError:
                # The server answered with an error (a serialization failure,
                # a deferred constraint): it rolled the transaction back.
                raise
            except Exception as exc:
                # No answer that says what happened (a client-side timeout).
                raise outcome_unknown(exc) from exc
        if status == "ROLLBACK":
            first = self._failures.first()
            raise aborted_at_commit(first) from first

    async def rollback(self) -> None:
        await self._run("execute", "ROLLBACK", ())

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
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._db._give_back(conn, discard=discard or self._demoted)

    def __repr__(self) -> str:
        return "<unit of work connection>"


class ConnectionSession(PgRunner):
    """A raw connection that the caller manages (its transactions included)."""

    def __init__(self, conn: Conn, *, declare: bool = False, obs: Observer | None = None) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self._declare = declare
        self.obs = obs

    async def _run(self, name: str, sql: str, args: Sequence[Any]) -> Any:
        async with self._lock:
            return await call(self._conn, name, sql, args, self.obs)

    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[Conn]:
        async with self._lock:
            if self._conn.is_in_transaction():
                yield self._conn
                return
            try:
                await call(self._conn, "execute", "BEGIN", (), self.obs)
                yield self._conn
            except BaseException:
                # Shielded: the caller's connection must not be left inside
                # a transaction this operation opened.
                await asyncio.shield(_end(self._conn, "ROLLBACK", self.obs))
                raise
            await call(self._conn, "execute", "COMMIT", (), self.obs)

    def reading(self) -> Reading:
        def lend() -> Lent:
            if not self._conn.is_in_transaction():
                msg = (
                    "a server-side cursor needs a transaction: stream inside a unit of work, "
                    "inside `async with conn.transaction():`, or from db.repository(...)"
                )
                raise InvalidState(msg)
            return Lent(self._conn, self._lock, declare=self._declare, obs=self.obs)

        return Reading(lend)

    def __repr__(self) -> str:
        return "<caller's connection>"
