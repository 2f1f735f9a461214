"""One statement on a connection: `call` (translated, observed) and `PgRunner`.

`PgRunner` is what every PostgreSQL session offers the table operations and
hand-written SQL: `fetch`, `fetchrow`, `fetchval` and `execute`, each on the
session's connection (a pooled one per call, a unit's own, the caller's),
through its `_run`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import TYPE_CHECKING, Any

import asyncpg

from repo._observe import Observer
from repo._observe import log as sql_log

from .connection import DRIVER_ERRORS, Conn
from .errors import failure

if TYPE_CHECKING:
    from repo._mapping import Table

__all__ = ["DEBUG", "PgRunner", "call", "debug_cached"]

DEBUG = logging.DEBUG
# The logger's own cache of isEnabledFor answers (a dict that logging empties
# whenever a level changes): one lookup instead of a method call per
# statement. Not cached yet (None) leads to Observer.statement, whose
# isEnabledFor fills it.
debug_cached: Callable[[int], bool | None] = getattr(sql_log, "_cache", {}).get


async def call(
    conn: Conn,
    name: str,
    sql: str,
    args: Sequence[Any],
    obs: Observer | None = None,
    *,
    table: Table[Any] | None = None,
) -> Any:
    """``conn.<name>(sql, *args)`` with driver errors translated, observed by `obs`.

    `table`: the mapping the statement is about, whose constraints an
    integrity error names.
    """
    start = perf_counter()
    try:
        result = await getattr(conn, name)(sql, *args)
    except DRIVER_ERRORS as exc:
        if obs is not None:
            obs.statement(name, sql, args, perf_counter() - start, error=exc)
        err = failure(exc, conn, table)
        if err is exc:
            raise
        raise err from err.__cause__
    if obs is not None:
        # The hot path: with no hook, no DEBUG and a fast statement, nothing
        # more than these checks runs.
        elapsed = perf_counter() - start
        if obs.hooks or elapsed >= obs.slow or debug_cached(DEBUG) is not False:
            obs.statement(name, sql, args, elapsed, result=result)
    return result


class PgRunner:
    """Statements on some connection, with errors translated: a session's SQL side."""

    obs: Observer | None = None

    async def _run(
        self, name: str, sql: str, args: Sequence[Any], table: Table[Any] | None = None
    ) -> Any:
        raise NotImplementedError

    async def fetch(
        self, sql: str, args: Sequence[Any], table: Table[Any] | None = None
    ) -> list[asyncpg.Record]:
        result: list[asyncpg.Record] = await self._run("fetch", sql, args, table)
        return result

    async def fetchrow(
        self, sql: str, args: Sequence[Any], table: Table[Any] | None = None
    ) -> asyncpg.Record | None:
        result: asyncpg.Record | None = await self._run("fetchrow", sql, args, table)
        return result

    async def fetchval(self, sql: str, args: Sequence[Any], table: Table[Any] | None = None) -> Any:
        return await self._run("fetchval", sql, args, table)

    async def execute(self, sql: str, args: Sequence[Any], table: Table[Any] | None = None) -> str:
        result: str = await self._run("execute", sql, args, table)
        return result
