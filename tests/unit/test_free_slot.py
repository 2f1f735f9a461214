"""The O(1) free-slot check behind the pool's untimed fast path, and its fallback."""

from __future__ import annotations

import asyncio
from typing import Any

from repo._postgres.pool import has_free


class _Pool:
    def __init__(self, queue: Any) -> None:
        self._queue = queue


async def test_a_free_slot_is_seen_in_asyncpgs_queue() -> None:
    queue: asyncio.LifoQueue[object] = asyncio.LifoQueue()
    pool: Any = _Pool(queue)
    assert has_free(pool) is False
    queue.put_nowait(object())
    assert has_free(pool) is True


def test_without_asyncpgs_queue_the_answer_is_unknown() -> None:
    # None: the acquire is then always timed, and never reported as a wait.
    pool: Any = object()
    assert has_free(pool) is None
    odd: Any = _Pool([])
    assert has_free(odd) is None
