"""Streams and cursors in memory: the rows a statement selected, handed out in batches."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

from repo._stream import check_count
from repo.errors import InvalidState

__all__ = ["MemoryCursor", "MemorySource", "open_cursor"]

T = TypeVar("T")


class MemorySource(Generic[T]):
    """A stream's batches: the rows a statement selected, `prefetch` at a time."""

    def __init__(self, read: Callable[[], Awaitable[list[T]]], prefetch: int) -> None:
        self._read = read
        self._prefetch = prefetch
        self._rows: list[T] | None = None
        self._at = 0

    async def batch(self) -> list[T]:
        if self._rows is None:
            self._rows = await self._read()
        batch = self._rows[self._at : self._at + self._prefetch]
        self._at += len(batch)
        return batch

    async def close(self) -> None:
        self._rows = []


class MemoryCursor(Generic[T]):
    """A cursor over the rows a statement selected."""

    def __init__(self, rows: Sequence[T]) -> None:
        self._rows = rows
        self._at = 0
        self.closed = False

    def _check(self) -> None:
        if self.closed:
            msg = "the cursor is closed: use it inside its `async with` block"
            raise InvalidState(msg)

    async def fetch(self, n: int) -> list[T]:
        self._check()
        n = check_count(n, "fetch()")
        batch = list(self._rows[self._at : self._at + n])
        self._at += len(batch)
        return batch

    async def fetchrow(self) -> T | None:
        batch = await self.fetch(1)
        return batch[0] if batch else None

    async def forward(self, n: int) -> int:
        self._check()
        n = check_count(n, "forward()")
        moved = min(n, len(self._rows) - self._at)
        self._at += moved
        return moved


@asynccontextmanager
async def open_cursor(read: Callable[[], Awaitable[list[T]]]) -> AsyncIterator[MemoryCursor[T]]:
    cursor = MemoryCursor(await read())
    try:
        yield cursor
    finally:
        cursor.closed = True
