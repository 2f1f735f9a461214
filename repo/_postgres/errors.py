"""The server's errors as `RepoError`s: by SQLSTATE and constraint name, never message text."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import asyncpg

from repo.errors import (
    ABORTED_ADVICE,
    CheckViolation,
    ConnectionLost,
    DatabaseError,
    DataError,
    DeadlockDetected,
    ForeignKeyViolation,
    IntegrityError,
    LockNotAvailable,
    NotNullViolation,
    QueryCanceled,
    ReadOnlyViolation,
    RepoError,
    SerializationFailure,
    TransactionAborted,
    UniqueViolation,
)

from .connection import gone

if TYPE_CHECKING:
    from repo._mapping import Table

__all__ = ["failure", "translate"]

_INTEGRITY: Mapping[str, type[IntegrityError]] = {
    "23505": UniqueViolation,
    "23503": ForeignKeyViolation,
    "23514": CheckViolation,
    "23502": NotNullViolation,
}

_SIMPLE: Mapping[str, type[RepoError]] = {
    "40001": SerializationFailure,
    "40P01": DeadlockDetected,
    "57014": QueryCanceled,
    "55P03": LockNotAvailable,
    "25006": ReadOnlyViolation,
    "25P02": TransactionAborted,
}

# What to do about an aborted transaction: the same words on every backend.

_ADVICE: Mapping[str, str] = {
    "25P02": f": {ABORTED_ADVICE}",
    "25006": (
        ": this unit of work is read-only (readonly=True, perhaps on a read replica); "
        "write in a unit of work without readonly=True"
    ),
    "40001": ": retry the whole unit of work (run_in_unit does)",
    "40P01": ": retry the whole unit of work (run_in_unit does)",
    "57014": (
        ": the statement ran past the unit's statement_timeout (or was cancelled); "
        "raise the timeout or make the query cheaper"
    ),
    "55P03": (
        ": another transaction holds the lock (nowait=True refuses to wait, and "
        "lock_timeout bounds a wait); retry later, pass over such rows with "
        "skip_locked=True, or raise lock_timeout"
    ),
    # undefined_table: most often a database the migrations have not reached yet.
    "42P01": (
        ": if the schema has not been created on this database yet, run "
        "`repo db upgrade` (it migrates the database Database.connect() picks)"
    ),
}

# SQLSTATE classes and codes that mean the session is gone.
_LOST_CLASSES = ("08",)
_LOST_CODES = frozenset({"57P01", "57P02", "57P03", "57P05"})


def _server_text(exc: asyncpg.PostgresError) -> str:
    """The server's message with its CONTEXT (e.g. the COPY line) and HINT, if any."""
    text = str(exc.args[0]) if exc.args else str(exc)
    context = getattr(exc, "context", None)
    if context:
        text += f" [{context}]"
    hint = getattr(exc, "hint", None)
    if hint:
        text += f" (hint: {hint})"
    return text


def _integrity(
    exc: asyncpg.PostgresError, cls: type[IntegrityError], mapping: Table[Any] | None
) -> IntegrityError:
    table = getattr(exc, "table_name", None)
    constraint = getattr(exc, "constraint_name", None)
    columns: tuple[str, ...] = ()
    found = mapping.constraint(constraint) if mapping is not None and constraint else None
    if found is not None:
        table_, columns = found
        table = table or table_
    column = getattr(exc, "column_name", None)
    if not columns and column:
        columns = (column,)
    detail = getattr(exc, "detail", None)
    context = getattr(exc, "context", None)
    if context:
        detail = f"{detail}; {context}" if detail else context
    what = f"constraint {constraint!r}" if constraint else "a constraint"
    on = f" on {table!r}" if table else ""
    cols = f" (columns: {', '.join(columns)})" if columns else ""
    msg = f"{cls.__name__}: {what}{on}{cols} violated: {exc.args[0] if exc.args else ''}"
    if detail:
        msg += f" [{detail}]"
    return cls(msg, table=table, constraint=constraint, columns=columns)


def translate(
    exc: BaseException,
    *,
    context: str | None = None,
    closed: bool = False,
    table: Table[Any] | None = None,
) -> BaseException:
    """Return the `RepoError` for a driver error, or `exc` itself if it is not one.

    Keyed by SQLSTATE (and, for integrity errors, the constraint name, whose
    columns `table`, the mapping the statement was about, knows); the caller
    raises the result ``from exc``. `closed` says the connection the
    error came from is closed, which turns a driver's interface or internal
    error into `ConnectionLost`; raised on a connection still open, the
    driver's internal error is a `DataError` (a codec, an encoding): the
    session is fine, and is kept.
    """
    if isinstance(exc, RepoError):
        return exc
    where = f" ({context})" if context else ""
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", None) or ""
        if state in _INTEGRITY:
            return _integrity(exc, _INTEGRITY[state], table)
        text = _server_text(exc)
        err: RepoError
        if state in _SIMPLE:
            err = _SIMPLE[state](f"{text}{where}{_ADVICE.get(state, '')}")
        elif state.startswith(_LOST_CLASSES) or state in _LOST_CODES:
            err = ConnectionLost(f"the connection to the server was lost: {text}{where}")
        elif state.startswith("22") or state == "21000":
            err = DataError(f"{text}{where}")
        else:
            advice = _ADVICE.get(state, "")
            return DatabaseError(f"{text}{where}{advice}", sqlstate=state or None)
        err.sqlstate = state
        return err
    if isinstance(
        exc,
        asyncpg.exceptions.ConnectionDoesNotExistError
        # No host of a multi-host DSN matches target_session_attrs (for a
        # moment in a failover, every node is a standby): the server is away.
        | asyncpg.exceptions.TargetServerAttributeNotMatched
        | ConnectionError
        | OSError,
    ) or (
        closed
        and isinstance(
            exc,
            asyncpg.InterfaceError | asyncpg.exceptions.InternalClientError | asyncio.TimeoutError,
        )
    ):
        return ConnectionLost(f"the connection to the server was lost: {exc}{where}")
    if isinstance(exc, asyncpg.exceptions.DataError):
        return DataError(f"{exc}{where}")
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        # Raised on the client with the connection still open, e.g. a codec
        # COPY cannot use: the session is intact, the data is what failed.
        return DataError(
            f"the driver could not send the data: {exc}{where}; if a codec is named, "
            "COPY needs it in the binary format (set_type_codec(..., format='binary'))"
        )
    return exc


def failure(exc: BaseException, conn: Any, table: Table[Any] | None = None) -> BaseException:
    """The error to raise for `exc`, a driver error a statement on `conn` raised.

    Raise it ``from`` its ``__cause__``, set here.

    On a connection the server closed, asyncpg refuses the next statement
    with an error about its own state (the pool proxy says the connection
    "has been released back to the pool"): what happened is said instead.
    An internal client error on a connection still open is one the driver
    raised before sending anything (a value no codec encodes): the
    connection is fine, and it is a `DataError`.
    """
    closed = gone(conn)
    if (
        closed
        and isinstance(exc, asyncpg.InterfaceError | asyncpg.exceptions.InternalClientError)
        and not isinstance(exc, asyncpg.exceptions.ConnectionDoesNotExistError)
    ):
        # Not chained: the driver's words describe its pool proxy, not what
        # happened to the connection.
        return ConnectionLost(
            "the connection to the server was lost: the server closed it (it was "
            "terminated, or the server restarted or went away) before the statement was sent"
        )
    err: BaseException
    if not closed and isinstance(exc, asyncpg.exceptions.InternalClientError):
        err = DataError(f"the driver could not send a value: {exc}")
    else:
        err = translate(exc, closed=closed, table=table)
    if err is not exc:
        err.__cause__ = exc
    return err
