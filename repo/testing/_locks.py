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
        # The slots each transaction holds a lock on, to release them at its end.
        self.held: dict[int, set[Slot]] = {}
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
        had_share = me in self.shared.get(slot, ())
        if exclusive:
            self.exclusive[slot] = me
            self._unshare(slot, me)
        elif had_share:
            return None
        else:
            self.shared.setdefault(slot, set()).add(me)
        self.held.setdefault(me, set()).add(slot)
        return LockUndo(self, slot, me, had_share)

    def _unshare(self, slot: Slot, me: int) -> None:
        sharers = self.shared.get(slot)
        if sharers is not None:
            sharers.discard(me)
            if not sharers:
                del self.shared[slot]

    def drop(self, slot: Slot, me: int, keep_share: bool = False) -> None:
        """Give up `me`'s lock on `slot` (back to a shared one if `keep_share`)."""
        if self.exclusive.get(slot) == me:
            del self.exclusive[slot]
        if keep_share:
            self.shared.setdefault(slot, set()).add(me)
        else:
            self._unshare(slot, me)
            self.held.get(me, set()).discard(slot)
        self.wake()

    def release(self, me: int) -> None:
        """Drop every lock `me` holds (its transaction ended), and wake the waiters."""
        for slot in self.held.pop(me, ()):
            if self.exclusive.get(slot) == me:
                del self.exclusive[slot]
            self._unshare(slot, me)
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
        self._locks.drop(self._slot, self._me, keep_share=self._had_share)


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
    started = loop.time()
    # statement_timeout bounds the statement; lock_timeout each wait for one row.
    ends = None if txn.statement_timeout is None else started + txn.statement_timeout
    waiting_on: Slot | None = None
    lock_ends: float | None = None
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
                if slot != waiting_on:
                    waiting_on = slot
                    lock_ends = None if txn.lock_timeout is None else loop.time() + txn.lock_timeout
                blockers = others
                break
            txn.locked(slot, locks.take(slot, txn.id, lock.exclusive))
            taken.append(row)
        if not blockers:
            return taken
        deadline = min((t for t in (ends, lock_ends) if t is not None), default=None)
        if not await locks.wait(txn.id, blockers, deadline):
            if deadline == lock_ends:
                msg = (
                    f"canceling statement due to lock timeout (a {table} row another unit "
                    "of work holds); retry later, or raise lock_timeout"
                )
                raise LockNotAvailable(msg)
            msg = f"canceling statement due to statement timeout (waiting on a {table} row)"
            raise QueryCanceled(msg)
