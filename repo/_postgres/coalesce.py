"""Coalesced lookups: pool-level reads by key pending at the same moment, as one statement.

A pool-level ``get(key)``, ``get_many(keys)`` or ``find_one(key=...)`` is
its own autocommit statement; many of them issued at the same moment (one
per request of a busy service) are each a round trip, and the round trip,
not the server, bounds how many a second a client does. `Coalescer` sends
them together: the first caller opens a batch and starts the task that will
send it; every caller that the event loop runs before that task starts (the
callers that were ready at the same moment) joins it. No timer: the task
starts on the loop's next turn, so a lone call waits for nothing. The task
sends ``WHERE key = ANY($1)`` (``= $1``, the statement of an uncoalesced
get, when the batch holds one key), on a pooled connection of its own, and
hands each caller the rows of its own keys.

Every call of a batch was an autocommit statement of its own, with a
snapshot of its own: one statement with one snapshot, taken after every one
of them was issued, is one of the orders they could have run in, so the
answers are those the server could have given them one by one.

- Bounded: a batch carries at most `max_keys` keys; more callers open more
  batches, each sent on a connection of its own.
- Each caller receives its own row or None (its own `NotFound` is raised in
  the caller, as is any error turning its row into its entity).
- A batch that fails fails its callers only. A `DataError` or
  `InvalidQuery` may be about one key: the batch is then re-sent one call
  per statement, so that each caller gets its own outcome.
- A cancelled caller's answer is dropped; the batch goes on for the others.
- Keys are matched to rows by Python equality; a row that matches no key
  asked (a ``char(n)`` key read back padded, a NaN) makes the keys left
  without a row be asked again, each alone, so that the answer is the
  server's, not Python's.
- One statement event per batch, its `callers` the number of calls it
  answered (`repo._observe.batch_callers`).
- A sender of several callers' batch holds its connection and keeps it for
  their next batch, if they open one (they run on the loop's next turn,
  before it does): concurrent callers that loop over lookups (a busy
  service's tasks) then cost no pool acquire and release per batch, and no
  task. It gives the connection back as soon as no batch of several
  callers is waiting, and on any failure. A lone caller's statement runs
  as it would uncoalesced, its connection back in the pool before it is
  answered: sequential code's next statement may be anything, and must
  not find its connection taken. Routes to replicas do not hold (see `Route`).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

from repo._observe import Observer, batch_callers
from repo.errors import DataError, InvalidQuery, ReadOnlyViolation

from .run import call

if TYPE_CHECKING:
    from repo._mapping import Table

    from .pool import Pool
    from .sql import Statements

__all__ = ["Coalescer", "Hold", "Route", "Run", "held"]

# How a batch's statement runs: a session's ``_run(name, sql, args, table)``.
Run = Callable[[str, str, Sequence[Any], "Table[Any] | None"], Awaitable[Any]]
# A connection held for several batches, one statement at a time (`held`).
Hold = Callable[[], AbstractAsyncContextManager[Run]]
# Where a session's reads go (None: its pool; "primary"/"replica" with
# replicas), how to run a statement there, and how to hold a connection
# there for several batches (None: every batch runs on its own).
Route = tuple[str | None, Run, Hold | None]


@asynccontextmanager
async def held(pool: Pool, obs: Observer | None) -> AsyncIterator[Run]:
    """A connection of `pool`, and how to run statements on it, one at a time.

    Given back at the end, or replaced if it was lost or (a write refused
    as read-only: a failover demoted the server) must not serve again.
    """
    conn = await pool.take()
    demoted = False

    async def run(name: str, sql: str, args: Sequence[Any], table: Table[Any] | None) -> Any:
        nonlocal demoted
        try:
            return await call(conn, name, sql, args, obs, table=table)
        except ReadOnlyViolation:
            demoted = True
            raise

    try:
        yield run
    finally:
        await pool.give_back(conn, discard=demoted)


# The errors a batch may owe to one of its keys rather than to all of them.
_PER_KEY = (DataError, InvalidQuery)


class _Waiter:
    __slots__ = ("future", "keys", "many")

    def __init__(
        self, keys: Sequence[Any], future: asyncio.Future[list[Any]], *, many: bool
    ) -> None:
        self.keys = keys
        self.future = future
        # A get_many: alone, it sends the statement for many keys, as it would uncoalesced.
        self.many = many


class _Batch:
    __slots__ = ("hold", "loop", "pooled", "run", "size", "st", "table", "waiters")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        st: Statements[Any],
        table: Table[Any],
        route: Route,
    ) -> None:
        self.loop = loop
        self.st = st
        self.table = table
        # What the batch's statements run on: a held connection's `run`
        # while a sender holds one, else `pooled`, a connection per statement.
        self.run = self.pooled = route[1]
        self.hold = route[2]
        self.size = 0
        self.waiters: list[_Waiter] = []


class Coalescer:
    """The batches of one `Database`'s pool-level lookups (see the module's docstring)."""

    __slots__ = ("_idle", "_open", "_tasks", "max_keys")

    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        # The batch still open for each statement and route.
        self._open: dict[tuple[str, str | None], _Batch] = {}
        # Senders holding a connection for the next batch of a statement and
        # route, during the loop turn its callers run in: None until a
        # caller hands it the batch it opens.
        self._idle: dict[tuple[str, str | None], _Batch | None] = {}
        # Batches being sent, held so that the loop does not lose them.
        self._tasks: set[asyncio.Task[None]] = set()

    def fits(self, keys: int) -> bool:
        """Whether a call with this many keys may join a batch."""
        return keys <= self.max_keys

    def rows(
        self,
        route: Route,
        st: Statements[Any],
        table: Table[Any],
        keys: Sequence[Any],
        *,
        many: bool = False,
    ) -> asyncio.Future[list[Any]]:
        """What will be the row with each of `keys` (None for a key with no row), in their order.

        `keys`: checked keys (tuples for a composite key), at most
        `max_keys` of them (see `fits`); `many`: the call is a get_many. A
        future rather than a coroutine: one frame fewer on the hottest path.
        Cancelling it (the caller cancelled) cancels only this call.
        """
        loop = asyncio.get_running_loop()
        slot = (st.get_many, route[0])
        batch = self._open.get(slot)
        if batch is None or batch.loop is not loop or batch.size + len(keys) > self.max_keys:
            batch = _Batch(loop, st, table, route)
            self._open[slot] = batch
            if slot in self._idle and self._idle[slot] is None:
                # A sender holds a connection for it: it sends the batch
                # when it runs, after the callers ready with this one.
                self._idle[slot] = batch
            else:
                # The batch closes when this task starts: on the loop's next
                # turn, after the callers that were ready with this one ran.
                task = loop.create_task(self._send(slot, batch))
                self._tasks.add(task)
                task.add_done_callback(functools.partial(self._sent, slot, batch))
        future: asyncio.Future[list[Any]] = loop.create_future()
        batch.waiters.append(_Waiter(keys, future, many=many))
        batch.size += len(keys)
        return future

    def _sent(self, slot: tuple[str, str | None], batch: _Batch, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            # Cancelled before it started (the loop closing): its callers are
            # told so rather than left waiting.
            self._close(slot, batch)
            for waiter in batch.waiters:
                waiter.future.cancel()

    async def _send(self, slot: tuple[str, str | None], batch: _Batch) -> None:
        self._close(slot, batch)
        hold = batch.hold
        if hold is None or len(batch.waiters) < 2:
            # A lone caller (sequential code, whose next statement may be
            # anything): its connection is back in the pool before it is answered.
            await self._answer(slot, batch)
            return
        holding = False
        try:
            async with hold() as run:
                holding = True
                while True:
                    batch.run = run
                    if not await self._answer(slot, batch):
                        # Failed (the connection may be the cause): given back now.
                        return
                    nxt = await self._next(slot)
                    if nxt is None:
                        return
                    batch = nxt
                    if len(batch.waiters) < 2:
                        break
        except Exception as exc:
            if holding:
                raise
            # No connection to be had (a timeout, the server down): the
            # batch's callers get the error, as each would have alone.
            for waiter in batch.waiters:
                _fail(waiter, exc)
            return
        # A lone caller's batch after all: as above, on a connection of its own.
        await self._answer(slot, batch)

    async def _next(self, slot: tuple[str, str | None]) -> _Batch | None:
        """The batch the callers just answered open on the loop's next turn, if any."""
        self._idle[slot] = None
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            # The sender itself was cancelled (the loop is closing): a batch
            # handed to it is never sent, and its callers are told so.
            nxt = self._idle.pop(slot, None)
            if nxt is not None:
                self._close(slot, nxt)
                for waiter in nxt.waiters:
                    waiter.future.cancel()
            raise
        return self._idle.pop(slot, None)

    async def _answer(self, slot: tuple[str, str | None], batch: _Batch) -> bool:
        """Send `batch` and answer its callers; False if it failed, or had no caller left."""
        self._close(slot, batch)
        waiters = [w for w in batch.waiters if not w.future.done()]
        if not waiters:
            # Every caller was cancelled before it went: nothing to ask.
            return False
        batch_callers.set(len(waiters))
        try:
            if len(waiters) == 1:
                await self._one(batch, waiters[0])
            else:
                await self._many(batch, waiters)
        except asyncio.CancelledError:
            for waiter in waiters:
                waiter.future.cancel()
            raise
        except BaseException as exc:
            for waiter in waiters:
                _fail(waiter, exc)
            if not isinstance(exc, Exception):
                raise
            return False
        return True

    def _close(self, slot: tuple[str, str | None], batch: _Batch) -> None:
        """No caller joins `batch` from now on."""
        if self._open.get(slot) is batch:
            del self._open[slot]

    async def _one(self, batch: _Batch, waiter: _Waiter) -> None:
        """One caller: its own statement, as if it had not been coalesced."""
        keys = waiter.keys
        if len(keys) == 1 and not waiter.many:
            row = await self._alone(batch, keys[0])
            _answer(waiter, [row])
            return
        unique = list(dict.fromkeys(keys))
        rows = await batch.run(
            "fetch", batch.st.get_many, batch.table.keys_args(unique), batch.table
        )
        found = self._found(batch, rows)
        await self._settle(batch, waiter, found, unmatched=_unmatched(unique, found, rows))

    async def _many(self, batch: _Batch, waiters: list[_Waiter]) -> None:
        try:
            unique = list(dict.fromkeys(k for w in waiters for k in w.keys))
        except TypeError:
            # A key Python cannot hash: each caller on its own.
            await self._each(batch, waiters)
            return
        if len(unique) == 1:
            row = await self._alone(batch, unique[0])
            for waiter in waiters:
                _answer(waiter, [row] * len(waiter.keys))
            return
        try:
            rows = await batch.run(
                "fetch", batch.st.get_many, batch.table.keys_args(unique), batch.table
            )
        except _PER_KEY:
            # Perhaps one key's fault (a value the server refused): each
            # caller gets its own outcome.
            await self._each(batch, waiters)
            return
        found = self._found(batch, rows)
        if _unmatched(unique, found, rows):
            for waiter in waiters:
                await self._settle(batch, waiter, found, unmatched=True)
            return
        get = found.get
        for waiter in waiters:
            future = waiter.future
            if not future.done():
                keys = waiter.keys
                future.set_result([get(keys[0])] if len(keys) == 1 else [get(k) for k in keys])

    async def _settle(
        self, batch: _Batch, waiter: _Waiter, found: dict[Any, Any], *, unmatched: bool
    ) -> None:
        """Answer `waiter` from the rows `found` by key.

        `unmatched`: a row came back that matches no key asked, as Python
        compares them (a ``char(n)`` key read back padded, a NaN): this
        caller's keys left without a row are asked again, each alone, so
        that the answer is the server's.
        """
        answer = [found.get(k) for k in waiter.keys]
        if unmatched and None in answer:
            answer = [
                row if row is not None else await self._alone(batch, key)
                for key, row in zip(waiter.keys, answer, strict=True)
            ]
        _answer(waiter, answer)

    async def _each(self, batch: _Batch, waiters: list[_Waiter]) -> None:
        """Every caller on a statement of its own, concurrently (each on a pooled
        connection: a held one runs one statement at a time)."""
        batch_callers.set(1)
        batch.run = batch.pooled

        async def own(waiter: _Waiter) -> None:
            try:
                await self._one(batch, waiter)
            except Exception as exc:
                _fail(waiter, exc)

        await asyncio.gather(*(own(w) for w in waiters))

    async def _alone(self, batch: _Batch, key: Any) -> Any:
        """The row of `key` (or None), on a statement that asks for it alone."""
        table = batch.table
        args = key if table.composite else (key,)
        return await batch.run("fetchrow", batch.st.get, args, table)

    @staticmethod
    def _found(batch: _Batch, rows: list[Any]) -> dict[Any, Any]:
        row_key = batch.table.row_key
        return {row_key(row): row for row in rows}


def _unmatched(unique: list[Any], found: dict[Any, Any], rows: list[Any]) -> bool:
    """Whether some of `rows` match none of the keys asked, `unique`."""
    return sum(1 for k in unique if k in found) < len(rows)


def _answer(waiter: _Waiter, rows: list[Any]) -> None:
    if not waiter.future.done():
        waiter.future.set_result(rows)


def _fail(waiter: _Waiter, exc: BaseException) -> None:
    if not waiter.future.done():
        waiter.future.set_exception(exc)
