"""repo: a small, typed, fast data-access layer for PostgreSQL on asyncio.

Plain attrs entities mapped by `Table`, `Repository` classes on pooled asyncpg
connections, a `UnitOfWork` owning a transaction and its savepoints.
"""

from importlib.metadata import PackageNotFoundError, version

from ._aggregate import Aggregate
from ._aggregate_repository import AggregateRepository
from ._bulk import UpsertResult
from ._columns import Column, ForeignKey
from ._contract import DatabaseLike
from ._mapping import Table
from ._observe import PoolEvent, StatementEvent
from ._options import Isolation, PoolOptions, TransactionOptions
from ._paging import Page
from ._postgres import Database
from ._query import Op, between, eq, ge, gt, ilike, in_, le, like, lt, ne, not_in
from ._repository import Repository
from ._retry import Backoff, run_in_unit
from ._rules import Check, Index
from ._stream import Cursor, Stream
from ._uow import Savepoint, UnitOfWork, UnitState
from .errors import (
    CheckViolation,
    ConfigurationError,
    ConnectionLost,
    DatabaseError,
    DataError,
    DeadlockDetected,
    ForeignKeyViolation,
    IntegrityError,
    InvalidQuery,
    InvalidState,
    LockNotAvailable,
    NotFound,
    NotNullViolation,
    NotSupportedInMemory,
    OutcomeUnknown,
    PoolTimeout,
    QueryCanceled,
    ReadOnlyViolation,
    RepoError,
    SchemaMismatch,
    SerializationFailure,
    StaleEntity,
    TransactionAborted,
    UniqueViolation,
)

try:
    __version__ = version("repo")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "Aggregate",
    "AggregateRepository",
    "Backoff",
    "Check",
    "CheckViolation",
    "Column",
    "ConfigurationError",
    "ConnectionLost",
    "Cursor",
    "DataError",
    "Database",
    "DatabaseError",
    "DatabaseLike",
    "DeadlockDetected",
    "ForeignKey",
    "ForeignKeyViolation",
    "Index",
    "IntegrityError",
    "InvalidQuery",
    "InvalidState",
    "Isolation",
    "LockNotAvailable",
    "NotFound",
    "NotNullViolation",
    "NotSupportedInMemory",
    "Op",
    "OutcomeUnknown",
    "Page",
    "PoolEvent",
    "PoolOptions",
    "PoolTimeout",
    "QueryCanceled",
    "ReadOnlyViolation",
    "RepoError",
    "Repository",
    "Savepoint",
    "SchemaMismatch",
    "SerializationFailure",
    "StaleEntity",
    "StatementEvent",
    "Stream",
    "Table",
    "TransactionAborted",
    "TransactionOptions",
    "UniqueViolation",
    "UnitOfWork",
    "UnitState",
    "UpsertResult",
    "__version__",
    "between",
    "eq",
    "ge",
    "gt",
    "ilike",
    "in_",
    "le",
    "like",
    "lt",
    "ne",
    "not_in",
    "run_in_unit",
]
