"""`UnitOfWork`: one connection, one transaction, nested savepoints."""

from __future__ import annotations

import asyncio
import enum
import inspect
import sys
from collections.abc import Mapping
from types import TracebackType
from typing import Any, ClassVar, Self

from ._aggregate_repository import AggregateRepository
from ._contract import DatabaseLike
from ._options import Isolation, TransactionOptions
from ._outcome import carry, outcome_unknown
from ._repository import Repository
from .errors import ConnectionLost, InvalidQuery, InvalidState, OutcomeUnknown, RepoError

__all__ = ["Savepoint", "UnitOfWork", "UnitState"]

# What a unit of work may declare: repositories of tables, and of aggregates.
_Declared = type[Repository[Any]] | type[AggregateRepository[Any]]


class UnitState(enum.Enum):
    """Where a unit of work is in its life, and how it ended.

    Only `COMMITTED` means its work is stored. `ROLLED_BACK`: the server
    rolled it back (on request, or in answer to a COMMIT of an aborted or
    conflicting transaction). `FAILED`: it could not end cleanly (a
    ROLLBACK failed, the connection was lost before COMMIT), and nothing was
    committed. `UNKNOWN`: the connection broke while COMMIT was in flight,
    so the work may or may not be stored.
    """

    NEW = "new"
    ACTIVE = "active"
    COMMITTED = "committed"
    ROLLED_BACK = "rolled back"
    FAILED = "failed"
    UNKNOWN = "outcome unknown"


_ENDED = {
    UnitState.COMMITTED: "has already committed",
    UnitState.ROLLED_BACK: "has already rolled back",
    UnitState.FAILED: "has already failed",
    UnitState.UNKNOWN: "has already ended, its outcome unknown",
}


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

    The repository annotations are resolved when the subclass is made: a
    name that does not resolve then raises `InvalidQuery`.
    """

    _repository_slots: ClassVar[Mapping[str, _Declared]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The scope the class statement ran in: a unit of work made inside
        # a function may name repositories local to it.
        caller = sys._getframe(1).f_locals
        cls._repository_slots = _resolve_repositories(cls, caller)

    def __init__(
        self,
        db: DatabaseLike,
        *,
        isolation: Isolation | str | None = None,
        readonly: bool = False,
        deferrable: bool = False,
        statement_timeout: float | None = None,
        lock_timeout: float | None = None,
    ) -> None:
        self._db = db
        #: How the unit's transaction begins (validated here: `InvalidQuery` if bad).
        self.options = (
            # The common case, made once: the options are a frozen value.
            _PLAIN
            if isolation is None
            and readonly is False
            and deferrable is False
            and statement_timeout is None
            and lock_timeout is None
            else TransactionOptions(
                isolation=isolation,
                readonly=readonly,
                deferrable=deferrable,
                statement_timeout=statement_timeout,
                lock_timeout=lock_timeout,
            )
        )
        #: Which run of the work this unit is: 1, then 2, ... under `run_in_unit`.
        self.attempt = 1
        self._state = UnitState.NEW
        self._savepoints: list[Savepoint] = []
        self._session = db.unit_session(self.options)
        self._session.describe_state = self._describe
        for name, cls in type(self)._repositories().items():
            setattr(self, name, self._session.repository(cls))

    @classmethod
    def _repositories(cls) -> Mapping[str, _Declared]:
        return cls._repository_slots

    @property
    def isolation(self) -> Isolation | None:
        """The unit's isolation level (None: the server's default)."""
        return self.options.isolation

    @property
    def readonly(self) -> bool:
        return self.options.readonly

    @property
    def deferrable(self) -> bool:
        return self.options.deferrable

    @property
    def statement_timeout(self) -> float | None:
        return self.options.statement_timeout

    @property
    def lock_timeout(self) -> float | None:
        return self.options.lock_timeout

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
        return f"the unit of work {_ENDED.get(self._state, 'is not active')}: start a new one"

    def _require_active(self, action: str) -> None:
        if self._state is not UnitState.ACTIVE:
            if self._state is UnitState.NEW:
                msg = f"cannot {action}: the unit of work has not begun (use `async with`)"
            else:
                msg = f"cannot {action}: the unit of work {_ENDED[self._state]}"
            raise InvalidState(msg)

    async def __aenter__(self) -> Self:
        if self._state is not UnitState.NEW:
            ended = _ENDED.get(self._state, "is active already")
            msg = f"a unit of work is entered once; this one {ended}"
            raise InvalidState(msg)
        await self._session.begin()
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
        """COMMIT now and end the unit; the connection goes back to the pool.

        `uow.state` then says what the server did. A transaction an earlier
        failure aborted is rolled back by the server instead: `TransactionAborted`,
        chained to that failure. A COMMIT the server refused (a serialization
        failure, a deferred constraint) raises that error; both leave
        `ROLLED_BACK`. A connection that broke while COMMIT was in flight
        raises `OutcomeUnknown` (`UNKNOWN`). A task cancelled meanwhile still
        waits for the server's answer, sets the state from it, and then gets
        its `CancelledError`.
        """
        self._require_active("commit")
        # Carried to the server's answer even if the task is cancelled: a
        # COMMIT cut off half-way would leave the outcome unknown.
        done, cancelled = await carry(self._session.commit())
        error: BaseException | None = None if done.cancelled() else done.exception()
        discard = False
        if done.cancelled():
            # The COMMIT itself was cancelled (the event loop is shutting down).
            self._state, discard = UnitState.UNKNOWN, True
        elif error is None:
            self._state = UnitState.COMMITTED
        elif isinstance(error, OutcomeUnknown):
            self._state, discard = UnitState.UNKNOWN, True
        elif isinstance(error, ConnectionLost):
            # Lost before COMMIT was sent: nothing was committed.
            self._state, discard = UnitState.FAILED, True
        elif isinstance(error, RepoError):
            # The server answered: it rolled the transaction back, and the
            # connection is healthy.
            self._state = UnitState.ROLLED_BACK
        else:
            self._state, discard = UnitState.UNKNOWN, True
            unknown = outcome_unknown(error)
            unknown.__cause__ = error
            error = unknown
        await self._close(discard=discard)
        if cancelled is not None:
            raise cancelled
        if error is not None:
            raise error

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


def _resolve_repositories(cls: type[UnitOfWork], scope: Mapping[str, Any]) -> dict[str, _Declared]:
    """The repositories `cls` declares, its bases' included; `InvalidQuery` for a name
    that does not resolve now, where `scope` holds the names local to the class statement."""
    found: dict[str, _Declared] = {}
    for base in reversed(cls.__mro__[1:]):
        found.update(getattr(base, "_repository_slots", {}))
    module = sys.modules.get(cls.__module__)
    globalns = dict(vars(module)) if module is not None else {}
    localns = {**scope, **vars(cls)}
    advice = "define or import the repository class before the unit of work"
    try:
        annotations = inspect.get_annotations(cls)
    except NameError as exc:  # annotations evaluated on access (Python 3.14)
        msg = f"a repository annotation of {cls.__qualname__} does not resolve ({exc}): {advice}"
        raise InvalidQuery(msg) from exc
    for name, annotation in annotations.items():
        hint = annotation
        if isinstance(annotation, str):
            try:
                hint = eval(annotation, globalns, localns)
            except NameError as exc:
                msg = (
                    f"{cls.__qualname__}.{name} is annotated {annotation!r}, but the name "
                    f"{exc.name!r} is not defined when the class is made: {advice}"
                )
                raise InvalidQuery(msg) from exc
            except Exception as exc:
                msg = (
                    f"{cls.__qualname__}.{name}: its annotation {annotation!r} cannot be "
                    f"resolved ({type(exc).__name__}: {exc}): {advice}"
                )
                raise InvalidQuery(msg) from exc
        if isinstance(hint, type) and issubclass(hint, (Repository, AggregateRepository)):
            found[name] = hint
        else:
            found.pop(name, None)
    return found


_PLAIN = TransactionOptions()


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
