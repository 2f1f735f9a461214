"""The pool's connections: taking one (a bounded wait), giving it back (or replacing it).

`Pool` wraps asyncpg's pool for `Database` and its sessions: `take` waits at
most `acquire_timeout` and reports the waits; `give_back` terminates a
connection whose state is unknown instead of pooling it.

Opening connections so that a cancelled acquire leaves nothing behind:
asyncpg's pool opens a connection inside the acquire that needs it. An
acquire cancelled while the socket is being set up (a cancelled request, a
timeout) leaves behind a future whose exception nobody retrieves, and
asyncio logs "Future exception was never retrieved: unexpected
connection_lost()". `Connector`, the pool's ``connect=``, runs each connect
as a task of its own: a cancelled acquire goes on at once, and the connect
finishes out of sight, its connection closed.

The pool then opens connections again up to ``min_size`` by itself
(asyncpg 0.32 keeps that floor after connections close or acquires fail).
"""

from __future__ import annotations

import asyncio
from time import perf_counter
from typing import Any

import asyncpg

from repo._observe import Observer
from repo.errors import InvalidState, PoolTimeout

from .connection import Conn, gone, mark_lent
from .connection import discard as terminate
from .errors import translate

__all__ = ["Connector", "Pool", "has_free"]


class Connector:
    """The pool's ``connect=``: ``asyncpg.connect`` in a task a cancelled acquire leaves alone."""

    def __init__(self) -> None:
        self._pending: set[asyncio.Task[Any]] = set()

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        task = asyncio.ensure_future(asyncpg.connect(*args, **kwargs))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            # Bounded by the connect timeout; held here so that the loop does
            # not lose it half-way.
            self._pending.add(task)
            task.add_done_callback(self._abandoned)
            raise

    def _abandoned(self, task: asyncio.Task[Any]) -> None:
        self._pending.discard(task)
        # Read, so that no failure goes unretrieved; a connection nobody
        # will use is closed at once.
        if not task.cancelled() and task.exception() is None:
            task.result().terminate()

    async def aclose(self) -> None:
        """Wait for the connects still finishing (each bounded by the connect timeout)."""
        while self._pending:
            await asyncio.wait(set(self._pending))


def has_free(pool: asyncpg.Pool) -> bool | None:
    """Whether `pool` has a connection slot free right now (acquire will not wait).

    asyncpg's queue of free slots, when it has one as expected: the public
    ``get_idle_size()`` walks every slot, which costs as much as the timeout
    this check saves. None when the queue is not there to ask: the acquire
    is then always timed, and not reported as a wait.
    """
    queue = getattr(pool, "_queue", None)
    if not isinstance(queue, asyncio.Queue):
        return None
    return not queue.empty()


class Pool:
    """One asyncpg pool, as `repo` takes connections from it and gives them back."""

    __slots__ = ("_pool", "acquire_timeout", "closed", "max_size", "obs", "opened", "where")

    def __init__(
        self,
        pool: asyncpg.Pool | None,
        *,
        max_size: int,
        acquire_timeout: float,
        obs: Observer,
        where: str,
    ) -> None:
        # None until the Database opens it, and again once it is closed.
        self._pool = pool
        self.closed = False
        self.max_size = max_size
        self.acquire_timeout = acquire_timeout
        self.obs = obs
        # The database, as errors name it (password masked).
        self.where = where
        # Connections the pool opened: an acquire during which this moved
        # had to wait for one. The pool's init hook counts them.
        self.opened = 0

    @property
    def pool(self) -> asyncpg.Pool:
        """The asyncpg pool; `InvalidState` before the Database opened it, or after it closed."""
        pool = self._pool
        if pool is None:
            msg = "the Database is closed" if self.closed else "the Database is not open: await it"
            raise InvalidState(msg)
        return pool

    @property
    def attached(self) -> bool:
        """Whether the Database has opened it (and not closed it since)."""
        return self._pool is not None

    def attach(self, pool: asyncpg.Pool | None, where: str | None = None) -> None:
        """Start taking connections from `pool` (None: the Database closed)."""
        self._pool = pool
        self.closed = pool is None
        if where is not None:
            self.where = where

    async def take(self) -> Conn:
        """A pooled connection, or `PoolTimeout` after `acquire_timeout`."""
        pool = self.pool
        opened = self.opened
        free = has_free(pool)
        # No slot free: this acquire waits for a release.
        exhausted = free is False
        start = perf_counter()
        try:
            if free:
                # A connection is free: acquiring it does not wait (at worst
                # it reconnects, bounded by connect_timeout), so the timeout,
                # a measurable part of a short request, is not armed.
                conn: Conn = await pool.acquire()
            else:
                # asyncio.timeout rather than acquire(timeout=), which runs
                # the wait in a task of its own.
                async with asyncio.timeout(self.acquire_timeout):
                    conn = await pool.acquire()
        except TimeoutError:
            raise self._timeout() from None
        except (
            OSError,
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            asyncpg.exceptions.InternalClientError,
        ) as exc:
            # Typically the server is down or restarting: fail fast. The pool
            # opens a fresh connection on the next acquire, so it recovers by
            # itself once the server is back. During a failover no host of a
            # multi-host DSN may match target_session_attrs yet (the driver's
            # TargetServerAttributeNotMatched): the same, for a moment.
            raise translate(exc, closed=True, context=f"connecting to {self.where}") from exc
        mark_lent(conn)
        if exhausted or opened != self.opened:
            if exhausted:
                detail = f"the pool was exhausted (all {self.max_size} in use)"
            else:
                detail = "a new connection had to be opened"
            self.obs.pool_event("acquire_wait", detail, perf_counter() - start)
        return conn

    def _timeout(self) -> PoolTimeout:
        pool = self.pool
        if pool.get_size() < self.max_size or pool.get_idle_size() > 0:
            # Not all in use: the time went on opening a connection.
            msg = (
                f"no connection to {self.where} within {self.acquire_timeout:g}s: "
                "the server is slow to accept connections, or unreachable"
            )
        else:
            msg = (
                f"no connection free within {self.acquire_timeout:g}s "
                f"(pool of {self.max_size}, all in use): raise max_size or "
                "acquire_timeout, or hold connections for less time"
            )
        return PoolTimeout(msg)

    async def give_back(self, conn: Conn, *, discard: bool = False) -> None:
        """Return `conn`; one closed, inside a transaction, or `discard`ed (its state
        unknown) is terminated instead, and the pool opens a fresh one."""
        pool = self._pool
        if pool is None:
            # The Database closed meanwhile: its pool took care of the rest.
            return
        if gone(conn):
            self.obs.pool_event("connection_replaced", "it was lost or closed while in use")
        elif discard or conn.is_in_transaction():
            # Its state is unknown (a COMMIT or ROLLBACK cut off half-way, a
            # transaction left open): never hand it to the next user.
            conn.terminate()
            reason = (
                "its state is unknown (a BEGIN, COMMIT or ROLLBACK was cut off), or its "
                "server refused a write as read-only (a primary demoted to a standby)"
                if discard
                else "it was left inside a transaction"
            )
            self.obs.pool_event("connection_replaced", reason)
        try:
            # A connection already gone is a no-op here, or is cleaned up.
            await pool.release(conn)  # type: ignore[arg-type]  # a proxy, as pool.acquire gave it
        except (
            OSError,
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            asyncpg.exceptions.InternalClientError,
        ):
            # The reset on release failed: asyncpg terminated it already,
            # or this does; the pool opens a fresh one when needed.
            terminate(conn)
            self.obs.pool_event("connection_replaced", "its reset on release failed")
