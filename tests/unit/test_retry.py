"""run_in_unit needs nothing but the unit-session protocol: any backend will do.

The backend here is the smallest that satisfies `_unit_session()` (as
`MemoryDatabase` does): it records what the unit of work asks of it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import pytest

from repo import Backoff, SerializationFailure, TransactionOptions, UnitOfWork, run_in_unit
from repo._aggregate import Aggregate
from repo._contract import AggregateReads, Session, SqlRunner, TableOps
from repo._mapping import Table

NO_WAIT = Backoff(first=0.0, cap=0.0)

R = TypeVar("R")
T = TypeVar("T")


class Recorder:
    """A unit session that keeps a log of the calls a unit of work makes."""

    def __init__(self, log: list[str], options: TransactionOptions) -> None:
        self.log = log
        self.options = options
        self.closed = False
        self.describe_state = lambda: "not active"

    @property
    def keeps_locks(self) -> bool:
        return True

    def repository(self, cls: Callable[[Any], R]) -> R:
        return cls(self)

    def ops(self, table: Table[Any]) -> TableOps[Any]:
        raise NotImplementedError

    def sql(self, method: str) -> SqlRunner:
        raise NotImplementedError

    def aggregate(self, aggregate: Aggregate[T]) -> AggregateReads[T]:
        raise NotImplementedError

    def atomic_session(self) -> AbstractAsyncContextManager[Session]:
        raise NotImplementedError

    async def begin(self) -> None:
        isolation = self.options.isolation
        self.log.append(f"begin {isolation.value if isolation else None}")

    async def commit(self) -> None:
        self.log.append("commit")

    async def rollback(self) -> None:
        self.log.append("rollback")

    async def savepoint(self, name: str) -> None: ...

    async def release_savepoint(self, name: str) -> None: ...

    async def rollback_to_savepoint(self, name: str) -> None: ...

    async def close(self, *, discard: bool = False) -> None:
        # Idempotent, as the protocol asks: a unit ended early closes again on exit.
        if not self.closed:
            self.closed = True
            self.log.append("close")

    @property
    def connection(self) -> Any:
        return None


class Backend:
    def __init__(self) -> None:
        self.log: list[str] = []

    def repository(self, cls: type[R], *, connection: Any = None) -> R:
        raise NotImplementedError

    def unit_session(self, options: TransactionOptions) -> Recorder:
        return Recorder(self.log, options)


async def test_a_unit_without_conflicts_runs_once() -> None:
    """With no conflict (as in memory), the work runs once: begin, commit, close."""
    backend = Backend()

    async def work(uow: UnitOfWork) -> int:
        return uow.attempt

    assert await run_in_unit(UnitOfWork, backend, work, isolation="serializable") == 1
    assert backend.log == ["begin serializable", "commit", "close"]


async def test_each_attempt_is_a_fresh_unit_rolled_back_before_the_next() -> None:
    """A conflict rolls the attempt back and closes it before the next one begins."""
    backend = Backend()

    async def work(uow: UnitOfWork) -> str:
        if uow.attempt < 3:
            raise SerializationFailure("conflict")
        return "ok"

    assert await run_in_unit(UnitOfWork, backend, work, backoff=NO_WAIT) == "ok"
    one_failed = ["begin None", "rollback", "close"]
    assert backend.log == [*one_failed, *one_failed, "begin None", "commit", "close"]


async def test_work_that_ends_the_unit_itself_is_not_committed_again() -> None:
    """If the work commits or rolls back on its own, the runner does not commit."""
    backend = Backend()

    async def work(uow: UnitOfWork) -> None:
        await uow.rollback()

    await run_in_unit(UnitOfWork, backend, work)
    assert backend.log == ["begin None", "rollback", "close"]


async def test_other_exceptions_propagate_untouched() -> None:
    """A non-database error is raised at once, after the unit rolled back."""
    backend = Backend()

    async def work(uow: UnitOfWork) -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await run_in_unit(UnitOfWork, backend, work, backoff=NO_WAIT)
    assert backend.log == ["begin None", "rollback", "close"]


async def test_run_in_unit_on_memory_database() -> None:
    """On MemoryDatabase the runner runs the work once, in a unit that commits."""
    from repo.catalog import Brand, CatalogUnitOfWork
    from repo.testing import MemoryDatabase

    db = MemoryDatabase()
    attempts: list[int] = []

    async def work(uow: CatalogUnitOfWork) -> Brand:
        attempts.append(uow.attempt)
        return await uow.brands.add(Brand("acme"))

    added = await run_in_unit(CatalogUnitOfWork, db, work, isolation="serializable")
    assert added == Brand("acme", 1)
    assert attempts == [1]
    async with CatalogUnitOfWork(db, readonly=True) as uow:
        assert await uow.brands.get(1) == added
