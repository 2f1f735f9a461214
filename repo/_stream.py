"""Streams and cursors: large results read a batch at a time.

`Stream` is what ``repository.stream(...)`` returns: an async iterator (and
async context manager) of entities. Memory holds one batch of `prefetch`
rows, however large the result. On Postgres it is a server-side cursor.

`Cursor` is the explicit form, for the seed's moves: skip ahead with
`forward`, take a batch with `fetch`.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Generic, Protocol, Self, TypeVar

from .errors import InvalidQuery

__all__ = [
    "DEFAULT_PREFETCH",
    "Cursor",
    "Source",
    "Stream",
    "check_prefetch",
]

T = TypeVar("T")

DEFAULT_PREFETCH = 1000


def check_prefetch(prefetch: int | None) -> int:
    """`prefetch` (default `DEFAULT_PREFETCH`), refused unless a positive int."""
    if prefetch is None:
        return DEFAULT_PREFETCH
    if not isinstance(prefetch, int) or isinstance(prefetch, bool) or prefetch < 1:
        msg = f"prefetch must be a positive int (rows per round trip), got {prefetch!r}"
        raise InvalidQuery(msg)
    return prefetch


def check_count(n: object, what: str) -> int:
    """`n` rows to fetch or skip: a positive int, as asyncpg's cursors take."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        msg = f"{what} takes a positive int (rows to move over), got {n!r}"
        raise InvalidQuery(msg)
    return n


class Cursor(Protocol[T]):
    """A server-side cursor's moves, yielding entities (or read models)."""

    async def fetch(self, n: int) -> list[T]:
        """The next `n` rows (fewer at the end, none past it)."""
        ...

    async def fetchrow(self) -> T | None:
        """The next row, or ``None`` at the end."""
        ...

    async def forward(self, n: int) -> int:
        """Skip `n` rows; return how many were skipped."""
        ...


class Source(Protocol[T]):
    """Where a stream's batches come from: a backend's cursor."""

    async def batch(self) -> list[T]:
        """The next batch; empty at the end."""
        ...

    async def close(self) -> None:
        """Release the cursor and anything it holds; idempotent."""
        ...


# Cleanups scheduled by streams collected while still open: held here so the
# event loop does not lose them half-way.
_cleanups: set[asyncio.Task[None]] = set()


class Stream(Generic[T]):
    """An async iterator of rows read a batch (`prefetch` rows) at a time.

    ``async for x in stream`` reads it; leaving the loop early, by ``break``,
    an exception or cancellation, releases the cursor (and, outside a unit of
    work, its connection). ``async with stream:`` makes that release happen at
    the block's end rather than when the stream is garbage-collected.
    """

    def __init__(self, source: Source[T]) -> None:
        self._source = source
        self._batch: list[T] = []
        self._next = 0
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        if self._next < len(self._batch):
            item = self._batch[self._next]
            self._next += 1
            return item
        if self._closed:
            raise StopAsyncIteration
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        try:
            batch = await self._source.batch()
        except BaseException:
            # Failed or cancelled: release at once, not at GC.
            await self.aclose()
            raise
        if not batch:
            await self.aclose()
            raise StopAsyncIteration
        self._batch = batch
        self._next = 1
        return batch[0]

    async def aclose(self) -> None:
        """Release the cursor (and its connection) now."""
        if not self._closed:
            self._closed = True
            self._batch = []
            # Shielded: cancellation must not stop the release half-way.
            await asyncio.shield(self._source.close())

    def __del__(self) -> None:
        # A stream dropped mid-way (``break`` out of ``async for``) is closed
        # here, in one ordered cleanup, rather than by the finalizers of
        # nested async generators, which run in no particular order.
        if self._closed or self._loop is None or self._loop.is_closed():
            return
        self._closed = True
        loop = self._loop
        source = self._source

        def schedule() -> None:
            task = loop.create_task(source.close())
            _cleanups.add(task)
            task.add_done_callback(_cleanups.discard)

        loop.call_soon_threadsafe(schedule)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def to_list(self) -> list[T]:
        """Every row, in memory: only for results known to be small."""
        return [x async for x in self]
