"""The errors `repo` raises, all under `RepoError`.

```
RepoError
├── NotFound (LookupError)                 get/update/delete of a missing key
├── IntegrityError                         the database refused the data
│   ├── UniqueViolation                    23505
│   ├── ForeignKeyViolation                23503
│   ├── CheckViolation                     23514
│   └── NotNullViolation                   23502
├── StaleEntity                            optimistic lock: someone else updated first
├── SerializationFailure                   40001: retry the whole unit of work
│   └── DeadlockDetected                   40P01: retry the whole unit of work
├── QueryCanceled                          57014: statement_timeout or a cancel request
├── LockNotAvailable                       55P03: lock_timeout
├── ReadOnlyViolation                      25006: a write in a read-only unit of work
├── TransactionAborted                     25P02: an earlier statement failed; roll back
├── DataError (ValueError)                 22xxx, 21000: a value the column cannot hold
├── ConnectionLost (ConnectionError)       the server or the network went away
│   └── OutcomeUnknown                     ... during COMMIT: it may or may not have committed
├── PoolTimeout (TimeoutError)             no pooled connection within acquire_timeout
├── ConfigurationError (ValueError)        a bad DSN or option
├── SchemaMismatch                         the database's schema is not the code's
├── InvalidQuery (ValueError)              refused before any SQL was sent
├── InvalidState (RuntimeError)            a unit of work used outside its life
├── NotSupportedInMemory (NotImplementedError)
└── DatabaseError                          any other server error, with its SQLSTATE
```

Server errors are translated in one place, `translate()`, by SQLSTATE and
constraint name (never by message text), and chained with ``raise ... from``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import asyncpg

__all__ = [
    "CheckViolation",
    "ConfigurationError",
    "ConnectionLost",
    "DataError",
    "DatabaseError",
    "DeadlockDetected",
    "ForeignKeyViolation",
    "IntegrityError",
    "InvalidQuery",
    "InvalidState",
    "LockNotAvailable",
    "NotFound",
    "NotNullViolation",
    "NotSupportedInMemory",
    "OutcomeUnknown",
    "PoolTimeout",
    "QueryCanceled",
    "ReadOnlyViolation",
    "RepoError",
    "SchemaMismatch",
    "SerializationFailure",
    "StaleEntity",
    "TransactionAborted",
    "UniqueViolation",
    "translate",
]


class RepoError(Exception):
    """The root of every error `repo` raises."""

    sqlstate: str | None = None


class NotFound(RepoError, LookupError):
    """No row has the key that was asked for."""

    def __init__(self, message: str, *, table: str | None = None, key: object = None) -> None:
        super().__init__(message)
        self.table = table
        self.key = key


class IntegrityError(RepoError):
    """The database refused the data: a constraint was violated.

    `table`, `constraint` and `columns` say which; `columns` comes from the
    mapping that declared the constraint (or, for NOT NULL, from the server).
    """

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        constraint: str | None = None,
        columns: tuple[str, ...] = (),
        sqlstate: str | None = None,
    ) -> None:
        super().__init__(message)
        self.table = table
        self.constraint = constraint
        self.columns = columns
        if sqlstate is not None:
            self.sqlstate = sqlstate


class UniqueViolation(IntegrityError):
    """A unique or primary-key constraint was violated (SQLSTATE 23505)."""

    sqlstate = "23505"


class ForeignKeyViolation(IntegrityError):
    """A foreign key points at nothing, or a row still referenced was deleted (23503)."""

    sqlstate = "23503"


class CheckViolation(IntegrityError):
    """A CHECK constraint was violated (SQLSTATE 23514)."""

    sqlstate = "23514"


class NotNullViolation(IntegrityError):
    """NULL was given for a NOT NULL column (SQLSTATE 23502)."""

    sqlstate = "23502"


class StaleEntity(RepoError):
    """An optimistic-lock update found a newer version: reload and try again."""


class SerializationFailure(RepoError):
    """The transaction conflicted with a concurrent one (40001); retrying it may succeed."""

    sqlstate = "40001"


class DeadlockDetected(SerializationFailure):
    """The server broke a deadlock by aborting this transaction (40P01); retry it."""

    sqlstate = "40P01"


class QueryCanceled(RepoError):
    """The statement was canceled: `statement_timeout` or a cancel request (57014)."""

    sqlstate = "57014"


class LockNotAvailable(RepoError):
    """A lock could not be taken within `lock_timeout` (55P03)."""

    sqlstate = "55P03"


class ReadOnlyViolation(RepoError):
    """A write was attempted in a read-only unit of work (25006)."""

    sqlstate = "25006"


class TransactionAborted(RepoError):
    """A statement failed earlier in this transaction (25P02): nothing runs until it is undone.

    Raised by every statement after the failure, and by the COMMIT of such a
    unit of work, which the server answers by rolling it back (then the
    error is chained to the first failure). Catch a failure you expect
    inside ``async with uow.savepoint():`` to keep the unit usable, or let
    the unit roll back and start a new one.
    """

    sqlstate = "25P02"


class DataError(RepoError, ValueError):
    """A value the column cannot hold: out of range, bad encoding, bad format (22xxx)."""


class ConnectionLost(RepoError, ConnectionError):
    """The connection to the server broke; work not committed is lost."""


class OutcomeUnknown(ConnectionLost):
    """The connection broke while COMMIT was in flight: the unit may or may not have committed.

    The server may have committed just before the connection went, or not.
    `run_in_unit` never runs such a unit again; check whether its work is
    stored before doing it again.
    """


class PoolTimeout(RepoError, TimeoutError):
    """No pooled connection became free within the acquire timeout."""


class ConfigurationError(RepoError, ValueError):
    """A DSN or option that cannot work."""


class SchemaMismatch(RepoError):
    """The database's schema is not the one the code expects.

    Raised when `Database.connect(require_head=True)` finds the database at
    another revision than the migrations' head (`current` and `head` say
    which), and by ``repo db check`` when the mappings and the migrated
    schema disagree.
    """

    def __init__(
        self, message: str, *, current: tuple[str, ...] = (), head: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.current = current
        self.head = head


class InvalidQuery(RepoError, ValueError):
    """A query refused before any SQL was sent: unknown field, operator or bad argument."""


class InvalidState(RepoError, RuntimeError):
    """An object used outside its life, e.g. a unit of work after it ended."""


class NotSupportedInMemory(RepoError, NotImplementedError):
    """A repository method written in hand SQL has no in-memory override."""


class DatabaseError(RepoError):
    """Any other error the server reported; `sqlstate` says which."""

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


# Constraint name -> (table, columns), filled by every `Table` that declares
# constraints, so that a server error names the columns without reading the
# message text.
CONSTRAINTS: dict[str, tuple[str, tuple[str, ...]]] = {}

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
_ABORTED_ADVICE = (
    "an earlier statement of this unit of work failed, which aborts its transaction: "
    "put a statement expected to fail inside `async with uow.savepoint():` to keep "
    "the unit usable, or let the error end the unit"
)

_ADVICE: Mapping[str, str] = {
    "25P02": f": {_ABORTED_ADVICE}",
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
        ": a lock was not granted within the unit's lock_timeout; "
        "retry later, or raise lock_timeout"
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


def _integrity(exc: asyncpg.PostgresError, cls: type[IntegrityError]) -> IntegrityError:
    table = getattr(exc, "table_name", None)
    constraint = getattr(exc, "constraint_name", None)
    columns: tuple[str, ...] = ()
    if constraint and constraint in CONSTRAINTS:
        table_, columns = CONSTRAINTS[constraint]
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
    exc: BaseException, *, context: str | None = None, closed: bool = False
) -> BaseException:
    """Return the `RepoError` for a driver error, or `exc` itself if it is not one.

    Keyed by SQLSTATE (and, for integrity errors, the constraint name); the
    caller raises the result ``from exc``. `closed` says the connection the
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
            return _integrity(exc, _INTEGRITY[state])
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
