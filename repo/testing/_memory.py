"""`MemoryDatabase`: the surface of `Database`, on an in-memory store.

Outside a unit of work each call is its own transaction (autocommit), as on
the pool; a unit of work holds one `Transaction` and its savepoints.
Repository methods written in hand SQL cannot run here: they raise
`NotSupportedInMemory` unless an in-memory override replaces their class
(`memory_override`, or ``MemoryDatabase(overrides=...)``).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack

from repo._options import PoolOptions, PoolSettings, TransactionOptions
from repo._repository import Repository
from repo.errors import InvalidQuery, InvalidState, NotSupportedInMemory

from ._collation import collation as named_collation
from ._sessions import MemorySession, MemoryUnitSession
from ._store import Store

__all__ = ["MemoryDatabase", "memory_override"]

T = TypeVar("T")
# Unbounded, as in `DatabaseLike`: a class that is not a Repository is refused at run time.
R = TypeVar("R")
RB = TypeVar("RB", bound=Repository[Any])

_OVERRIDES: dict[type[Repository[Any]], type[Repository[Any]]] = {}


def _check_override(original: type[Repository[Any]], override: type[Repository[Any]]) -> None:
    if not (isinstance(override, type) and issubclass(override, original)):
        msg = (
            f"the in-memory override of {original.__name__} must be a subclass of it, "
            f"got {override!r}"
        )
        raise InvalidQuery(msg)


def memory_override(original: type[Repository[Any]]) -> Callable[[type[RB]], type[RB]]:
    """Class decorator: use this subclass of `original` whenever a `MemoryDatabase` makes one.

    Override the methods written in hand SQL with code built on the generic
    methods; every `MemoryDatabase` then runs them (``overrides=`` takes
    precedence for one database).
    """

    def register(override: type[RB]) -> type[RB]:
        _check_override(original, override)
        _OVERRIDES[original] = override
        return override

    return register


class MemoryDatabase:
    """A database in memory with the surface of `Database`, for unit tests.

    ``CatalogUnitOfWork(MemoryDatabase())`` runs service code unchanged and in
    milliseconds. It enforces what the mappings declare (keys, NOT NULL,
    unique and foreign keys), keeps each unit of work's writes to itself
    until commit, and undoes rollbacks and savepoints as PostgreSQL does.
    `overrides` maps repository classes to their in-memory subclasses.
    `collation` is how text orders: ``"C"`` (by code point, the default) or
    a libc locale name such as ``"en_US.UTF-8"``, to order and compare text
    as a PostgreSQL database created with that locale does on this machine
    (an unknown name is a `ConfigurationError`).
    """

    def __init__(
        self,
        *,
        overrides: Mapping[type[Repository[Any]], type[Repository[Any]]] | None = None,
        collation: str = "C",
    ) -> None:
        self._store = Store(named_collation(collation))
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
        collation: str = "C",
        **options: Unpack[PoolSettings],
    ) -> Self:
        """A new, empty database: ``async with MemoryDatabase.connect() as db`` or ``await``.

        `dsn` and the pool options of `Database.connect` are accepted, so that
        code written for it runs unchanged; the options are validated the
        same way (an unknown name or a bad value is a `ConfigurationError`),
        and have nothing to act on in memory. `collation` is the
        constructor's.
        """
        PoolOptions.of(options)
        return cls(overrides=overrides, collation=collation)

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

    def _class_for(self, cls: Callable[[Any], R]) -> Callable[[Any], R]:
        key: Any = cls
        found: Any = self._overrides.get(key) or _OVERRIDES.get(key) or cls
        made: Callable[[Any], R] = found
        return made

    def repository(self, cls: type[R], *, connection: Any = None) -> R:
        """A repository whose every call is its own transaction (autocommit)."""
        if connection is not None:
            msg = "MemoryDatabase.repository() takes no connection: there is none"
            raise NotSupportedInMemory(msg)
        return MemorySession(self).repository(cls)

    def unit_session(self, options: TransactionOptions) -> MemoryUnitSession:
        """The session of one unit of work, whose transaction begins with `options`."""
        return MemoryUnitSession(self, options)

    def acquire(self) -> AbstractAsyncContextManager[Any]:
        msg = "a MemoryDatabase has no connections to acquire: code that needs one is SQL"
        raise NotSupportedInMemory(msg)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        how = self._store.collation.name
        return f"<MemoryDatabase {state}>" if how == "C" else f"<MemoryDatabase {state} {how}>"
