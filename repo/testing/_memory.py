"""`MemoryDatabase`: the surface of `Database`, on an in-memory store.

Outside a unit of work each call is its own transaction (autocommit), as on
the pool; a unit of work holds one `Transaction` and its savepoints.
Repository methods written in hand SQL cannot run here: they raise
`NotSupportedInMemory` unless an in-memory override replaces their class
(`memory_override`, or ``MemoryDatabase(overrides=...)``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, Generic, NoReturn, Self, TypeVar

from repo._mapping import Table
from repo._pg import begin_statement
from repo._repository import Repository
from repo._stream import check_count
from repo.errors import InvalidQuery, InvalidState, NotSupportedInMemory

from ._check import check_commit
from ._memops import MemoryTableOps
from ._store import Store, Transaction, TxState

__all__ = ["MemoryDatabase", "MemorySession", "MemorySource", "memory_override", "open_cursor"]

T = TypeVar("T")
R = TypeVar("R", bound=Repository[Any])

_OVERRIDES: dict[type[Repository[Any]], type[Repository[Any]]] = {}


def _check_override(original: type[Repository[Any]], override: type[Repository[Any]]) -> None:
    if not (isinstance(override, type) and issubclass(override, original)):
        msg = (
            f"the in-memory override of {original.__name__} must be a subclass of it, "
            f"got {override!r}"
        )
        raise InvalidQuery(msg)


def memory_override(original: type[Repository[Any]]) -> Callable[[type[R]], type[R]]:
    """Class decorator: use this subclass of `original` whenever a `MemoryDatabase` makes one.

    Override the methods written in hand SQL with code built on the generic
    methods; every `MemoryDatabase` then runs them (``overrides=`` takes
    precedence for one database).
    """

    def register(override: type[R]) -> type[R]:
        _check_override(original, override)
        _OVERRIDES[original] = override
        return override

    return register


class _NoSql:
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

    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db

    def ops(self, table: Table[T]) -> MemoryTableOps[T]:
        self._db._store.register(table)
        return MemoryTableOps(self, table)

    def sql(self, method: str) -> Any:
        return _NoSql(method)

    def repository(self, cls: type[R]) -> R:
        return self._db._class_for(cls)(self)

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

    def __init__(self, db: MemoryDatabase) -> None:
        super().__init__(db)
        self._txn: Transaction | None = None
        self._lock = asyncio.Lock()
        self.describe_state: Callable[[], str] = lambda: "the unit of work is not active"

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

    @property
    def connection(self) -> NoReturn:
        msg = "a MemoryDatabase unit of work has no connection: code that needs one is SQL"
        raise NotSupportedInMemory(msg)

    async def begin(
        self,
        isolation: str | None,
        readonly: bool,
        deferrable: bool,
        *,
        timeouts: Mapping[str, float | None] | None = None,
    ) -> None:
        # Refuses unknown levels and bad timeouts as on PostgreSQL; nothing in
        # memory waits, so the timeouts themselves have nothing to cut short.
        statement = begin_statement(isolation, readonly, deferrable, timeouts)
        snapshot = "REPEATABLE READ" in statement or "SERIALIZABLE" in statement
        self._txn = Transaction(self._db._open_store(), readonly=readonly, snapshot=snapshot)

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


class MemorySource(Generic[T]):
    """A stream's batches: the rows a statement selected, `prefetch` at a time."""

    def __init__(self, read: Callable[[], Awaitable[list[T]]], prefetch: int) -> None:
        self._read = read
        self._prefetch = prefetch
        self._rows: list[T] | None = None
        self._at = 0

    async def batch(self) -> list[T]:
        if self._rows is None:
            self._rows = await self._read()
        batch = self._rows[self._at : self._at + self._prefetch]
        self._at += len(batch)
        return batch

    async def close(self) -> None:
        self._rows = []


class MemoryCursor(Generic[T]):
    """A cursor over the rows a statement selected."""

    def __init__(self, rows: Sequence[T]) -> None:
        self._rows = rows
        self._at = 0
        self.closed = False

    def _check(self) -> None:
        if self.closed:
            msg = "the cursor is closed: use it inside its `async with` block"
            raise InvalidState(msg)

    async def fetch(self, n: int) -> list[T]:
        self._check()
        n = check_count(n, "fetch()")
        batch = list(self._rows[self._at : self._at + n])
        self._at += len(batch)
        return batch

    async def fetchrow(self) -> T | None:
        batch = await self.fetch(1)
        return batch[0] if batch else None

    async def forward(self, n: int) -> int:
        self._check()
        n = check_count(n, "forward()")
        moved = min(n, len(self._rows) - self._at)
        self._at += moved
        return moved


@asynccontextmanager
async def open_cursor(read: Callable[[], Awaitable[list[T]]]) -> AsyncIterator[MemoryCursor[T]]:
    cursor = MemoryCursor(await read())
    try:
        yield cursor
    finally:
        cursor.closed = True


class MemoryDatabase:
    """A database in memory with the surface of `Database`, for unit tests.

    ``CatalogUnitOfWork(MemoryDatabase())`` runs service code unchanged and in
    milliseconds. It enforces what the mappings declare (keys, NOT NULL,
    unique and foreign keys), keeps each unit of work's writes to itself
    until commit, and undoes rollbacks and savepoints as PostgreSQL does.
    `overrides` maps repository classes to their in-memory subclasses.
    """

    def __init__(
        self,
        *,
        overrides: Mapping[type[Repository[Any]], type[Repository[Any]]] | None = None,
    ) -> None:
        self._store = Store()
        self._overrides = dict(overrides or {})
        for original, override in self._overrides.items():
            _check_override(original, override)
        self._closed = False

    @classmethod
    def connect(
        cls,
        dsn: str | None = None,
        *,
        overrides: Mapping[type[Repository[Any]], type[Repository[Any]]] | None = None,
        **pool_options: Any,
    ) -> Self:
        """A new, empty database: ``async with MemoryDatabase.connect() as db`` or ``await``.

        `dsn` and pool options are accepted, and ignored, so that code written
        for `Database.connect` runs unchanged.
        """
        return cls(overrides=overrides)

    def __await__(self) -> Generator[Any, None, Self]:
        return self.open().__await__()

    async def open(self) -> Self:
        return self

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close it; later calls raise `InvalidState`. The data is dropped."""
        self._closed = True

    def _open_store(self) -> Store:
        if self._closed:
            msg = "the MemoryDatabase is closed"
            raise InvalidState(msg)
        return self._store

    def _class_for(self, cls: type[R]) -> type[R]:
        found: Any = self._overrides.get(cls) or _OVERRIDES.get(cls) or cls
        return found  # type: ignore[no-any-return]

    def repository(self, cls: type[R], *, connection: Any = None) -> R:
        """A repository whose every call is its own transaction (autocommit)."""
        if connection is not None:
            msg = "MemoryDatabase.repository() takes no connection: there is none"
            raise NotSupportedInMemory(msg)
        return MemorySession(self).repository(cls)

    def _unit_session(self) -> MemoryUnitSession:
        return MemoryUnitSession(self)

    def acquire(self) -> AbstractAsyncContextManager[Any]:
        msg = "a MemoryDatabase has no connections to acquire: code that needs one is SQL"
        raise NotSupportedInMemory(msg)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<MemoryDatabase {state}>"
