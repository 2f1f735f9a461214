"""`Database`: a pool of connections to one PostgreSQL database, and what runs on it.

It opens the pool (resolving the DSN, the PgBouncer switch, the replicas and
the schema check), hands out repositories whose calls each take a pooled
connection, and unit sessions that hold one for a transaction.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack

import asyncpg

from repo._aggregate_repository import AggregateRepository
from repo._observe import EventHook, Observer
from repo._options import PoolOptions, PoolSettings, TransactionOptions
from repo._repository import Repository
from repo._revisions import check_revision, script_revisions
from repo.errors import ConfigurationError, ConnectionLost, InvalidState

from .bouncer import pool_options, refuse_transaction_pooling
from .coalesce import Coalescer
from .codecs import prepare_connection
from .connection import Conn, RepoConnection, mark_raw, reset_on_release
from .dsn import ENV_DSN, mask_dsn, resolve_dsn, scrub, validate_dsn
from .errors import translate
from .pool import Connector, Pool
from .replicas import Replicas, RoutedSession
from .sessions import ConnectionSession, PoolSession, SessionBase, UnitSession

__all__ = ["Database"]

log = logging.getLogger("repo")

# Unbounded, as in `DatabaseLike`: a class that is not a Repository is refused at run time.
R = TypeVar("R")


class Database:
    """A pool of connections to one PostgreSQL database.

    Make one with `Database.connect`, either as ``async with`` or with
    ``await`` and later `close()`.
    """

    def __init__(self, dsn: str | None, options: PoolOptions) -> None:
        if dsn is not None:
            validate_dsn(dsn)
        for replica in options.replicas:
            validate_dsn(replica)
        self.options = options
        self._dsn = dsn
        self._connector = Connector()
        self.pgbouncer = bool(options.pgbouncer)
        self.observer = Observer(options.slow_statement, options.on_event, options.log_parameters)
        self._replicas: Replicas | None = None
        self._coalescer = Coalescer(options.coalesce_max) if options.coalesce else None
        # Made now, so that repositories and units of work can be made
        # before the Database opens; it takes connections once open.
        self._connections = Pool(
            None,
            max_size=options.max_size,
            acquire_timeout=float(options.acquire_timeout),
            obs=self.observer,
            where=self.dsn,
        )
        self._closed = False

    @classmethod
    def connect(cls, dsn: str | None = None, **options: Unpack[PoolSettings]) -> Self:
        """A pool on `dsn`: ``async with Database.connect() as db`` or ``db = await ...``.

        The DSN is `dsn`, else ``$DATABASE_URL``, else the embedded server.
        The options (`min_size`, `max_size`, `acquire_timeout`, ...) are
        `PoolOptions`' fields, each documented there; an unknown one, or a
        bad value, is a `ConfigurationError` at once.
        """
        return cls(dsn, PoolOptions.of(options))

    # -- the options, as attributes -------------------------------------

    @property
    def min_size(self) -> int:
        return self.options.min_size

    @property
    def max_size(self) -> int:
        return self.options.max_size

    @property
    def acquire_timeout(self) -> float:
        return float(self.options.acquire_timeout)

    @property
    def max_replica_lag(self) -> float:
        return float(self.options.max_replica_lag)

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
        if self._connections.attached:
            return self
        options = self.options
        # Before any connection: a Database started outside its project must
        # fail for that reason, not for what an unrelated database holds.
        scripts = script_revisions(options.migrations) if options.require_head else None
        if self._dsn is None:
            if os.environ.get(ENV_DSN):
                self._dsn = resolve_dsn()
            else:
                version = options.embedded_version
                self._dsn = await asyncio.to_thread(resolve_dsn, embedded_version=version)
        driver = {
            "min_size": options.min_size,
            "max_size": options.max_size,
            "max_queries": options.max_queries,
            "max_inactive_connection_lifetime": options.max_inactive_connection_lifetime,
            "statement_cache_size": options.statement_cache_size,
            "command_timeout": options.command_timeout,
            "timeout": options.connect_timeout,
            "server_settings": dict(options.server_settings) if options.server_settings else None,
            # Released connections are reset only as far as their use requires.
            "connection_class": RepoConnection,
            "reset": reset_on_release,
            # Connects that a cancelled acquire abandons finish out of sight.
            "connect": self._connector,
        }
        dsn, switch, driver = pool_options(self._dsn, options.pgbouncer, driver)
        self._dsn = dsn
        self.pgbouncer = bool(switch)
        pool = await self._create_pool(dsn, switch, driver)
        self._connections.attach(pool, mask_dsn(dsn))
        log.info("connected pool to %s (size %d..%d)", mask_dsn(dsn), self.min_size, self.max_size)
        if options.replicas:
            await self._open_replicas(driver)
        if scripts is not None:
            try:
                await self._check_head(*scripts)
            except BaseException:
                await self.close()
                raise
        return self

    async def _create_pool(
        self, dsn: str, switch: bool | None, driver: dict[str, Any]
    ) -> asyncpg.Pool:
        try:
            if switch is None:
                await refuse_transaction_pooling(dsn, driver)
            pool: asyncpg.Pool = await asyncpg.create_pool(dsn, init=self._init, **driver)
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
        return pool

    async def _open_replicas(self, driver: dict[str, Any]) -> None:
        options = self.options
        replicas = Replicas(
            options.max_replica_lag,
            options.replica_check_interval,
            self.acquire_timeout,
            self.observer,
        )
        self._replicas = replicas
        try:
            init = functools.partial(self._init, replica=True)
            await replicas.open(options.replicas, {**driver, "init": init}, self.pool)
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
            self._connections.opened += 1
        # asyncpg calls this for every connection that closes, which is how
        # its own replacements (max_queries, idle lifetime) are seen.
        conn.add_termination_listener(lambda _: self._closed_connection(where))
        self.observer.pool_event("connection_opened", where)
        init = self.options.init
        await prepare_connection(conn, json=self.options.json_codecs, init=init)
        if init is not None:
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
        connections = self._connections
        if connections.attached:
            # The pool stays reachable while it closes, so that the units of
            # work it waits for can still give their connections back.
            try:
                await connections.pool.close()
            finally:
                connections.attach(None)
                await self._connector.aclose()
            log.info("closed pool to %s", self.dsn)
        else:
            connections.attach(None)

    @property
    def pool(self) -> asyncpg.Pool:
        """The underlying ``asyncpg.Pool``."""
        return self.connections.pool

    @property
    def connections(self) -> Pool:
        """The pool as repo takes connections from it (it raises `InvalidState` unless open)."""
        return self._connections

    @property
    def dsn(self) -> str:
        """The DSN in use, with the password masked."""
        return mask_dsn(self._dsn) if self._dsn else "<not resolved yet>"

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._connections.attached else "not open")
        return f"<Database {self.dsn} {state} size={self.min_size}..{self.max_size}>"

    # -- connections, repositories and units of work ---------------------

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Conn]:
        """A raw pooled ``asyncpg.Connection`` for anything else (``async with``).

        It goes back to the pool, fully reset, when the block ends.
        """
        connections = self.connections
        conn = await connections.take()
        mark_raw(conn)
        try:
            yield conn
        finally:
            # Shielded so that a cancelled task still returns its connection.
            await asyncio.shield(connections.give_back(conn))

    def repository(self, cls: type[R], *, connection: Any = None) -> R:
        """A `cls` whose every call runs on its own pooled connection (autocommit).

        Independent calls issued together with ``asyncio.gather`` run
        concurrently, each on a connection of its own. With `connection` (a
        raw asyncpg connection you manage, e.g. from `acquire`), every call
        runs on that connection instead, inside whatever transaction you
        opened on it.
        """
        candidate: object = cls
        if not (
            isinstance(candidate, type) and issubclass(candidate, (Repository, AggregateRepository))
        ):
            msg = f"repository() takes a Repository or AggregateRepository subclass, got {cls!r}"
            raise InvalidState(msg)
        session: SessionBase
        if connection is not None:
            session = ConnectionSession(connection, declare=self.pgbouncer, obs=self.observer)
        elif self._replicas is not None:
            session = RoutedSession(
                self.connections,
                self.observer,
                self._replicas,
                declare=self.pgbouncer,
                coalescer=self._coalescer,
            )
        else:
            session = PoolSession(
                self.connections, self.observer, declare=self.pgbouncer, coalescer=self._coalescer
            )
        return session.repository(cls)

    def unit_session(self, options: TransactionOptions) -> UnitSession:
        """The session of one unit of work (its transaction begins at `UnitSession.begin`)."""
        replicas = self._replicas
        begin_read = None
        if replicas is not None:
            primary = self.connections

            async def begin_read(statement: str, raw: bool) -> Any:
                return await replicas.begin_read(statement, primary, raw=raw)

        return UnitSession(
            self.connections,
            self.observer,
            options,
            declare=self.pgbouncer,
            begin_read=begin_read,
        )
