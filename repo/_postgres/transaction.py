"""The one way a transaction holds a pooled connection: take it, BEGIN, end, give it back.

Units of work, pool-level operations of several statements (bulk loads and
upserts), cursors, and reads on replicas all go through a `Transaction`, so
that every one of them follows one failure policy:

- BEGIN failed, or was cancelled in flight: it may still have run on the
  server, so the connection is rolled back (ROLLBACK waits for a cancelled
  command to finish) before it goes back; if that fails too, it is
  terminated instead.
- The work failed or was cancelled: ROLLBACK, then back to the pool; a
  ROLLBACK that fails leaves the state unknown, and the connection is
  terminated.
- COMMIT: its caller carries it to the server's answer even if the task is
  cancelled meanwhile (`repo._outcome.carry`). An answer, even an error (a
  serialization failure, a deferred constraint), leaves a healthy
  connection, which goes back. No answer (the connection broke with COMMIT
  in flight) leaves the outcome unknown, and the connection is terminated.
- A connection closed under us, or left inside a transaction, is never
  reused; nor is one whose server refused a read-write transaction's write
  as read-only (a primary demoted to a standby by a failover).

Every give-back is shielded from cancellation: a cancelled task must still
return its connection, or the pool shrinks by one for good.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from repo._observe import Observer
from repo._options import TransactionOptions
from repo._outcome import carry, outcome_unknown
from repo.errors import ConnectionLost, ReadOnlyViolation, RepoError

from .connection import DRIVER_ERRORS, Conn, discard, gone, mark_raw
from .run import call

__all__ = ["CallersConnection", "Source", "Transaction", "atomically", "begin_statement"]


def begin_statement(options: TransactionOptions) -> str:
    """The BEGIN for `options`, with its timeouts as ``SET LOCAL``s in the same round trip.

    ``SET LOCAL`` ends with the transaction, so a timeout never outlives it.
    """
    parts = ["BEGIN"]
    if options.isolation is not None:
        parts.append(f"ISOLATION LEVEL {options.isolation.value.upper()}")
    if options.readonly:
        parts.append("READ ONLY")
    if options.deferrable:
        parts.append("DEFERRABLE")
    statement = " ".join(parts)
    for name, seconds in (
        ("statement_timeout", options.statement_timeout),
        ("lock_timeout", options.lock_timeout),
    ):
        if seconds is not None:
            statement += f"; SET LOCAL {name} = {max(1, round(seconds * 1000))}"
    return statement


class Source(Protocol):
    """Where a transaction's connection comes from: the primary's pool, or a replica's."""

    async def take(self) -> Conn:
        """A connection (bounded wait; `PoolTimeout` or `ConnectionLost` otherwise)."""
        ...

    async def give_back(self, conn: Conn, *, discard: bool = False) -> None:
        """Return `conn`; terminate it instead if `discard` or its state says so."""
        ...


class Transaction:
    """One pooled connection inside one transaction, from BEGIN to give-back.

    `begin` takes the connection and BEGINs; then `commit` or `rollback`;
    `release` gives the connection back (terminating it if its state is
    unknown). See the module's docstring for what happens on each failure.
    """

    __slots__ = ("_source", "_statement", "conn", "discard", "obs", "raw")

    def __init__(
        self, source: Source, statement: str, obs: Observer | None, *, raw: bool = False
    ) -> None:
        self._source = source
        self._statement = statement
        self.obs = obs
        # The connection will be exposed raw (hand-written SQL): fully reset it on release.
        self.raw = raw
        self.conn: Conn | None = None
        #: Terminate the connection at release rather than reuse it.
        self.discard = False

    async def begin(self) -> Conn:
        """Take a connection and BEGIN on it."""
        conn = await self._source.take()
        if self.raw:
            mark_raw(conn)
        self.conn = conn
        try:
            await call(conn, "execute", self._statement, (), self.obs)
        except BaseException:
            await asyncio.shield(self._abandon())
            raise
        return conn

    async def _abandon(self) -> None:
        await self._rollback()
        await self.release()

    async def commit(self) -> str:
        """Send COMMIT and return the server's command tag (``COMMIT``, or ``ROLLBACK``
        for a transaction an earlier failure aborted).

        `ConnectionLost` if the connection was closed before COMMIT was sent
        (nothing committed); the server's `RepoError` if it refused (rolled
        back); `OutcomeUnknown` if no answer came, and the connection will be
        terminated at release.
        """
        conn = self.conn
        if conn is None or gone(conn):
            self.discard = True
            msg = (
                "the connection to the server was lost: the server closed it before COMMIT "
                "was sent, so nothing was committed"
            )
            raise ConnectionLost(msg)
        try:
            status: str = await call(conn, "execute", "COMMIT", (), self.obs)
        except ConnectionLost as exc:
            self.discard = True
            raise outcome_unknown(exc) from exc
        except RepoError:
            # The server answered: it rolled the transaction back.
            raise
        except Exception as exc:
            # No answer that says what happened (a client-side timeout).
            self.discard = True
            raise outcome_unknown(exc) from exc
        except BaseException:
            self.discard = True
            raise
        return status

    async def rollback(self) -> BaseException | None:
        """ROLLBACK (shielded); if it fails, the connection is terminated at release.

        Returns the failure, if any, for a caller that must say so.
        """
        return await asyncio.shield(self._rollback())

    async def _rollback(self) -> BaseException | None:
        conn = self.conn
        if conn is None or gone(conn):
            return None
        try:
            await call(conn, "execute", "ROLLBACK", (), self.obs)
        except (*DRIVER_ERRORS, RepoError) as exc:
            self.discard = True
            discard(conn)
            return exc
        return None

    async def release(self, *, discard: bool = False) -> None:
        """Give the connection back: terminated if `discard` or `self.discard`.

        Shielded without a task of its own (one fewer per unit of work): a
        source's `give_back` does its work before its one await, asyncpg's
        ``Pool.release``, which shields itself, so a cancelled task still
        returns its connection.
        """
        conn, self.conn = self.conn, None
        if conn is not None:
            await self._source.give_back(conn, discard=discard or self.discard)


class CallersConnection:
    """A `Source` that is one connection the caller manages: never pooled, never terminated."""

    __slots__ = ("conn",)

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def take(self) -> Conn:
        return self.conn

    async def give_back(self, conn: Conn, *, discard: bool = False) -> None:
        return None


@asynccontextmanager
async def atomically(transaction: Transaction) -> AsyncIterator[Conn]:
    """``async with``: `transaction` begun, its connection yielded, then committed or rolled back.

    For repo's own operations of several statements (a bulk load, an
    upsert through a staging table): all or nothing, and the connection back
    in any case. A COMMIT that gets no answer raises `OutcomeUnknown`; a
    task cancelled meanwhile gets its `CancelledError` once the answer is in.
    """
    conn = await transaction.begin()
    try:
        yield conn
    except BaseException as exc:
        if isinstance(exc, ReadOnlyViolation):
            # Refused as read-only: a standby now (see `Transaction`).
            transaction.discard = True
        await transaction.rollback()
        await transaction.release()
        raise
    done, cancelled = await carry(transaction.commit())
    if done.cancelled():
        transaction.discard = True
    await transaction.release()
    if cancelled is not None:
        raise cancelled
    if done.cancelled():
        raise asyncio.CancelledError
    error = done.exception()
    if error is not None:
        raise error
