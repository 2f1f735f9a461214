"""The BEGIN statement of a unit of work: isolation, access mode, and its timeouts."""

from __future__ import annotations

from collections.abc import Mapping

from .errors import InvalidQuery

__all__ = ["begin_statement"]

_TIMEOUTS = ("statement_timeout", "lock_timeout")

_ISOLATION = {
    "read_committed": "READ COMMITTED",
    "repeatable_read": "REPEATABLE READ",
    "serializable": "SERIALIZABLE",
    "read_uncommitted": "READ UNCOMMITTED",
}


def _milliseconds(name: str, seconds: object) -> int:
    """`seconds` as whole milliseconds for SET LOCAL; `InvalidQuery` unless a positive number."""
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not 0 < seconds < 2_000_000
    ):
        msg = f"{name} must be a positive number of seconds, got {seconds!r}"
        raise InvalidQuery(msg)
    return max(1, round(seconds * 1000))


def begin_statement(
    isolation: str | None,
    readonly: bool,
    deferrable: bool,
    timeouts: Mapping[str, float | None] | None = None,
) -> str:
    """The BEGIN for a unit of work's options; `InvalidQuery` for an unknown isolation.

    `timeouts` (``statement_timeout``, ``lock_timeout``, in seconds) follow
    as ``SET LOCAL``s in the same round trip, so they end with the transaction.
    """
    parts = ["BEGIN"]
    if isolation is not None:
        level = _ISOLATION.get(isolation.lower().replace(" ", "_"))
        if level is None:
            msg = f"unknown isolation {isolation!r}: use one of {', '.join(_ISOLATION)}"
            raise InvalidQuery(msg)
        parts.append(f"ISOLATION LEVEL {level}")
    if readonly:
        parts.append("READ ONLY")
    if deferrable:
        parts.append("DEFERRABLE")
    statement = " ".join(parts)
    for name, seconds in (timeouts or {}).items():
        if name not in _TIMEOUTS:
            msg = f"unknown timeout {name!r}: use {' or '.join(_TIMEOUTS)}"
            raise InvalidQuery(msg)
        if seconds is not None:
            statement += f"; SET LOCAL {name} = {_milliseconds(name, seconds)}"
    return statement
