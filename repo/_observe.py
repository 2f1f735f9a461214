"""Observability: what the layer does, as records on the ``repo.sql`` logger and as events.

- Each statement repo sends: DEBUG, or WARNING when it took `slow_statement`
  seconds or more.
- Pool events (an acquire that waited, a connection replaced): INFO; a
  connection opened or closed: DEBUG.
- Hooks receive the same as `StatementEvent` and `PoolEvent` values.

Parameter values are never logged unless `log_parameters` is on, and hooks
only ever get their number. The hot path (`call` in ``_pg.py``) checks
`Observer.hooks`, `Observer.slow` and `DEBUG_ON` before anything here runs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any, Literal, TypeAlias

import attrs

__all__ = [
    "EventHook",
    "Observer",
    "PoolEvent",
    "PoolEventKind",
    "StatementEvent",
    "batch_callers",
    "log",
    "row_count",
]

log = logging.getLogger("repo.sql")

# How many callers the statements of this context serve: more than one in
# the task that sends a batch of coalesced lookups (see
# ``_postgres/coalesce.py``), which sets it; 1 everywhere else.
batch_callers: ContextVar[int] = ContextVar("repo_batch_callers", default=1)

# Statements are shown on one line, cut at this many characters.
SQL_MAX = 500

PoolEventKind: TypeAlias = Literal[
    "acquire_wait", "connection_replaced", "connection_opened", "connection_closed"
]


@attrs.frozen
class StatementEvent:
    """A statement repo sent, as a hook receives it.

    - `sql`: the statement's text as sent (for a cursor's fetch, a
      ``FETCH n FROM`` line naming the cursor's query).
    - `duration`: seconds from sending it to its result (or error).
    - `rows`: rows returned or affected, when known: a fetch's length, 0 or 1
      for a single row, the count of a command tag (``UPDATE 3``,
      ``COPY 100000``); None otherwise (``BEGIN``, a single value).
    - `slow`: whether `duration` reached the `slow_statement` threshold.
    - `error`: the driver's exception class name if it failed, else None.
    - `parameters`: how many bind parameters it had; never their values.
    - `callers`: how many calls the statement served: 1, or for a batch of
      coalesced pool-level lookups (``get``, ``get_many``, ``find_one`` on
      the key), the number of calls it answered.
    """

    sql: str
    duration: float
    rows: int | None
    slow: bool
    error: str | None
    parameters: int
    callers: int = 1


@attrs.frozen
class PoolEvent:
    """Something that happened to the pool, as a hook receives it.

    - `kind`: ``"acquire_wait"`` (a caller waited for a connection: the pool
      was exhausted, or a connection had to be opened),
      ``"connection_replaced"`` (repo terminated a connection whose state it
      could not trust; the pool opens a fresh one), ``"connection_opened"``,
      ``"connection_closed"`` (by anyone: asyncpg recycling one after
      `max_queries` or its idle lifetime, the server, or repo).
    - `duration`: seconds waited, for ``"acquire_wait"``; else None.
    - `detail`: why, in words (never a password).
    """

    kind: PoolEventKind
    duration: float | None
    detail: str


EventHook: TypeAlias = Callable[[StatementEvent | PoolEvent], None]


def row_count(name: str, result: Any) -> int | None:
    """The rows a `name` call (``fetch``, ``execute``, ...) returned or affected."""
    if isinstance(result, list):
        return len(result)
    if name == "fetchval":
        # One value, whatever the rows: a count(*) is not a row count.
        return None
    if name == "fetchrow":
        return 0 if result is None else 1
    if isinstance(result, str):
        tail = result.rpartition(" ")[2]
        return int(tail) if tail.isdigit() else None
    if isinstance(result, int) and not isinstance(result, bool):
        return result
    return None


def one_line(sql: str) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= SQL_MAX else text[: SQL_MAX - 3] + "..."


_POOL_MESSAGES: dict[PoolEventKind, str] = {
    "connection_replaced": "replaced a connection",
    "connection_opened": "opened a connection",
    "connection_closed": "a connection closed",
}


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


class Observer:
    """One `Database`'s observability settings, and where its events go."""

    __slots__ = ("_failed_hooks", "hooks", "log_parameters", "slow")

    def __init__(
        self,
        slow_statement: float | None,
        on_event: EventHook | None,
        log_parameters: bool,
    ) -> None:
        self.slow = math.inf if slow_statement is None else float(slow_statement)
        self.hooks: tuple[EventHook, ...] = () if on_event is None else (on_event,)
        self.log_parameters = log_parameters
        self._failed_hooks: set[int] = set()

    def add_hook(self, hook: EventHook) -> None:
        self.hooks = (*self.hooks, hook)

    def remove_hook(self, hook: EventHook) -> None:
        hooks = list(self.hooks)
        if hook not in hooks:
            msg = f"{hook!r} is not an event hook of this Database: add it with add_event_hook"
            raise ValueError(msg)
        hooks.remove(hook)
        self.hooks = tuple(hooks)

    # -- statements -------------------------------------------------------

    def statement(
        self,
        name: str,
        sql: str,
        args: Sequence[Any],
        elapsed: float,
        *,
        result: Any = None,
        error: BaseException | None = None,
    ) -> None:
        """Log and publish one statement, if anyone listens (the hot path checks first)."""
        slow = elapsed >= self.slow
        level = logging.WARNING if slow else logging.DEBUG
        hooks = self.hooks
        logged = log.isEnabledFor(level)
        if not hooks and not logged:
            return
        rows = None if error is not None else row_count(name, result)
        failure = None if error is None else type(error).__name__
        callers = batch_callers.get()
        if logged:
            if failure is not None:
                outcome = f"failed after {_ms(elapsed)}: {failure}"
            elif rows is None:
                outcome = f"took {_ms(elapsed)}"
            else:
                outcome = f"took {_ms(elapsed)}, {rows} row{'' if rows == 1 else 's'}"
            if slow:
                outcome += f" (slow: over {self.slow:g}s)"
            if callers > 1:
                outcome += f" for {callers} coalesced calls"
            if self.log_parameters and args:
                outcome += f"; parameters: {one_line(repr(tuple(args)))}"
            log.log(level, '"%s" %s', one_line(sql), outcome)
        if hooks:
            event = StatementEvent(
                sql=sql,
                duration=elapsed,
                rows=rows,
                slow=slow,
                error=failure,
                parameters=len(args),
                callers=callers,
            )
            self.publish(event)

    # -- pool ---------------------------------------------------------------

    def pool_event(self, kind: PoolEventKind, detail: str, duration: float | None = None) -> None:
        """Log and publish one pool event."""
        quiet = kind in ("connection_opened", "connection_closed")
        level = logging.DEBUG if quiet else logging.INFO
        if log.isEnabledFor(level):
            if duration is None:
                log.log(level, "%s: %s", _POOL_MESSAGES[kind], detail)
            else:
                log.log(level, "waited %s for a connection: %s", _ms(duration), detail)
        if self.hooks:
            self.publish(PoolEvent(kind=kind, duration=duration, detail=detail))

    def publish(self, event: StatementEvent | PoolEvent) -> None:
        for hook in self.hooks:
            try:
                hook(event)
            except Exception:
                # An observer must never break the query it observes. The
                # first failure of each hook is a WARNING with its traceback;
                # repeating it for every statement would drown the log.
                first = id(hook) not in self._failed_hooks
                self._failed_hooks.add(id(hook))
                log.log(
                    logging.WARNING if first else logging.DEBUG,
                    "the event hook %r raised on a %s; ignored (first failure only at WARNING)",
                    hook,
                    type(event).__name__,
                    exc_info=True,
                )
