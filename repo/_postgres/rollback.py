"""`RollbackDatabase`: a real database whose every change is rolled back at the end.

One connection holds an outer transaction for the whole test. A unit of work
becomes a savepoint on it (BEGIN → SAVEPOINT, COMMIT → RELEASE, ROLLBACK →
ROLLBACK TO), its own savepoints nest inside, and each call outside a unit
runs in a savepoint of its own, so a failing call leaves the test's
transaction usable, as autocommit would. Closing rolls everything back.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg

from repo._options import TransactionOptions
from repo._outcome import aborted_at_commit
from repo.errors import InvalidState, NotSupportedInMemory, TransactionAborted

from .codecs import prepare_connection
from .connection import Conn
from .cursor import Lent, Reading
from .failures import Failures
from .run import call
from .sessions import SessionBase

if TYPE_CHECKING:
    from repo._mapping import Table

__all__ = ["RollbackDatabase", "rollback_database"]

# Unbounded, as in `DatabaseLike`: a class that is not a Repository is refused at run time.
R = TypeVar("R")


class _Shared:
    """The test's connection, the lock its callers take turns on, and the open units."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.lock = asyncio.Lock()
        self.units: list[str] = []
        self.names = itertools.count(1)

    async def execute(self, statement: str) -> None:
        await call(self.conn, "execute", statement, ())


class _CallSession(SessionBase):
    """Calls outside a unit of work: each one in a savepoint, like autocommit."""

    def __init__(self, shared: _Shared) -> None:
        self._shared = shared

    async def _run(
        self, name: str, sql: str, args: Sequence[Any], table: Table[Any] | None = None
    ) -> Any:
        async with self._atomic() as conn:
            return await call(conn, name, sql, args, None, table=table)

    def atomic(self) -> AbstractAsyncContextManager[Conn]:
        return self._atomic()

    @asynccontextmanager
    async def _atomic(self) -> AsyncIterator[Conn]:
        shared = self._shared
        async with shared.lock:
            point = f"repo_call_{next(shared.names)}"
            await shared.execute(f"SAVEPOINT {point}")
            try:
                yield shared.conn
            except BaseException:
                await asyncio.shield(shared.execute(f"ROLLBACK TO SAVEPOINT {point}"))
                raise
            await shared.execute(f"RELEASE SAVEPOINT {point}")

    def reading(self) -> Reading:
        return Reading(lambda: Lent(self._shared.conn, self._shared.lock))

    def __repr__(self) -> str:
        return "<calls in savepoints of the test's transaction>"


class _UnitSession(SessionBase):
    """A unit of work as a savepoint of the test's transaction."""

    def __init__(self, shared: _Shared) -> None:
        self._shared = shared
        self._name: str | None = None
        self.describe_state: Callable[[], str] = lambda: "the unit of work is not active"
        self._failures = Failures()

    @property
    def keeps_locks(self) -> bool:
        return True

    @property
    def connection(self) -> Conn:
        if self._name is None:
            raise InvalidState(self.describe_state())
        return self._shared.conn

    async def _run(
        self, name: str, sql: str, args: Sequence[Any], table: Table[Any] | None = None
    ) -> Any:
        async with self._shared.lock:
            try:
                result = await call(self.connection, name, sql, args, None, table=table)
            except BaseException as exc:
                self._failures.failed(exc)
                raise
            if self._failures.suspects:
                self._failures.succeeded()
            return result

    def atomic(self) -> AbstractAsyncContextManager[Conn]:
        return self._atomic()

    @asynccontextmanager
    async def _atomic(self) -> AsyncIterator[Conn]:
        async with self._shared.lock:
            try:
                yield self.connection
            except BaseException as exc:
                self._failures.failed(exc)
                raise
            if self._failures.suspects:
                self._failures.succeeded()

    def reading(self) -> Reading:
        return Reading(
            lambda: Lent(self.connection, self._shared.lock, on_error=self._note_failure)
        )

    def _note_failure(self, exc: BaseException) -> BaseException:
        self._failures.failed(exc)
        return exc

    async def _execute(self, statement: str) -> None:
        async with self._shared.lock:
            await self._shared.execute(statement)

    async def begin(self) -> None:
        # Isolation, READ ONLY, DEFERRABLE and the timeouts belong to the
        # test's transaction, which has begun already: a savepoint cannot
        # change them.
        shared = self._shared
        name = f"repo_unit_{next(shared.names)}"
        await self._execute(f"SAVEPOINT {name}")
        shared.units.append(name)
        self._name = name

    def _top(self) -> str:
        name = self._name
        if name is None or not self._shared.units or self._shared.units[-1] != name:
            msg = (
                "units of work on a rollback database nest: end the one begun last first "
                "(they are savepoints of one connection)"
            )
            raise InvalidState(msg)
        return name

    async def commit(self) -> None:
        name = self._top()
        try:
            await self._execute(f"RELEASE SAVEPOINT {name}")
        except TransactionAborted:
            # COMMIT of an aborted transaction rolls it back, and so does
            # this; the unit must say so as it does on a real database.
            await self.rollback()
            first = self._failures.first()
            raise aborted_at_commit(first) from first
        self._end()

    async def rollback(self) -> None:
        name = self._top()
        await self._execute(f"ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}")
        self._end()

    def _end(self) -> None:
        self._shared.units.pop()
        self._name = None

    async def savepoint(self, name: str) -> None:
        await self._execute(f"SAVEPOINT {self._top()}_{name}")
        self._failures.opened()

    async def release_savepoint(self, name: str) -> None:
        try:
            await self._execute(f"RELEASE SAVEPOINT {self._top()}_{name}")
        finally:
            self._failures.released()

    async def rollback_to_savepoint(self, name: str) -> None:
        point = f"{self._top()}_{name}"
        await self._execute(f"ROLLBACK TO SAVEPOINT {point}; RELEASE SAVEPOINT {point}")
        self._failures.rolled_back()

    async def close(self, *, discard: bool = False) -> None:
        if self._name is not None and self._name in self._shared.units:
            await asyncio.shield(self.rollback())
        self._name = None

    def __repr__(self) -> str:
        return "<unit of work as a savepoint of the test's transaction>"


class RollbackDatabase:
    """A `Database` stand-in on one connection inside a transaction that is never committed.

    Make it with `rollback_database`. Units of work are savepoints, so they
    must end in the reverse order they began (one at a time is the usual
    case); their isolation and read-only options are those of the test's
    transaction (READ COMMITTED, read-write).
    """

    def __init__(self, conn: Conn) -> None:
        self._shared = _Shared(conn)

    def repository(self, cls: type[R], *, connection: Any = None) -> R:
        """A repository whose every call runs (in a savepoint) in the test's transaction."""
        if connection is not None:
            msg = "a RollbackDatabase has one connection: call repository(cls) without one"
            raise NotSupportedInMemory(msg)
        return _CallSession(self._shared).repository(cls)

    def unit_session(self, options: TransactionOptions) -> _UnitSession:
        """A unit of work's session: a savepoint (`options` are the test transaction's)."""
        return _UnitSession(self._shared)

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Conn]:
        """The test's connection: statements on it are part of the test's transaction."""
        async with self._shared.lock:
            yield self._shared.conn

    def __repr__(self) -> str:
        return "<RollbackDatabase>"


@asynccontextmanager
async def rollback_database(
    dsn: str,
    *,
    init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
    json_codecs: bool = True,
) -> AsyncIterator[RollbackDatabase]:
    """``async with``: a `RollbackDatabase` on `dsn`; everything it did is rolled back at exit.

    Its connection is set up as `Database.connect()` sets up its own: json
    and jsonb as Python objects (unless ``json_codecs=False``), then `init`.
    """
    conn = await asyncpg.connect(dsn)
    try:
        await prepare_connection(conn, json=json_codecs, init=init)
        await call(conn, "execute", "BEGIN", ())
        yield RollbackDatabase(conn)
    finally:
        try:
            await asyncio.shield(conn.execute("ROLLBACK"))
        finally:
            await asyncio.shield(conn.close())
