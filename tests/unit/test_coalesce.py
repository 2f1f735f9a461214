"""`Coalescer` on its own: batches, bounds, errors and cancellation, on a fake statement runner."""

from __future__ import annotations

import asyncio
import contextlib
import operator
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from repo._postgres.coalesce import Coalescer
from repo.errors import ConnectionLost, DataError, PoolTimeout


class FakeTable:
    composite = False
    row_key = operator.itemgetter(0)

    def keys_args(self, keys: Sequence[Any]) -> list[list[Any]]:
        return [list(keys)]


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
    return await coalescer.rows((None, server.run, None), ST, TABLE, keys)


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


class Holds:
    """A fake pool for held connections: counts them, and checks one statement at a time."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.taken = 0
        self.given_back = 0
        self.busy = False
        self.refuse: Exception | None = None

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[Any]:
        await asyncio.sleep(0)
        if self.refuse is not None:
            raise self.refuse
        self.taken += 1

        async def run(name: str, sql: str, args: Sequence[Any], table: Any) -> Any:
            assert not self.busy, "two statements at once on one connection"
            self.busy = True
            try:
                return await self.server.run(name, sql, args, table)
            finally:
                self.busy = False

        try:
            yield run
        finally:
            self.given_back += 1


async def looping(coalescer: Coalescer, route: Any, keys: Sequence[int]) -> list[Any]:
    """A caller that looks its keys up one after the other, as a request handler does."""
    return [(await coalescer.rows(route, ST, TABLE, (k,)))[0] for k in keys]


async def test_callers_that_loop_keep_one_connection_between_batches(server: Server) -> None:
    coalescer = Coalescer(100)
    holds = Holds(server)
    route = (None, server.run, holds)
    got = await asyncio.gather(*(looping(coalescer, route, range(t, 50, 10)) for t in (1, 2, 4)))
    assert got == [[(k, f"v{k}") for k in range(t, 50, 10)] for t in (1, 2, 4)]
    # One batch per round of the three callers, all on the one connection held throughout.
    assert [keys for _, keys in server.sent] == [[t, t + 1, t + 3] for t in range(1, 50, 10)]
    assert (holds.taken, holds.given_back) == (1, 1)
    # A lone caller's lookups, one after the other: each on a pooled connection, nothing held.
    assert await looping(coalescer, route, [4, 5]) == [(4, "v4"), (5, "v5")]
    assert server.sent[-2:] == [("GET ONE", [4]), ("GET ONE", [5])]
    assert (holds.taken, holds.given_back) == (1, 1)


async def test_a_failed_batch_gives_its_held_connection_back(server: Server) -> None:
    coalescer = Coalescer(100)
    holds = Holds(server)
    route = (None, server.run, holds)
    server.fail = {21}
    got = await asyncio.gather(
        looping(coalescer, route, [1, 21, 3]),
        looping(coalescer, route, [2, 22, 4]),
        return_exceptions=True,
    )
    assert isinstance(got[0], ConnectionLost)
    assert isinstance(got[1], ConnectionLost)
    assert (holds.taken, holds.given_back) == (1, 1)
    # The next lookups take a fresh connection.
    got = await asyncio.gather(looping(coalescer, route, [3]), looping(coalescer, route, [4]))
    assert got == [[(3, "v3")], [(4, "v4")]]
    await asyncio.sleep(0)
    assert (holds.taken, holds.given_back) == (2, 2)


async def test_no_connection_to_hold_fails_the_batch_callers_only(server: Server) -> None:
    coalescer = Coalescer(100)
    holds = Holds(server)
    route = (None, server.run, holds)
    holds.refuse = PoolTimeout("no connection free")
    got = await asyncio.gather(
        *(coalescer.rows(route, ST, TABLE, (k,)) for k in (1, 2)), return_exceptions=True
    )
    assert all(isinstance(g, PoolTimeout) for g in got), got
    assert server.sent == []
    holds.refuse = None
    assert await coalescer.rows(route, ST, TABLE, (1,)) == [(1, "v1")]


async def test_a_value_error_while_held_reaches_only_its_caller(server: Server) -> None:
    """The batch is re-sent one call per statement on pooled connections, never two at once
    on the held one."""
    coalescer = Coalescer(100)
    holds = Holds(server)
    route = (None, server.run, holds)
    got = await asyncio.gather(
        looping(coalescer, route, [12, 1]),
        looping(coalescer, route, [13, 2]),
        looping(coalescer, route, [14, 3]),
        return_exceptions=True,
    )
    assert got[0] == [(12, "v12"), (1, "v1")]
    assert isinstance(got[1], DataError)
    assert got[2] == [(14, "v14"), (3, "v3")]


async def test_a_sender_cancelled_while_holding_cancels_the_batch_handed_to_it(
    server: Server,
) -> None:
    """The loop closing cancels a sender between batches: the batch its callers just handed
    it is never sent, and those callers are told so rather than left waiting."""
    coalescer = Coalescer(100)
    holds = Holds(server)
    route = (None, server.run, holds)
    handed: list[asyncio.Future[list[Any]]] = []

    async def caller(key: int) -> None:
        await coalescer.rows(route, ST, TABLE, (key,))
        # On the turn the sender waits for the next batch: handed to it.
        handed.append(coalescer.rows(route, ST, TABLE, (key + 10,)))
        for task in coalescer._tasks:
            task.cancel()

    await asyncio.gather(caller(1), caller(2))
    for future in handed:
        with pytest.raises(asyncio.CancelledError):
            await future
    assert server.sent == [("GET MANY", [1, 2])]
    assert (holds.taken, holds.given_back) == (1, 1)
    assert await coalescer.rows(route, ST, TABLE, (3,)) == [(3, "v3")]


async def test_a_sender_cancelled_before_it_starts_cancels_its_callers(server: Server) -> None:
    coalescer = Coalescer(100)
    futures = [coalescer.rows((None, server.run, None), ST, TABLE, (k,)) for k in (1, 2)]
    for task in coalescer._tasks:
        task.cancel()
    for future in futures:
        with pytest.raises(asyncio.CancelledError):
            await future
    assert server.sent == []
    assert await coalescer.rows((None, server.run, None), ST, TABLE, (3,)) == [(3, "v3")]
