"""The in-memory store: committed rows, sequences, and transactions over them.

A `Transaction` sees the committed rows overlaid with its own writes (READ
COMMITTED: each statement sees what was committed before it ran). Its writes
are kept apart until commit, in an undo log that savepoints and failed
statements roll back to. As in PostgreSQL, a statement that fails aborts
the transaction until it is rolled back (or rolled back to a savepoint), and
sequences are not transactional: a rolled-back insert still used its key.

Lookups by the values of some columns (unique checks, foreign keys, keys
found by a filter) go through hash indexes (`_indexes.Index`): the store
keeps one per (table, columns) over the committed rows, updated at commit;
a transaction keeps its own over the rows it wrote, updated on every write
and every undo, so savepoints and failed statements leave it consistent.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
from collections.abc import Callable, Iterator
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
from ._defaults import Default, column_defaults
from ._indexes import Index
from ._locks import LockUndo, RowLocks

__all__ = ["Row", "Store", "Transaction", "TxState"]

Row = tuple[Any, ...]
_MISSING: Any = object()
_ids = itertools.count(1)
# Where a key took its place in a dict of rows (their scan order): see `lookup`.
_places = itertools.count()


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
        # FOR UPDATE / FOR SHARE locks, and the units waiting on them.
        self.row_locks = RowLocks()
        # Commits so far, and the commit that last changed each row.
        self.commits = 0
        self.changed: dict[tuple[str, Any], int] = {}
        # The server defaults each table's columns may need, compiled at first use.
        self.defaults: dict[str, dict[int, Default]] = {}
        self.indexes: dict[str, dict[tuple[int, ...], Index]] = {}
        self.places: dict[str, dict[Any, int]] = {}

    def register(self, table: Table[Any]) -> None:
        """Learn a mapping (its constraints), the first time a repository uses it.

        A server default the fake cannot evaluate is refused here, before
        any statement, with `NotSupportedInMemory`.
        """
        known = self.tables.get(table.name)
        if known is None:
            self.defaults[table.name] = column_defaults(table)
            self.tables[table.name] = table
            self.rows[table.name] = {}
            self.indexes[table.name] = {}
            self.places[table.name] = {}
        elif known is not table and known.field_names != table.field_names:
            msg = (
                f"two mappings named {table.name!r} with different fields use one "
                "MemoryDatabase: give each table its own name"
            )
            raise InvalidState(msg)

    def index(self, table: str, positions: tuple[int, ...]) -> Index:
        """The index of the committed rows of `table` on `positions` (made on first use)."""
        by_positions = self.indexes[table]
        found = by_positions.get(positions)
        if found is None:
            found = by_positions[positions] = Index(positions, self.rows[table].items())
        return found

    def _write(self, table: str, key: Any, row: Row | None) -> None:
        """Commit one row (None: its deletion), keeping the table's indexes up to date."""
        committed = self.rows[table]
        old = committed.get(key)
        for index in self.indexes[table].values():
            if old is not None:
                index.remove(key, old)
            if row is not None:
                index.add(key, row)
        if row is None:
            committed.pop(key, None)
            self.places[table].pop(key, None)
        else:
            if old is None:
                self.places[table][key] = next(_places)
            committed[key] = row

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

    def __init__(
        self,
        store: Store,
        *,
        readonly: bool = False,
        snapshot: bool = False,
        lock_timeout: float | None = None,
        statement_timeout: float | None = None,
    ) -> None:
        self.store = store
        self.readonly = readonly
        # What bounds a wait for a row lock, as on the server.
        self.lock_timeout = lock_timeout
        self.statement_timeout = statement_timeout
        # REPEATABLE READ and SERIALIZABLE read one snapshot, taken at the
        # first statement (as PostgreSQL does), instead of the latest commits.
        self._repeatable = snapshot
        self._snapshot: dict[str, dict[Any, Row]] | None = None
        self._seen = 0
        self.id = next(_ids)
        self.state = TxState.ACTIVE
        self.now = dt.datetime.now(dt.UTC)
        self.statement_now = self.now
        self.writes: dict[str, dict[Any, Row | None]] = {}
        self._undo: list[tuple[str, Any, Any]] = []
        self._savepoints: dict[str, int] = {}
        # Indexes of the rows this transaction wrote (and of its snapshot, if any).
        self._mine: dict[str, dict[tuple[int, ...], Index]] = {}
        self._seen_by: dict[str, dict[tuple[int, ...], Index]] = {}
        self._places: dict[str, dict[Any, int]] = {}
        self._seen_places: dict[str, dict[Any, int]] = {}
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

    def scan_key(self, table: str) -> Callable[[Any], tuple[int, int]]:
        """Where `rows(table)` meets a visible key: rows found by lookups, put in scan order."""
        mine = self.writes.get(table, {})
        base = self._base_places(table)
        own = self._places.get(table, {})
        return lambda key: (1, own[key]) if key in mine else (0, base[key])

    def lookup(
        self,
        table: str,
        positions: tuple[int, ...],
        values: tuple[Any, ...],
        *,
        ordered: bool = False,
    ) -> list[Any]:
        """The keys of the visible rows of `table` holding `values` at `positions`;
        `ordered`: in the order `rows` would yield them."""
        mine = self.writes.get(table, {})
        found = [k for k in self._base_index(table, positions).get(values) if k not in mine]
        if ordered and len(found) > 1:
            found.sort(key=self._base_places(table).__getitem__)
        if mine:
            own = list(self._my_index(table, positions).get(values))
            if ordered and len(own) > 1:
                own.sort(key=self._places[table].__getitem__)
            found.extend(own)
        return found

    def _base_places(self, table: str) -> dict[Any, int]:
        if self._snapshot is None:
            return self.store.places[table]
        places = self._seen_places.get(table)
        if places is None:
            places = self._seen_places[table] = {k: i for i, k in enumerate(self._base(table))}
        return places

    def _base_index(self, table: str, positions: tuple[int, ...]) -> Index:
        if self._snapshot is None:
            return self.store.index(table, positions)
        by_positions = self._seen_by.setdefault(table, {})
        found = by_positions.get(positions)
        if found is None:
            found = by_positions[positions] = Index(positions, self._base(table).items())
        return found

    def _my_index(self, table: str, positions: tuple[int, ...]) -> Index:
        by_positions = self._mine.setdefault(table, {})
        found = by_positions.get(positions)
        if found is None:
            rows = ((k, r) for k, r in self.writes.get(table, {}).items() if r is not None)
            found = by_positions[positions] = Index(positions, rows)
        return found

    def _set(self, table: str, key: Any, row: Any) -> None:
        """Make `row` (a row, None, or _MISSING: not written) this one's write of `key`."""
        mine = self.writes.setdefault(table, {})
        old = mine.get(key)
        for index in self._mine.get(table, {}).values():
            if old is not None:
                index.remove(key, old)
            if row is not None and row is not _MISSING:
                index.add(key, row)
        if row is _MISSING:
            del mine[key]
            self._places[table].pop(key, None)
        else:
            if key not in mine:
                self._places.setdefault(table, {})[key] = next(_places)
            mine[key] = row

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
        if self.store.row_locks.holders((table, key), None, self.id, exclusive=True):
            msg = (
                f"{table} {key!r} is locked (for_update / for_share) by another unit of work "
                "that is still open: PostgreSQL would wait for it, MemoryDatabase cannot; "
                "finish that unit first"
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
        self._set(table, key, row)
        self.store.locks[(table, key)] = self.id

    @property
    def row_locks(self) -> RowLocks:
        return self.store.row_locks

    def writer(self, slot: tuple[str, Any]) -> int | None:
        return self.store.locks.get(slot)

    def locked(self, slot: tuple[str, Any], undo: LockUndo | None) -> None:
        """Note a row lock taken (see ``_locks.py``), for a savepoint rolled back to drop it.

        Under a snapshot, a row changed by a commit the snapshot does not see
        cannot be locked, as on PostgreSQL.
        """
        if undo is not None:
            self._undo.append((slot[0], slot[1], undo))
        if self._snapshot is not None and self.store.changed.get(slot, 0) > self._seen:
            msg = (
                f"could not serialize access due to concurrent update of {slot[0]} "
                f"{slot[1]!r}: retry the unit of work"
            )
            raise SerializationFailure(msg)

    def _undo_to(self, mark: int) -> None:
        while len(self._undo) > mark:
            table, key, previous = self._undo.pop()
            if isinstance(previous, LockUndo):
                previous.undo()
                continue
            self._set(table, key, previous)
            if previous is _MISSING:
                self.store.locks.pop((table, key), None)
                self.store.row_locks.wake()

    @contextmanager
    def statement(self, *, write: bool) -> Iterator[Transaction]:
        """One statement: all or nothing; a failure aborts the transaction."""
        self._require_active()
        if self._repeatable and self._snapshot is None:
            self._snapshot = {name: dict(rows) for name, rows in self.store.rows.items()}
            self._seen = self.store.commits
        mark = len(self._undo)
        self.statement_now = dt.datetime.now(dt.UTC)
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
                for key, row in written.items():
                    store.changed[(table, key)] = store.commits
                    store._write(table, key, row)
        self.rollback()

    def rollback(self) -> None:
        locks = self.store.locks
        for table, written in self.writes.items():
            for key in written:
                if locks.get((table, key)) == self.id:
                    del locks[(table, key)]
        self.store.row_locks.release(self.id)
        self.writes = {}
        self._mine = {}
        self._seen_by = {}
        self._places = {}
        self._seen_places = {}
        self._undo.clear()
        self._savepoints.clear()
        self.state = TxState.ENDED
