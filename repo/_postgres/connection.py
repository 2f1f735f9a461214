"""The pool's connections, and a reset on release that does only what is needed.

asyncpg's pool resets every released connection with one more round trip
(``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``),
which costs about a third of the throughput of short requests. A connection
that only ran the statements `repo` generates needs none of it: they hold no
session-level locks, cursors outside a transaction, LISTENs or settings
(timeouts are ``SET LOCAL``; cursors and staging tables end with their
transaction). So the pool skips the reset for a connection that was lent
through `mark_lent` (repo's own operations) and never exposed raw since.

Everything else gets the full reset on release: asyncpg's reset query, plus
``DISCARD TEMP`` and ``DISCARD SEQUENCES`` (asyncpg's leaves temporary
tables and ``currval`` behind for the next user):

- a connection handed out raw (`Database.acquire`, `UnitOfWork.connection`),
  or one that ran hand-written SQL (`Repository.query`, `execute`, ...):
  `mark_raw`;
- a connection taken straight from ``db.pool``, which `repo` never saw;
- a new connection on which the user's ``init`` hook ran (as with asyncpg,
  what ``init`` sets at session level lasts until the first release).

An open transaction is rolled back in any case (asyncpg does that itself
before calling the reset), and `Database` terminates rather than resets a
connection whose state is unknown.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

__all__ = [
    "DRIVER_ERRORS",
    "Conn",
    "RepoConnection",
    "discard",
    "full_reset_query",
    "gone",
    "mark_lent",
    "mark_raw",
    "reset_on_release",
]

Conn: TypeAlias = "asyncpg.Connection | PoolConnectionProxy[asyncpg.Record]"

# What a statement on a connection can raise from the driver or the socket.
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


# Cancel requests still running for connections that ended (see _clean_tasks).
_finishing: set[asyncio.Task[Any]] = set()


class RepoConnection(asyncpg.Connection):
    """An ``asyncpg.Connection`` that remembers how it was used since its last release."""

    __slots__ = ("_repo_dirty", "_repo_lent")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Lent by repo for its own statements only, since the last release.
        self._repo_lent = False
        # Exposed raw (or set up by the user's init): needs the full reset.
        self._repo_dirty = False

    def _clean_tasks(self) -> None:
        # When a connection ends, asyncpg cancels its cancel requests still in
        # flight (each sent on a connection of its own after a statement was
        # cancelled). One cancelled just as its socket connects leaves a
        # future whose exception nobody retrieves: asyncio logs "Future
        # exception was never retrieved: unexpected connection_lost()".
        # They are short and end by themselves once this connection is gone,
        # so they are let finish instead (held here meanwhile).
        pending: set[asyncio.Task[Any]] | None = getattr(self, "_cancellations", None)
        if pending:
            current = asyncio.current_task()
            for task in pending:
                if task is not current and not task.done():
                    _finishing.add(task)
                    task.add_done_callback(_finishing.discard)
            pending.clear()
        super()._clean_tasks()  # type: ignore[misc]


def _unwrap(conn: Any) -> Any:
    """The ``Connection`` behind a pool's proxy (or `conn` itself)."""
    return getattr(conn, "_con", None) or conn


def mark_lent(conn: Any) -> None:
    """`conn` is lent for repo's own statements: no reset needed unless marked raw."""
    raw = _unwrap(conn)
    if isinstance(raw, RepoConnection):
        raw._repo_lent = True


def mark_raw(conn: Any) -> None:
    """`conn` is exposed raw, or ran SQL repo did not write: fully reset it on release."""
    raw = _unwrap(conn)
    if isinstance(raw, RepoConnection):
        raw._repo_dirty = True


async def reset_on_release(conn: asyncpg.Connection) -> None:
    """The pool's ``reset=``: asyncpg's reset query, unless repo knows it is not needed.

    asyncpg has already dropped the connection's listeners and rolled back
    any open transaction before calling this.
    """
    if isinstance(conn, RepoConnection):
        lent, dirty = conn._repo_lent, conn._repo_dirty
        conn._repo_lent = conn._repo_dirty = False
        if lent and not dirty:
            return
    query = full_reset_query(conn)
    if query:
        await conn.execute(query)


def full_reset_query(conn: asyncpg.Connection) -> str:
    """asyncpg's reset query, plus what it leaves out: temporary tables and sequence state."""
    query = conn.get_reset_query()
    if "RESET ALL" in query:
        # A server with RESET ALL has DISCARD (PostgreSQL 8.3 and later).
        query += "\nDISCARD TEMP;\nDISCARD SEQUENCES;"
    return query
