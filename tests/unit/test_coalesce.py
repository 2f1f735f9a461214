"""`Coalescer` on its own: batches, bounds, errors and cancellation, on a fake statement runner."""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Sequence
from typing import Any

import pytest

from repo._postgres.coalesce import Coalescer
from repo.errors import ConnectionLost, DataError


class FakeTable:
    composite = False
    row_key = operator.itemgetter(0)


class FakeStatements:
    get = "GET ONE"
    get_many = "GET MANY"


TABLE: Any = FakeTable()
ST: Any = FakeStatements()


class Server:
    """Rows (key, value) for keys 1..50; refuses key 13 (a value error), can be made to fail."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[Any]]] = []
        self.fail: set[Any] = set()
        self.gate: asyncio.Event | None = None

    async def run(self, name: str, sql: str, args: Sequence[Any], table: Any) -> Any:
        keys = list(args[0]) if sql == "GET MANY" else [args[0]]
        self.sent.append((sql, keys))
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0)
        if self.fail.intersection(keys):
            msg = "the connection was lost"
            raise ConnectionLost(msg)
        if 13 in keys:
            msg = "the server refused 13"
            raise DataError(msg)
        rows = [(k, f"v{k}") for k in keys if 1 <= k <= 50]
        if name == "fetchrow":
            return rows[0] if rows else None
        return rows


@pytest.fixture
def server() -> Server:
    return Server()


async def get(coalescer: Coalescer, server: Server, *keys: Any) -> list[Any]:
    return await coalescer.rows((None, server.run), ST, TABLE, keys)


async def test_callers_ready_together_share_one_statement(server: Server) -> None:
    coalescer = Coalescer(100)
    got = await asyncio.gather(*(get(coalescer, server, k) for k in (1, 2, 60, 2)))
    assert got == [[(1, "v1")], [(2, "v2")], [None], [(2, "v2")]]
    assert server.sent == [("GET MANY", [1, 2, 60])]


async def test_a_lone_call_is_the_single_statement(server: Server) -> None:
    coalescer = Coalescer(100)
    assert await get(coalescer, server, 5) == [(5, "v5")]
    assert server.sent == [("GET ONE", [5])]


async def test_batches_are_bounded(server: Server) -> None:
    coalescer = Coalescer(10)
    got = await asyncio.gather(*(get(coalescer, server, k) for k in range(20, 45)))
    assert [g[0][0] for g in got] == list(range(20, 45))
    assert [len(keys) for _, keys in server.sent] == [10, 10, 5]


async def test_a_failed_batch_fails_its_own_callers(server: Server) -> None:
    coalescer = Coalescer(2)
    server.fail = {1}
    got = await asyncio.gather(
        *(get(coalescer, server, k) for k in (1, 2, 3)), return_exceptions=True
    )
    # 1 and 2 made the first batch, which failed; 3 the second.
    assert isinstance(got[0], ConnectionLost)
    assert isinstance(got[1], ConnectionLost)
    assert got[2] == [(3, "v3")]
    assert server.sent == [("GET MANY", [1, 2]), ("GET ONE", [3])]


async def test_a_value_error_reaches_only_the_caller_it_concerns(server: Server) -> None:
    coalescer = Coalescer(100)
    got = await asyncio.gather(
        get(coalescer, server, 12),
        get(coalescer, server, 13),
        get(coalescer, server, 14),
        return_exceptions=True,
    )
    assert got[0] == [(12, "v12")]
    assert isinstance(got[1], DataError)
    assert got[2] == [(14, "v14")]
    # The batch, then each caller alone.
    assert server.sent[0] == ("GET MANY", [12, 13, 14])
    assert sorted(keys[0] for _, keys in server.sent[1:]) == [12, 13, 14]


async def test_a_cancelled_caller_leaves_the_batch_running(server: Server) -> None:
    coalescer = Coalescer(100)
    server.gate = asyncio.Event()
    tasks = [asyncio.ensure_future(get(coalescer, server, k)) for k in (1, 2, 3)]
    for _ in range(3):
        await asyncio.sleep(0)
    assert server.sent == [("GET MANY", [1, 2, 3])]  # in flight
    tasks[1].cancel()
    server.gate.set()
    got = await asyncio.gather(*tasks, return_exceptions=True)
    assert got[0] == [(1, "v1")]
    assert isinstance(got[1], asyncio.CancelledError)
    assert got[2] == [(3, "v3")]


async def test_keys_python_cannot_hash_go_alone(server: Server) -> None:
    coalescer = Coalescer(100)
    got = await asyncio.gather(
        get(coalescer, server, 1), get(coalescer, server, [2]), return_exceptions=True
    )
    assert got[0] == [(1, "v1")]
    # Its own outcome: the fake server cannot compare a list with its keys.
    assert isinstance(got[1], TypeError)
