"""Where a repository's calls run on a `MemoryDatabase`: autocommit, or a unit of work.

- `MemorySession`: every call its own transaction (autocommit), as on the pool;
- `MemoryUnitSession`: the one transaction of a unit of work, and its
  savepoints; concurrent calls take turns;
- `NoSql`: hand-written SQL, which cannot run in memory: every call names
  the method to override.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, NoReturn, Protocol, TypeVar

from repo._aggregate import Aggregate
from repo._aggregate_reads import ComposedReads
from repo._mapping import Table
from repo._options import TransactionOptions
from repo.errors import InvalidState, NotSupportedInMemory

from ._constraints import check_commit
from ._lockops import LockingTableOps
from ._store import Store, Transaction, TxState

__all__ = ["Host", "MemorySession", "MemoryUnitSession", "NoSql"]

T = TypeVar("T")
R = TypeVar("R")


class Host(Protocol):
    """What a session needs of its `MemoryDatabase`: the store, and the classes to make."""

    def _open_store(self) -> Store: ...

    def _class_for(self, cls: Callable[[Any], R]) -> Callable[[Any], R]: ...


class NoSql:
    """The `SqlRunner` of the memory backend: every call names the method to override."""

    def __init__(self, method: str) -> None:
        self._method = method

    def _refuse(self, *args: Any) -> NoReturn:
        cls = self._method.partition(".")[0]
        msg = (
            f"{self._method} runs hand-written SQL, which MemoryDatabase cannot run: "
            f"give {cls} an in-memory override (a subclass decorated with "
            f"@memory_override({cls}), or MemoryDatabase(overrides={{{cls}: ...}}))"
        )
        raise NotSupportedInMemory(msg)

    fetch = fetchrow = fetchval = execute = _refuse

    def stream(self, *args: Any) -> NoReturn:
        self._refuse()

    def cursor(self, *args: Any) -> NoReturn:
        self._refuse()


class MemorySession:
    """Where a repository's calls run on a `MemoryDatabase`: autocommit by default."""

    def __init__(self, db: Host) -> None:
        self._db = db

    @property
    def keeps_locks(self) -> bool:
        """Whether a row lock outlives its call: not in autocommit."""
        return False

    def ops(self, table: Table[T]) -> LockingTableOps[T]:
        self._db._open_store().register(table)
        return LockingTableOps(self, table)

    def sql(self, method: str) -> Any:
        return NoSql(method)

    def repository(self, cls: Callable[[Any], R]) -> R:
        return self._db._class_for(cls)(self)

    def aggregate(self, aggregate: Aggregate[T]) -> ComposedReads[T]:
        return ComposedReads(self, aggregate)

    @asynccontextmanager
    async def atomic_session(self) -> AsyncIterator[MemorySession]:
        """A transaction of its own for an operation of several statements."""
        unit = MemoryUnitSession(self._db, TransactionOptions())
        await unit.begin()
        try:
            yield unit
        except BaseException:
            await unit.close()
            raise
        try:
            await unit.commit()
        finally:
            await unit.close()

    @asynccontextmanager
    async def statement(self, *, write: bool) -> AsyncIterator[Transaction]:
        """One statement in its own transaction, committed if it succeeds."""
        store = self._db._open_store()
        txn = Transaction(store)
        try:
            with txn.statement(write=write):
                yield txn
            check_commit(txn)
        except BaseException:
            txn.rollback()
            raise
        txn.commit()

    def __repr__(self) -> str:
        return f"<autocommit on {self._db!r}>"


class MemoryUnitSession(MemorySession):
    """The transaction of one unit of work; concurrent calls take turns."""

    def __init__(self, db: Host, options: TransactionOptions) -> None:
        super().__init__(db)
        self._options = options
        self._txn: Transaction | None = None
        self._lock = asyncio.Lock()
        self.describe_state: Callable[[], str] = lambda: "the unit of work is not active"

    @property
    def keeps_locks(self) -> bool:
        return True

    def _current(self) -> Transaction:
        if self._txn is None:
            raise InvalidState(self.describe_state())
        return self._txn

    @asynccontextmanager
    async def statement(self, *, write: bool) -> AsyncIterator[Transaction]:
        async with self._lock:
            txn = self._current()
            with txn.statement(write=write):
                yield txn

    @asynccontextmanager
    async def atomic_session(self) -> AsyncIterator[MemorySession]:
        # The unit's transaction already makes the operation atomic.
        yield self

    @property
    def connection(self) -> NoReturn:
        msg = "a MemoryDatabase unit of work has no connection: code that needs one is SQL"
        raise NotSupportedInMemory(msg)

    async def begin(self) -> None:
        # Only a wait for a row lock takes time in memory: the timeouts bound it.
        options = self._options
        self._txn = Transaction(
            self._db._open_store(),
            readonly=options.readonly,
            snapshot=options.snapshot,
            lock_timeout=options.lock_timeout,
            statement_timeout=options.statement_timeout,
        )

    async def commit(self) -> None:
        txn = self._current()
        if txn.state is TxState.ACTIVE:
            check_commit(txn)
        txn.commit()

    async def rollback(self) -> None:
        self._current().rollback()

    async def savepoint(self, name: str) -> None:
        self._current().savepoint(name)

    async def release_savepoint(self, name: str) -> None:
        self._current().release(name)

    async def rollback_to_savepoint(self, name: str) -> None:
        self._current().rollback_to(name)

    async def close(self, *, discard: bool = False) -> None:
        txn, self._txn = self._txn, None
        if txn is not None and txn.state is not TxState.ENDED:
            txn.rollback()

    def __repr__(self) -> str:
        return "<unit of work in memory>"
