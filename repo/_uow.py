"""`UnitOfWork`: one connection, one transaction, nested savepoints."""

from __future__ import annotations

import asyncio
import enum
import typing
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self

from ._backend import UnitSession
from ._repository import Repository
from .errors import ConnectionLost, InvalidState, RepoError

__all__ = ["Savepoint", "UnitOfWork", "UnitState"]


class Backend(Protocol):
    """What a unit of work needs from a database: `Database` or `MemoryDatabase`."""

    def _unit_session(self) -> UnitSession: ...


class UnitState(enum.Enum):
    """Where a unit of work is in its life."""

    NEW = "new"
    ACTIVE = "active"
    COMMITTED = "committed"
    ROLLED_BACK = "rolled back"
    FAILED = "failed"


class UnitOfWork:
    """A transaction on one pooled connection, with the repositories bound to it.

    Declare repositories as annotations on a subclass::

        class CatalogUnitOfWork(UnitOfWork):
            brands: BrandRepository

    ``async with CatalogUnitOfWork(db) as uow:`` takes a connection and
    BEGINs; a clean exit COMMITs; an exception ROLLs BACK and propagates.
    `commit()` and `rollback()` end it early. Using it after it ended raises
    `InvalidState`.

    `statement_timeout` and `lock_timeout` (seconds) bound every statement of
    the unit and every lock wait; past them the statement fails with
    `QueryCanceled` or `LockNotAvailable`.
    """

    _repository_slots: ClassVar[dict[str, type[Repository[Any]]] | None] = None

    def __init__(
        self,
        db: Backend,
        *,
        isolation: str | None = None,
        readonly: bool = False,
        deferrable: bool = False,
        statement_timeout: float | None = None,
        lock_timeout: float | None = None,
    ) -> None:
        self._db = db
        self.isolation = isolation
        self.readonly = readonly
        self.deferrable = deferrable
        self.statement_timeout = statement_timeout
        self.lock_timeout = lock_timeout
        #: Which run of the work this unit is: 1, then 2, ... under `run_in_unit`.
        self.attempt = 1
        self._state = UnitState.NEW
        self._savepoints: list[Savepoint] = []
        self._session = db._unit_session()
        self._session.describe_state = self._describe
        for name, cls in type(self)._repositories().items():
            setattr(self, name, self._session.repository(cls))

    @classmethod
    def _repositories(cls) -> dict[str, type[Repository[Any]]]:
        found = cls.__dict__.get("_repository_slots")
        if found is None:
            # Annotations are resolved on first use, not at class creation, so
            # that repositories may be defined after the unit of work.
            hints = typing.get_type_hints(cls)
            found = {
                name: hint
                for name, hint in hints.items()
                if isinstance(hint, type) and issubclass(hint, Repository)
            }
            cls._repository_slots = found
        return found

    @property
    def state(self) -> UnitState:
        """Where the unit is in its life."""
        return self._state

    @property
    def connection(self) -> Any:
        """The raw ``asyncpg.Connection`` of this unit, for anything else.

        Whatever you do on it is part of the unit's transaction. Do not start
        or end transactions on it yourself.
        """
        self._require_active("use the connection")
        return self._session.connection

    def _describe(self) -> str:
        if self._state is UnitState.NEW:
            return "the unit of work has not begun: use it inside `async with`"
        return f"the unit of work has already {self._state.value}: start a new one"

    def _require_active(self, action: str) -> None:
        if self._state is not UnitState.ACTIVE:
            if self._state is UnitState.NEW:
                msg = f"cannot {action}: the unit of work has not begun (use `async with`)"
            else:
                msg = f"cannot {action}: the unit of work has already {self._state.value}"
            raise InvalidState(msg)

    async def __aenter__(self) -> Self:
        if self._state is not UnitState.NEW:
            msg = f"a unit of work is entered once; this one has {self._state.value}"
            raise InvalidState(msg)
        timeouts = {"statement_timeout": self.statement_timeout, "lock_timeout": self.lock_timeout}
        await self._session.begin(self.isolation, self.readonly, self.deferrable, timeouts=timeouts)
        self._state = UnitState.ACTIVE
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._state is UnitState.ACTIVE:
            if exc is None:
                await self.commit()
            else:
                await self._end(UnitState.ROLLED_BACK)
        else:
            await self._close()

    async def commit(self) -> None:
        """COMMIT now and end the unit; the connection goes back to the pool."""
        self._require_active("commit")
        try:
            await self._session.commit()
        except BaseException as exc:
            self._state = UnitState.FAILED
            # A COMMIT the server answered with an error (a serialization
            # failure, a deferred constraint) rolled back: the connection is
            # fine. Any other failure, cancellation included, leaves the
            # outcome unknown, and such a connection is never reused.
            known = isinstance(exc, RepoError) and not isinstance(exc, ConnectionLost)
            await self._close(discard=not known)
            raise
        self._state = UnitState.COMMITTED
        await self._close()

    async def rollback(self) -> None:
        """Discard all the unit's work and end it; the connection goes back to the pool."""
        self._require_active("rollback")
        await self._end(UnitState.ROLLED_BACK)

    async def _end(self, state: UnitState) -> None:
        self._state = state
        # Shielded: the rollback and release must finish even if the task is
        # being cancelled, or the connection would return to the pool (or sit
        # on the server) inside a transaction.
        await asyncio.shield(self._rollback_and_close())

    async def _rollback_and_close(self) -> None:
        try:
            await self._session.rollback()
        except BaseException:
            self._state = UnitState.FAILED
            # The ROLLBACK failed: the connection's state is unknown, so it
            # is terminated rather than handed to the next user.
            await self._close(discard=True)
        else:
            await self._close()

    async def _close(self, *, discard: bool = False) -> None:
        self._savepoints.clear()
        # Shielded: the connection must get back to the pool (or be
        # terminated) even when the task is being cancelled.
        await asyncio.shield(self._session.close(discard=discard))

    def savepoint(self) -> Savepoint:
        """A nested transaction: ``async with uow.savepoint():``.

        An exception inside rolls back to the savepoint only, and propagates;
        catch it outside to keep the unit's other work. Nests to any depth.
        """
        return Savepoint(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._state.value}>"


class Savepoint:
    """SAVEPOINT on enter; RELEASE on a clean exit, ROLLBACK TO on an exception."""

    def __init__(self, unit: UnitOfWork) -> None:
        self._unit = unit
        self._name: str | None = None

    async def __aenter__(self) -> Self:
        unit = self._unit
        unit._require_active("open a savepoint")
        if self._name is not None:
            msg = "a savepoint is entered once; make a new one with uow.savepoint()"
            raise InvalidState(msg)
        self._name = f"repo_sp_{len(unit._savepoints) + 1}"
        await unit._session.savepoint(self._name)
        unit._savepoints.append(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        unit = self._unit
        if unit._state is not UnitState.ACTIVE or self not in unit._savepoints:
            # The unit ended inside the savepoint (commit, rollback or failure):
            # the savepoint went with it.
            return
        if unit._savepoints[-1] is not self:
            msg = "savepoints must be exited in the reverse order they were entered"
            raise InvalidState(msg)
        unit._savepoints.pop()
        name = self._name or ""
        if exc is None:
            await unit._session.release_savepoint(name)
            return
        try:
            await unit._session.rollback_to_savepoint(name)
        except BaseException as failure:
            # Whether the savepoint was undone is unknown: only a full
            # rollback is safe now. The body's exception is the one to see,
            # unless the task is being cancelled: that must not be lost.
            await unit._end(UnitState.FAILED)
            if isinstance(failure, asyncio.CancelledError):
                raise
