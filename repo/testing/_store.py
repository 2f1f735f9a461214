"""The in-memory store: committed rows, sequences, and transactions over them.

A `Transaction` sees the committed rows overlaid with its own writes (READ
COMMITTED: each statement sees what was committed before it ran). Its writes
are kept apart until commit, in an undo log that savepoints and failed
statements roll back to. As in PostgreSQL, a statement that fails aborts
the transaction until it is rolled back (or rolled back to a savepoint), and
sequences are not transactional: a rolled-back insert still used its key.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from repo._mapping import Table
from repo._outcome import aborted_at_commit
from repo.errors import (
    ABORTED_ADVICE,
    InvalidState,
    NotFound,
    ReadOnlyViolation,
    SerializationFailure,
    StaleEntity,
    TransactionAborted,
)

from ._collation import CODE_POINT, Collation

__all__ = ["Row", "Store", "Transaction", "TxState"]

Row = tuple[Any, ...]
_MISSING: Any = object()
_ids = itertools.count(1)


class Store:
    """What a `MemoryDatabase` holds: the mappings it met, committed rows, sequences."""

    def __init__(self, collation: Collation = CODE_POINT) -> None:
        # How text orders: the database's collation, read by every statement.
        self.collation = collation
        self.tables: dict[str, Table[Any]] = {}
        self.rows: dict[str, dict[Any, Row]] = {}
        self.sequences: dict[tuple[str, str], int] = {}
        # Rows written by a transaction still open: (table, key) -> its id.
        self.locks: dict[tuple[str, Any], int] = {}
        # Commits so far, and the commit that last changed each row.
        self.commits = 0
        self.changed: dict[tuple[str, Any], int] = {}

    def register(self, table: Table[Any]) -> None:
        """Learn a mapping (its constraints), the first time a repository uses it."""
        known = self.tables.get(table.name)
        if known is None:
            self.tables[table.name] = table
            self.rows[table.name] = {}
        elif known is not table and known.field_names != table.field_names:
            msg = (
                f"two mappings named {table.name!r} with different fields use one "
                "MemoryDatabase: give each table its own name"
            )
            raise InvalidState(msg)

    def next_value(self, table: str, field: str) -> int:
        """nextval() of the identity of `table.field`; never given back."""
        value = self.sequences.get((table, field), 0) + 1
        self.sequences[(table, field)] = value
        return value


class TxState(enum.Enum):
    ACTIVE = "active"
    ABORTED = "aborted"
    ENDED = "ended"


# Errors a caller sees without the statement having failed on the server:
# they leave the transaction usable, as they do on PostgreSQL.
_CLIENT_SIDE = (NotFound, StaleEntity)


class Transaction:
    """One transaction on a `Store`: its writes, undo log, savepoints and state."""

    def __init__(self, store: Store, *, readonly: bool = False, snapshot: bool = False) -> None:
        self.store = store
        self.readonly = readonly
        # REPEATABLE READ and SERIALIZABLE read one snapshot, taken at the
        # first statement (as PostgreSQL does), instead of the latest commits.
        self._repeatable = snapshot
        self._snapshot: dict[str, dict[Any, Row]] | None = None
        self._seen = 0
        self.id = next(_ids)
        self.state = TxState.ACTIVE
        self.now = dt.datetime.now(dt.UTC)
        self.writes: dict[str, dict[Any, Row | None]] = {}
        self._undo: list[tuple[str, Any, Any]] = []
        self._savepoints: dict[str, int] = {}
        # The failure that aborted the transaction, for its COMMIT to name.
        self.failure: BaseException | None = None

    # -- reading ----------------------------------------------------------

    def _base(self, table: str) -> dict[Any, Row]:
        if self._snapshot is None:
            return self.store.rows[table]
        return self._snapshot.get(table, {})

    def get(self, table: str, key: Any) -> Row | None:
        mine = self.writes.get(table)
        if mine is not None and key in mine:
            return mine[key]
        return self._base(table).get(key)

    def rows(self, table: str) -> Iterator[tuple[Any, Row]]:
        """Every visible (key, row) of `table`: committed rows, then this one's new ones."""
        mine = self.writes.get(table, {})
        for key, row in self._base(table).items():
            if key in mine:
                continue
            yield key, row
        for key, new in mine.items():
            if new is not None:
                yield key, new

    # -- writing ----------------------------------------------------------

    def put(self, table: str, key: Any, row: Row | None) -> None:
        """Write (or with `None` delete) the row with `key`, undoably."""
        owner = self.store.locks.get((table, key))
        if owner is not None and owner != self.id:
            msg = (
                f"{table} {key!r} was written by another unit of work that is still open: "
                "PostgreSQL would wait for it, MemoryDatabase cannot; finish that unit first"
            )
            raise SerializationFailure(msg)
        if (
            self._snapshot is not None
            and self.store.changed.get((table, key), 0) > self._seen
            and key in self._base(table)
        ):
            msg = (
                f"could not serialize access due to concurrent update of {table} {key!r}: "
                "retry the unit of work"
            )
            raise SerializationFailure(msg)
        mine = self.writes.setdefault(table, {})
        self._undo.append((table, key, mine.get(key, _MISSING)))
        mine[key] = row
        self.store.locks[(table, key)] = self.id

    def _undo_to(self, mark: int) -> None:
        while len(self._undo) > mark:
            table, key, previous = self._undo.pop()
            mine = self.writes[table]
            if previous is _MISSING:
                del mine[key]
                self.store.locks.pop((table, key), None)
            else:
                mine[key] = previous

    @contextmanager
    def statement(self, *, write: bool) -> Iterator[Transaction]:
        """One statement: all or nothing; a failure aborts the transaction."""
        self._require_active()
        if self._repeatable and self._snapshot is None:
            self._snapshot = {name: dict(rows) for name, rows in self.store.rows.items()}
            self._seen = self.store.commits
        mark = len(self._undo)
        try:
            if write and self.readonly:
                msg = "cannot write in a read-only unit of work (readonly=True)"
                raise ReadOnlyViolation(msg)
            yield self
        except _CLIENT_SIDE:
            raise
        except BaseException as exc:
            self._undo_to(mark)
            self.state = TxState.ABORTED
            self.failure = exc
            raise

    def _require_active(self) -> None:
        if self.state is TxState.ABORTED:
            msg = (
                "current transaction is aborted, commands ignored until end of transaction "
                f"block: {ABORTED_ADVICE}"
            )
            raise TransactionAborted(msg)
        if self.state is TxState.ENDED:
            msg = "the transaction has ended"
            raise InvalidState(msg)

    # -- savepoints and the end -------------------------------------------

    def savepoint(self, name: str) -> None:
        self._require_active()
        self._savepoints[name] = len(self._undo)

    def release(self, name: str) -> None:
        self._require_active()
        self._savepoints.pop(name, None)

    def rollback_to(self, name: str) -> None:
        if self.state is TxState.ENDED or name not in self._savepoints:
            msg = f"savepoint {name!r} does not exist"
            raise InvalidState(msg)
        self._undo_to(self._savepoints.pop(name))
        self.state = TxState.ACTIVE
        self.failure = None

    def commit(self) -> None:
        """Make the writes visible to everyone; an aborted transaction rolls back instead,
        and raises `TransactionAborted` chained to the failure that aborted it.

        (PostgreSQL answers COMMIT in an aborted transaction with ROLLBACK.)
        """
        if self.state is TxState.ABORTED:
            first = self.failure
            self.rollback()
            raise aborted_at_commit(first) from first
        if self.state is TxState.ACTIVE and self.writes:
            store = self.store
            store.commits += 1
            for table, written in self.writes.items():
                committed = store.rows[table]
                for key, row in written.items():
                    store.changed[(table, key)] = store.commits
                    if row is None:
                        committed.pop(key, None)
                    else:
                        committed[key] = row
        self.rollback()

    def rollback(self) -> None:
        locks = self.store.locks
        for table, written in self.writes.items():
            for key in written:
                if locks.get((table, key)) == self.id:
                    del locks[(table, key)]
        self.writes = {}
        self._undo.clear()
        self._savepoints.clear()
        self.state = TxState.ENDED
