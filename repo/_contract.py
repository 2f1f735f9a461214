"""The contract between the core and a backend (PostgreSQL, or in memory): Protocols only.

- `DatabaseLike` (public, ``repo.DatabaseLike``): what a unit of work and
  ``run_in_unit`` take, satisfied by ``Database``, ``MemoryDatabase`` and
  ``RollbackDatabase``.
- `Session`: where a repository's calls run; it gives the `TableOps` of a
  table, a `SqlRunner` for hand-written SQL, and sibling repositories.
- `UnitSession`: a session that owns one transaction, driven by a unit of
  work through begin → (savepoints) → commit or rollback → close.

A `Repository` validates its arguments, then delegates to its session's
`TableOps`; no backend imports another, and the core imports none.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from ._aggregate import Aggregate
    from ._bulk import UpsertResult
    from ._mapping import Table
    from ._options import TransactionOptions
    from ._query import Condition, Order, RowLock
    from ._stream import Cursor, Stream

__all__ = ["AggregateReads", "DatabaseLike", "Session", "SqlRunner", "TableOps", "UnitSession"]

T = TypeVar("T")
R = TypeVar("R")


class TableOps(Protocol[T]):
    """The generic repository operations on one table, as a backend runs them."""

    async def add(self, entity: T) -> T: ...

    async def get(self, key: Any, lock: RowLock | None = None) -> T:
        """The row with `key`; with `lock`, locked (waiting, or failing if `lock.nowait`)."""
        ...

    async def get_many(self, keys: Sequence[Any]) -> list[T]: ...

    async def find(
        self,
        conditions: Sequence[Condition],
        orders: Sequence[Order],
        limit: int | None,
        offset: int | None,
        lock: RowLock | None = None,
    ) -> list[T]:
        """The matching rows; with `lock`, each locked (``FOR UPDATE`` / ``FOR SHARE``)."""
        ...

    async def count(self, conditions: Sequence[Condition]) -> int: ...

    async def exists(self, conditions: Sequence[Condition]) -> bool: ...

    async def update(self, entity: T) -> T: ...

    async def update_many(self, entities: Sequence[T]) -> list[T]:
        """`update` of each entity (distinct keys), in as few statements as the backend can;
        all or nothing only inside a transaction."""
        ...

    async def delete(self, key: Any) -> None: ...

    async def delete_many(self, keys: Sequence[Any]) -> int:
        """Delete the rows with `keys` (checked) in one statement; how many there were."""
        ...

    async def add_many(
        self, entities: Iterable[T] | AsyncIterable[T], returning: bool
    ) -> int | list[T]: ...

    async def upsert(self, entity: T, on: tuple[str, ...], update: tuple[str, ...] | None) -> T: ...

    async def upsert_many(
        self,
        entities: Iterable[T] | AsyncIterable[T],
        on: tuple[str, ...],
        update: tuple[str, ...] | None,
        returning: bool,
    ) -> UpsertResult | list[T]: ...

    async def delete_where(self, conditions: Sequence[Condition]) -> int: ...

    async def update_where(
        self, values: dict[str, Any], conditions: Sequence[Condition]
    ) -> int: ...

    async def page(
        self,
        conditions: Sequence[Condition],
        orders: Sequence[Order],
        after: tuple[Any, ...] | None,
        limit: int,
    ) -> tuple[list[T], bool]: ...

    def stream(
        self,
        conditions: Sequence[Condition],
        orders: Sequence[Order],
        prefetch: int,
        lock: RowLock | None = None,
    ) -> Stream[T]: ...

    def cursor(
        self, conditions: Sequence[Condition], orders: Sequence[Order]
    ) -> AbstractAsyncContextManager[Cursor[T]]: ...


class AggregateReads(Protocol[T]):
    """The reads of whole aggregates, as a backend runs them (one statement each on PostgreSQL)."""

    async def get(self, key: Any) -> T: ...

    async def get_many(self, keys: Sequence[Any]) -> list[T]: ...

    async def find(
        self,
        conditions: Sequence[Condition],
        orders: Sequence[Order],
        limit: int | None,
        offset: int | None,
    ) -> list[T]: ...

    async def page(
        self,
        conditions: Sequence[Condition],
        orders: Sequence[Order],
        after: tuple[Any, ...] | None,
        limit: int,
    ) -> tuple[list[T], bool]: ...

    def stream(
        self, conditions: Sequence[Condition], orders: Sequence[Order], prefetch: int
    ) -> Stream[T]: ...


class SqlRunner(Protocol):
    """Hand-written SQL, for repository methods that go beyond the generic ones."""

    async def fetch(self, sql: str, args: Sequence[Any]) -> list[Any]: ...

    async def fetchrow(self, sql: str, args: Sequence[Any]) -> Any: ...

    async def fetchval(self, sql: str, args: Sequence[Any]) -> Any: ...

    async def execute(self, sql: str, args: Sequence[Any]) -> str: ...

    def stream(
        self, sql: str, args: Sequence[Any], make: Callable[[Any], Any], prefetch: int
    ) -> Stream[Any]: ...

    def cursor(
        self, sql: str, args: Sequence[Any], make: Callable[[Any], Any]
    ) -> AbstractAsyncContextManager[Cursor[Any]]: ...


class Session(Protocol):
    """Where a repository's calls run: the pool, or one unit of work's connection."""

    def repository(self, cls: Callable[[Any], R]) -> R:
        """An instance of the repository class `cls` bound to this session.

        A backend may substitute a subclass (the in-memory overrides).
        """
        ...

    def ops(self, table: Table[T]) -> TableOps[T]: ...

    def sql(self, method: str) -> SqlRunner: ...

    @property
    def keeps_locks(self) -> bool:
        """Whether a row lock a call takes outlives the call: a transaction spans calls.

        False at pool level, where every call is its own transaction.
        """
        ...

    def aggregate(self, aggregate: Aggregate[T]) -> AggregateReads[T]: ...

    def atomic_session(self) -> AbstractAsyncContextManager[Session]:
        """``async with``: a session whose calls all run in one transaction (an
        operation of several statements, such as an aggregate's write); inside a
        unit of work, that unit's."""
        ...


class UnitSession(Session, Protocol):
    """A session that owns one transaction, driven by `UnitOfWork`."""

    describe_state: Callable[[], str]

    async def begin(self) -> None:
        """BEGIN, with the options the session was made with."""
        ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...

    async def savepoint(self, name: str) -> None: ...

    async def release_savepoint(self, name: str) -> None: ...

    async def rollback_to_savepoint(self, name: str) -> None: ...

    async def close(self, *, discard: bool = False) -> None:
        """End the session; idempotent. `discard`: its connection's state is unknown
        (a COMMIT or ROLLBACK cut off half-way), so terminate it, never reuse it."""
        ...

    @property
    def connection(self) -> Any: ...


class DatabaseLike(Protocol):
    """What a unit of work and ``run_in_unit`` take: a database, on any backend.

    ``Database``, ``repo.testing.MemoryDatabase`` and
    ``repo.testing.RollbackDatabase`` all satisfy it, so service code typed
    against it runs unchanged in production and in tests.
    """

    def repository(self, cls: type[R], *, connection: Any = None) -> R:
        """A repository of class `cls` whose every call is its own transaction."""
        ...

    def unit_session(self, options: TransactionOptions) -> UnitSession:
        """The session of one unit of work, whose transaction begins with `options`."""
        ...
