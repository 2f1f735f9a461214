"""Row locks in memory: ``FOR UPDATE`` and ``FOR SHARE`` as PostgreSQL holds them.

A transaction holds each lock until it ends; a savepoint rolled back to
releases the locks taken after it (those taken before stay), as on the
server. A lock another transaction holds is waited for (asyncio, bounded by
the unit's ``lock_timeout`` and ``statement_timeout``), skipped, or refused
at once. Rows a transaction wrote count as locked ``FOR UPDATE`` by it.
A wait that would close a cycle of waits is a deadlock, broken at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from repo._query import RowLock
from repo.errors import DeadlockDetected, LockNotAvailable, QueryCanceled

__all__ = ["LockUndo", "Locker", "RowLocks", "lock_rows"]

Slot = tuple[str, Any]
Row = tuple[Any, ...]


class Locker(Protocol):
    """What taking row locks needs of a transaction (``_store.Transaction``)."""

    id: int
    lock_timeout: float | None
    statement_timeout: float | None

    @property
    def row_locks(self) -> RowLocks: ...

    def writer(self, slot: Slot) -> int | None:
        """The open transaction that wrote the row at `slot`, if any."""
        ...

    def locked(self, slot: Slot, undo: LockUndo | None) -> None: ...


class RowLocks:
    """Who holds which row: one exclusive holder, or shared holders; and who waits."""

    def __init__(self) -> None:
        self.exclusive: dict[Slot, int] = {}
        self.shared: dict[Slot, set[int]] = {}
        # A transaction waiting on a lock: the transactions it waits for.
        self.waits_for: dict[int, set[int]] = {}
        self._waiters: list[asyncio.Future[None]] = []

    def holders(self, slot: Slot, writer: int | None, me: int, exclusive: bool) -> set[int]:
        """The other transactions whose hold on `slot` conflicts with the one `me` asks."""
        found = {t for t in (self.exclusive.get(slot), writer) if t is not None}
        if exclusive:
            found |= self.shared.get(slot, set())
        found.discard(me)
        return found

    def take(self, slot: Slot, me: int, exclusive: bool) -> LockUndo | None:
        """Record `me`'s lock on `slot` (free of conflicts); the undo, or None if it held one."""
        if self.exclusive.get(slot) == me:
            return None
        sharers = self.shared.setdefault(slot, set())
        had_share = me in sharers
        if exclusive:
            self.exclusive[slot] = me
            sharers.discard(me)
        elif had_share:
            return None
        else:
            sharers.add(me)
        return LockUndo(self, slot, me, had_share)

    def release(self, me: int) -> None:
        """Drop every lock `me` holds (its transaction ended)."""
        for slot in [s for s, t in self.exclusive.items() if t == me]:
            del self.exclusive[slot]
        for slot, sharers in list(self.shared.items()):
            sharers.discard(me)
            if not sharers:
                del self.shared[slot]
        self.waits_for.pop(me, None)
        self.wake()

    def wake(self) -> None:
        """Let every waiter look again: a lock (or a written row) was given up."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self, me: int, blockers: set[int], deadline: float | None) -> bool:
        """Wait until some lock is given up; False once `deadline` (loop time) passed."""
        if self._closes_cycle(me, blockers):
            msg = (
                "deadlock detected: two units of work wait for rows each other locked; "
                "retry the whole unit of work (run_in_unit does)"
            )
            raise DeadlockDetected(msg)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        self.waits_for[me] = blockers
        try:
            if deadline is None:
                await waiter
                return True
            left = deadline - loop.time()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(waiter, left)
            except TimeoutError:
                return False
            return True
        finally:
            self.waits_for.pop(me, None)

    def _closes_cycle(self, me: int, blockers: set[int]) -> bool:
        seen: set[int] = set()
        todo = list(blockers)
        while todo:
            t = todo.pop()
            if t == me:
                return True
            if t not in seen:
                seen.add(t)
                todo.extend(self.waits_for.get(t, ()))
        return False


class LockUndo:
    """A lock's entry in its transaction's undo log: rolling back to before it drops it."""

    __slots__ = ("_had_share", "_locks", "_me", "_slot")

    def __init__(self, locks: RowLocks, slot: Slot, me: int, had_share: bool) -> None:
        self._locks = locks
        self._slot = slot
        self._me = me
        self._had_share = had_share

    def undo(self) -> None:
        locks, slot, me = self._locks, self._slot, self._me
        if locks.exclusive.get(slot) == me:
            del locks.exclusive[slot]
            if self._had_share:
                locks.shared.setdefault(slot, set()).add(me)
        else:
            sharers = locks.shared.get(slot, set())
            sharers.discard(me)
            if not sharers:
                locks.shared.pop(slot, None)
        locks.wake()


async def lock_rows(  # noqa: PLR0917
    txn: Locker,
    table: str,
    select: Callable[[], Sequence[Row]],
    key_of: Callable[[Row], Any],
    lock: RowLock,
    wanted: int | None = None,
) -> list[Row]:
    """Lock and return the rows `select` gives (in its order), at most `wanted`.

    As PostgreSQL's ``FOR UPDATE`` / ``FOR SHARE``: a row another
    transaction holds is waited for, then the selection is read again (the
    row may have changed, or stopped matching); with ``skip_locked`` it is
    passed over; with ``nowait`` it fails the statement. Rows locked before
    a wait stay locked.
    """
    locks = txn.row_locks
    loop = asyncio.get_running_loop()
    bounds = [t for t in (txn.lock_timeout, txn.statement_timeout) if t is not None]
    deadline = loop.time() + min(bounds) if bounds else None
    while True:
        taken: list[Row] = []
        blockers: set[int] = set()
        for row in select():
            if wanted is not None and len(taken) >= wanted:
                break
            slot = (table, key_of(row))
            others = locks.holders(slot, txn.writer(slot), txn.id, lock.exclusive)
            if others:
                if lock.skip_locked:
                    continue
                if lock.nowait:
                    msg = (
                        f'could not obtain lock on row in relation "{table}": another unit '
                        "of work holds it (nowait=True); retry later, or pass over such "
                        "rows with skip_locked=True"
                    )
                    raise LockNotAvailable(msg)
                blockers = others
                break
            txn.locked(slot, locks.take(slot, txn.id, lock.exclusive))
            taken.append(row)
        if not blockers:
            return taken
        if not await locks.wait(txn.id, blockers, deadline):
            if txn.lock_timeout is not None and txn.lock_timeout == min(bounds):
                msg = (
                    f"canceling statement due to lock timeout (a {table} row another unit "
                    "of work holds); retry later, or raise lock_timeout"
                )
                raise LockNotAvailable(msg)
            msg = f"canceling statement due to statement timeout (waiting on a {table} row)"
            raise QueryCanceled(msg)
