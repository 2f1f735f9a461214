"""Working through PgBouncer in transaction pooling mode.

In ``pool_mode = transaction`` each transaction (or autocommit statement) may
run on a different server connection, shared with other clients. So with the
switch on:

- no named prepared statement outlives a transaction: asyncpg's statement
  cache is off (``statement_cache_size=0``: unnamed statements, parsed and
  bound in one round trip), and streams use ``DECLARE ... CURSOR`` and
  ``FETCH`` through unnamed statements rather than asyncpg's cursors (which
  prepare a named statement);
- nothing relies on session state: the pool does not send asyncpg's reset
  query on release (it would run on some other client's server connection),
  and only the settings PgBouncer tracks per client may be passed at connect.

With the switch not given, `probe` recognises transaction pooling at connect
time so that `Database.open` refuses it with a clear error rather than giving
wrong results later.
"""

from __future__ import annotations

import itertools
import os
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from repo.errors import ConfigurationError

from .dsn import mask_dsn

__all__ = [
    "ENV_PGBOUNCER",
    "DeclaredCursor",
    "check_settings",
    "declare_cursor",
    "no_reset",
    "pool_options",
    "probe",
    "refuse_transaction_pooling",
    "split_dsn",
    "switch_from_env",
]

ENV_PGBOUNCER = "REPO_PGBOUNCER"

# The startup parameters PgBouncer keeps per client (and re-applies on each
# server connection it lends); anything else is refused by PgBouncer or lost.
TRACKED_SETTINGS = frozenset(
    {"application_name", "client_encoding", "datestyle", "timezone", "standard_conforming_strings"}
)

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _flag(value: str, where: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    msg = f"{where}={value!r} is not a switch: use 1/true/on or 0/false/off"
    raise ConfigurationError(msg)


def switch_from_env() -> bool | None:
    """``$REPO_PGBOUNCER`` as a switch, or None when unset or empty."""
    value = os.environ.get(ENV_PGBOUNCER, "")
    return _flag(value, ENV_PGBOUNCER) if value.strip() else None


def split_dsn(dsn: str) -> tuple[str, bool | None]:
    """`dsn` without its ``pgbouncer=`` query parameter, and that parameter's value.

    asyncpg would send an unknown query parameter to the server as a
    setting, so it is always removed.
    """
    parts = urllib.parse.urlsplit(dsn)
    if not parts.query:
        return dsn, None
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    found: bool | None = None
    kept = []
    for key, value in pairs:
        if key.lower() == "pgbouncer":
            found = _flag(value, "the DSN's pgbouncer")
        else:
            kept.append((key, value))
    if found is None:
        return dsn, None
    query = urllib.parse.urlencode(kept)
    return urllib.parse.urlunsplit(parts._replace(query=query)), found


def check_settings(settings: Mapping[str, str] | None) -> None:
    """Refuse server settings that PgBouncer in transaction mode would not keep."""
    untracked = sorted(k for k in settings or {} if k.lower() not in TRACKED_SETTINGS)
    if untracked:
        msg = (
            f"server_settings {untracked} are session state, which PgBouncer in transaction "
            "mode does not keep per client: set them on the role or database instead "
            "(ALTER ROLE ... SET / ALTER DATABASE ... SET), or use SET LOCAL inside a unit "
            f"of work; only {sorted(TRACKED_SETTINGS)} may be passed with pgbouncer=True"
        )
        raise ConfigurationError(msg)


async def no_reset(conn: Any) -> None:
    """The pool's reset on release: nothing to send (there is no session to reset)."""


def pool_options(
    dsn: str, given: bool | None, options: Mapping[str, Any]
) -> tuple[str, bool | None, dict[str, Any]]:
    """`dsn` without its ``pgbouncer=``, the switch, and the pool options it implies.

    The switch is `given`, else the DSN's parameter, else ``$REPO_PGBOUNCER``;
    None when none of them says.
    """
    dsn, switch = split_dsn(dsn)
    if given is not None:
        switch = given
    elif switch is None:
        switch = switch_from_env()
    if not switch:
        return dsn, switch, dict(options)
    check_settings(options.get("server_settings"))
    return dsn, switch, {**options, "statement_cache_size": 0, "reset": no_reset}


async def refuse_transaction_pooling(dsn: str, options: Mapping[str, Any]) -> None:
    """`ConfigurationError` if `dsn` leads to a transaction pooler (see `probe`)."""
    keys = ("timeout", "server_settings", "command_timeout")
    if await probe(dsn, {k: options[k] for k in keys if k in options}):
        msg = (
            f"{mask_dsn(dsn)} is PgBouncer in transaction pooling mode (server "
            "connections are shared between clients per transaction), where named "
            "prepared statements and cursors collide: pass "
            "Database.connect(..., pgbouncer=True), add ?pgbouncer=true to the DSN, "
            "or set REPO_PGBOUNCER=1"
        )
        raise ConfigurationError(msg)


async def probe(dsn: str, connect_options: Mapping[str, Any]) -> bool:
    """Whether `dsn` leads to a pooler in transaction (or statement) mode.

    Straight to PostgreSQL, the backend PID a connection announces at startup
    is the one that runs its queries. Behind PgBouncer it is not; and in
    transaction mode a second client is lent the server connection the first
    one just used (or the first one moves to another).
    """
    options = dict(connect_options, statement_cache_size=0)
    first = await asyncpg.connect(dsn, **options)
    try:
        backend = await first.fetchval("SELECT pg_backend_pid()")
        if backend == first.get_server_pid():
            return False
        second = await asyncpg.connect(dsn, **options)
        try:
            if await second.fetchval("SELECT pg_backend_pid()") == backend:
                return True
        finally:
            await second.close()
        return bool(await first.fetchval("SELECT pg_backend_pid()") != backend)
    finally:
        await first.close()


_cursor_names = itertools.count(1)


class DeclaredCursor:
    """A ``DECLARE``d cursor, moved with ``FETCH`` and ``MOVE`` through unnamed statements.

    It lives until its transaction ends, on the one server connection that
    transaction holds, so it never meets another client's.
    """

    __slots__ = ("_conn", "_name")

    def __init__(self, conn: Any, name: str) -> None:
        self._conn = conn
        self._name = name

    async def fetch(self, n: int) -> list[asyncpg.Record]:
        if n == 0:
            return []
        rows: list[asyncpg.Record] = await self._conn.fetch(
            f"FETCH FORWARD {int(n)} FROM {self._name}"
        )
        return rows

    async def fetchrow(self) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self._conn.fetchrow(f"FETCH NEXT FROM {self._name}")
        return row

    async def forward(self, n: int) -> int:
        if n == 0:
            return 0
        status: str = await self._conn.execute(f"MOVE FORWARD {int(n)} IN {self._name}")
        tail = status.rpartition(" ")[2]
        return int(tail) if tail.isdigit() else 0


async def declare_cursor(conn: Any, sql: str, args: Sequence[Any]) -> DeclaredCursor:
    """``DECLARE`` a cursor for `sql` (parameters bound as usual) in the open transaction."""
    name = f"repo_cursor_{next(_cursor_names)}"
    # fetch() binds through the extended protocol even without arguments, so
    # that `sql` stays one statement, as with asyncpg's own cursors.
    await conn.fetch(f"DECLARE {name} NO SCROLL CURSOR FOR {sql}", *args)
    return DeclaredCursor(conn, name)
