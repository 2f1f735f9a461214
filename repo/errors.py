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

The PostgreSQL backend translates the server's errors in one place
(``repo/_postgres/errors.py``), by SQLSTATE and constraint name (never by
message text), chained with ``raise ... from``; the in-memory backend raises
the same classes in the same situations.
"""

from __future__ import annotations

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


# What to do about 25P02, said the same way by every backend.
ABORTED_ADVICE = (
    "an earlier statement of this unit of work failed, which aborts its transaction: "
    "put a statement expected to fail inside `async with uow.savepoint():` to keep "
    "the unit usable, or let the error end the unit"
)
