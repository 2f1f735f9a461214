"""Opening the pool's connections so that a cancelled acquire leaves nothing behind.

asyncpg's pool opens a connection inside the acquire that needs it. An
acquire cancelled while the socket is being set up (a cancelled request, a
timeout) leaves behind a future whose exception nobody retrieves, and
asyncio logs "Future exception was never retrieved: unexpected
connection_lost()". `Connector`, the pool's ``connect=``, runs each connect
as a task of its own: a cancelled acquire goes on at once, and the connect
finishes out of sight, its connection closed.

The pool then opens connections again up to ``min_size`` by itself
(asyncpg 0.32 keeps that floor after connections close or acquires fail).
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

__all__ = ["Connector"]


class Connector:
    """The pool's ``connect=``: ``asyncpg.connect`` in a task a cancelled acquire leaves alone."""

    def __init__(self) -> None:
        self._pending: set[asyncio.Task[Any]] = set()

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        task = asyncio.ensure_future(asyncpg.connect(*args, **kwargs))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            # Bounded by the connect timeout; held here so that the loop does
            # not lose it half-way.
            self._pending.add(task)
            task.add_done_callback(self._abandoned)
            raise

    def _abandoned(self, task: asyncio.Task[Any]) -> None:
        self._pending.discard(task)
        # Read, so that no failure goes unretrieved; a connection nobody
        # will use is closed at once.
        if not task.cancelled() and task.exception() is None:
            task.result().terminate()

    async def aclose(self) -> None:
        """Wait for the connects still finishing (each bounded by the connect timeout)."""
        while self._pending:
            await asyncio.wait(set(self._pending))
