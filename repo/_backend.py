"""The contract between repositories and a backend (Postgres or in memory).

A `Repository` validates its arguments and delegates to the `TableOps` its
`Session` gives it for its table. A unit of work drives a `UnitSession`
through begin → (savepoints) → commit or rollback → close.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    import asyncpg

    from ._bulk import UpsertResult
    from ._mapping import Table
    from ._query import Condition, Order
    from ._repository import Repository
    from ._stream import Cursor, Stream

__all__ = ["Session", "SqlRunner", "TableOps", "UnitSession"]

T = TypeVar("T")
R = TypeVar("R", bound="Repository[Any]")


class TableOps(Protocol[T]):
    """The generic repository operations on one table, as a backend runs them."""

    async def add(self, entity: T) -> T: ...

    async def get(self, key: Any) -> T: ...

    async def get_many(self, keys: Sequence[Any]) -> list[T]: ...

    async def find(
        self,
        conditions: Sequence[Condition],
        orders: Sequence[Order],
        limit: int | None,
        offset: int | None,
    ) -> list[T]: ...

    async def count(self, conditions: Sequence[Condition]) -> int: ...

    async def exists(self, conditions: Sequence[Condition]) -> bool: ...

    async def update(self, entity: T) -> T: ...

    async def delete(self, key: Any) -> None: ...

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
        self, conditions: Sequence[Condition], orders: Sequence[Order], prefetch: int
    ) -> Stream[T]: ...

    def cursor(
        self, conditions: Sequence[Condition], orders: Sequence[Order]
    ) -> AbstractAsyncContextManager[Cursor[T]]: ...


class SqlRunner(Protocol):
    """Hand-written SQL, for repository methods that go beyond the generic ones."""

    async def fetch(self, sql: str, args: Sequence[Any]) -> list[asyncpg.Record]: ...

    async def fetchrow(self, sql: str, args: Sequence[Any]) -> asyncpg.Record | None: ...

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

    def repository(self, cls: type[R]) -> R:
        """An instance of `cls` bound to this session (a backend may substitute a subclass)."""
        ...

    def ops(self, table: Table[T]) -> TableOps[T]: ...

    def sql(self, method: str) -> SqlRunner: ...


class UnitSession(Session, Protocol):
    """A session that owns one transaction, driven by `UnitOfWork`."""

    describe_state: Callable[[], str]

    async def begin(
        self,
        isolation: str | None,
        readonly: bool,
        deferrable: bool,
        *,
        timeouts: Mapping[str, float | None] | None = None,
    ) -> None:
        """BEGIN with the unit's options; `timeouts` maps ``statement_timeout``
        and ``lock_timeout`` to seconds (or None). A backend without a server
        may accept and ignore them."""
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
