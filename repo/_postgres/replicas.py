"""Read replicas: where a read runs, and whether a replica is fit to serve it.

Read-only units of work and pool-level reads go to a healthy replica (round
robin); everything else goes to the primary. A replica is healthy while it
answers, is in recovery, and its replay is within `max_lag` seconds of the
primary: caught up with the primary's WAL position as last sampled, else
the age of the last transaction it replayed. Health is checked every
`check_interval` seconds in the background; a replica that fails a read is
marked down at once, and the read runs on the primary instead, with no
error to the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import asyncpg

from repo._observe import Observer
from repo.errors import ConnectionLost, PoolTimeout, SerializationFailure

from .aggregate import PgAggregateReads
from .bouncer import split_dsn
from .coalesce import Coalescer, Route, held
from .connection import DRIVER_ERRORS, Conn
from .cursor import PoolReading, Reading
from .dsn import mask_dsn
from .ops import PgTableOps
from .pool import Pool
from .run import call
from .sessions import PoolSession
from .transaction import Transaction

if TYPE_CHECKING:
    from repo._aggregate import Aggregate
    from repo._mapping import Table

__all__ = ["Replica", "Replicas", "RoutedSession"]

log = logging.getLogger("repo")

# A replica failing in these ways is skipped and the read re-run on the
# primary: the server is gone or going, or (40001) a recovery conflict
# cancelled the query.
_FALLBACK = (ConnectionLost, PoolTimeout, SerializationFailure)

_LAG_SQL = (
    "SELECT pg_is_in_recovery(), "
    "coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, false), "
    "extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8"
)


class Replica:
    """One replica: its pool, its health, and (as a `transaction.Source`) its connections."""

    __slots__ = ("connections", "dsn", "healthy", "lag", "pool", "reason")

    def __init__(self, dsn: str, pool: asyncpg.Pool, connections: Pool) -> None:
        self.dsn = dsn
        self.pool = pool
        self.connections = connections
        self.healthy = False
        self.lag: float | None = None
        self.reason = "not checked yet"

    async def take(self) -> Conn:
        return await self.connections.take()

    async def give_back(self, conn: Conn, *, discard: bool = False) -> None:
        await self.connections.give_back(conn, discard=discard)

    def __repr__(self) -> str:
        state = "healthy" if self.healthy else f"skipped: {self.reason}"
        return f"<replica {mask_dsn(self.dsn)} {state}>"


class Replicas:
    """The replicas of one `Database`, their health, and connections taken from them."""

    def __init__(
        self,
        max_lag: float,
        check_interval: float,
        acquire_timeout: float,
        obs: Observer,
    ) -> None:
        self.obs = obs
        self.max_lag = max_lag
        self.check_interval = check_interval
        self.acquire_timeout = acquire_timeout
        self.members: list[Replica] = []
        self._turn = itertools.count()
        self._watcher: asyncio.Task[None] | None = None
        self._primary: asyncpg.Pool | None = None

    async def open(
        self, dsns: Sequence[str], options: Mapping[str, Any], primary: asyncpg.Pool
    ) -> None:
        """A pool per replica (`options` as the primary's), checked once, then watched."""
        self._primary = primary
        # min_size 0: a replica that is down must not stop the Database opening.
        replica_options = {**options, "min_size": 0}
        for dsn in dsns:
            plain = split_dsn(dsn)[0]
            pool: asyncpg.Pool = await asyncpg.create_pool(plain, **replica_options)
            connections = Pool(
                pool,
                max_size=int(options.get("max_size", 10)),
                acquire_timeout=self.acquire_timeout,
                obs=self.obs,
                where=f"replica {mask_dsn(plain)}",
            )
            self.members.append(Replica(plain, pool, connections))
        await self.check_all()
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def close(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        for replica in self.members:
            try:
                await asyncio.wait_for(replica.pool.close(), self.acquire_timeout)
            except TimeoutError:
                # A connection lost mid-read must not hold up closing.
                replica.pool.terminate()

    # -- health -----------------------------------------------------------

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.check_interval)
            try:
                await self.check_all()
            except Exception:
                # Keep watching: a check that failed in an unforeseen way must
                # not freeze every replica in its last state.
                log.exception("checking the replicas failed")

    async def check_all(self) -> None:
        """Check every replica's health now (the primary's WAL position sampled first)."""
        primary = self._primary
        if primary is None or not self.members:
            return
        try:
            position = await asyncio.wait_for(
                primary.fetchval("SELECT pg_current_wal_lsn()::text"), self.acquire_timeout
            )
        except (*DRIVER_ERRORS, asyncpg.PostgresError):
            # The primary cannot say where it is: keep what we knew.
            return
        await asyncio.gather(*(self._check(r, position) for r in self.members))

    async def _check(self, replica: Replica, position: str) -> None:
        try:
            row = await asyncio.wait_for(
                replica.pool.fetchrow(_LAG_SQL, position), self.acquire_timeout
            )
        except DRIVER_ERRORS as exc:
            self.mark_down(replica, f"unreachable ({type(exc).__name__}: {exc})")
            return
        if row is None or not row[0]:
            self.mark_down(replica, "not in recovery: it is not a standby (promoted?)")
            return
        lag = 0.0 if row[1] else (math.inf if row[2] is None else max(float(row[2]), 0.0))
        replica.lag = lag
        if lag > self.max_lag:
            self.mark_down(replica, f"lagging {lag:.1f}s behind, past max_replica_lag")
            return
        if not replica.healthy:
            log.info("replica %s serves reads (lag %.1fs)", mask_dsn(replica.dsn), lag)
        replica.healthy = True
        replica.reason = ""

    def mark_down(self, replica: Replica, reason: str) -> None:
        """Skip `replica` for reads until a check finds it healthy again."""
        if replica.healthy or replica.reason != reason:
            log.warning("replica %s skipped: %s", mask_dsn(replica.dsn), reason)
        replica.healthy = False
        replica.reason = reason

    def healthy(self) -> list[Replica]:
        """The healthy replicas, starting with the one whose turn it is."""
        members = [r for r in self.members if r.healthy]
        if not members:
            return []
        start = next(self._turn) % len(members)
        return members[start:] + members[:start]

    # -- connections --------------------------------------------------------

    async def begin_read(self, statement: str, primary: Pool, *, raw: bool = False) -> Transaction:
        """A transaction begun with `statement` (a read-only BEGIN) on a healthy
        replica, or, when none can take it, on `primary`."""
        for replica in self.healthy():
            transaction = Transaction(replica, statement, self.obs, raw=raw)
            try:
                await transaction.begin()
            except (*_FALLBACK, *DRIVER_ERRORS) as exc:
                self.mark_down(replica, f"failed to begin ({type(exc).__name__}: {exc})")
                continue
            return transaction
        transaction = Transaction(primary, statement, self.obs, raw=raw)
        await transaction.begin()
        return transaction

    async def run(self, name: str, sql: str, args: Sequence[Any]) -> tuple[bool, Any]:
        """``(True, result)`` of a read on a healthy replica, or ``(False, None)``."""
        for replica in self.healthy():
            try:
                conn = await replica.take()
            except (*_FALLBACK, *DRIVER_ERRORS) as exc:
                self.mark_down(replica, f"no connection ({type(exc).__name__}: {exc})")
                continue
            try:
                return True, await call(conn, name, sql, args, self.obs)
            except (*_FALLBACK, asyncpg.InterfaceError) as exc:
                # InterfaceError: the connection was lost and already detached
                # from its pool while the error was being translated.
                self.mark_down(replica, f"a read failed ({type(exc).__name__}: {exc})")
            finally:
                # Shielded so that a cancelled read still returns its connection.
                await asyncio.shield(replica.give_back(conn))
        return False, None


class RoutedSession(PoolSession):
    """A pool-level repository's session when there are replicas.

    Reads go to a replica; everything else (writes, hand-written SQL) to the
    primary. After a call on the primary, this repository's reads stay on
    the primary for `max_lag` seconds, so that it reads its writes.
    """

    def __init__(
        self,
        pool: Pool,
        obs: Observer,
        replicas: Replicas,
        *,
        declare: bool = False,
        coalescer: Coalescer | None = None,
    ) -> None:
        super().__init__(pool, obs, declare=declare)
        self.wrote_at = -math.inf
        self._reader = ReplicaReader(
            pool, obs, replicas, self, declare=declare, coalescer=coalescer
        )

    async def _run(
        self, name: str, sql: str, args: Sequence[Any], table: Table[Any] | None = None
    ) -> Any:
        self.wrote_at = time.monotonic()
        return await super()._run(name, sql, args, table)

    def atomic(self) -> Any:
        self.wrote_at = time.monotonic()
        return super().atomic()

    def ops(self, table: Table[Any]) -> PgTableOps[Any]:
        return PgTableOps(self, table, reader=self._reader)

    def aggregate(self, aggregate: Aggregate[Any]) -> PgAggregateReads[Any]:
        return PgAggregateReads(self._reader, aggregate)

    def reading(self) -> Reading:
        return self._reader.reading()


class ReplicaReader(PoolSession):
    """The read side of a `RoutedSession`: a replica, unless its owner wrote lately."""

    def __init__(
        self,
        pool: Pool,
        obs: Observer,
        replicas: Replicas,
        owner: RoutedSession,
        *,
        declare: bool = False,
        coalescer: Coalescer | None = None,
    ) -> None:
        super().__init__(pool, obs, declare=declare, coalescer=coalescer)
        self._replicas = replicas
        self._owner = owner
        # A batch of coalesced reads goes where its callers' reads go: to the
        # primary when they must read their own writes, else to a replica.
        self._on_primary_route: Route = (
            "primary",
            super()._run,
            functools.partial(held, pool, obs),
        )
        # A replica's reads fall back to the primary one by one: none is held.
        self._on_replica_route: Route = ("replica", self._run, None)

    def route(self) -> Route:
        return self._on_primary_route if self._on_primary() else self._on_replica_route

    def _on_primary(self) -> bool:
        return time.monotonic() - self._owner.wrote_at < self._replicas.max_lag

    async def _run(
        self, name: str, sql: str, args: Sequence[Any], table: Table[Any] | None = None
    ) -> Any:
        if not self._on_primary():
            done, result = await self._replicas.run(name, sql, args)
            if done:
                return result
        return await super()._run(name, sql, args, table)

    def reading(self) -> Reading:
        if self._on_primary():
            return super().reading()

        async def begin() -> Transaction:
            return await self._replicas.begin_read("BEGIN READ ONLY", self._pool)

        return PoolReading(begin, declare=self.declare)

    def __repr__(self) -> str:
        return f"<replicas of {self._pool.where}>"
