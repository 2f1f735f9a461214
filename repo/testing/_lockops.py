"""The table operations of a `MemoryDatabase` with row locks: ``FOR UPDATE`` / ``FOR SHARE``.

`get`, `find` and `stream` given a `RowLock` select as `MemoryTableOps`
does, then lock the rows through ``_locks.py`` (waiting, skipping, or
failing on those another transaction holds); without one they are
`MemoryTableOps`' own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from repo._query import Condition, Order, RowLock
from repo._stream import Stream

from ._cursor import MemorySource
from ._locks import lock_rows
from ._ops import MemoryTableOps
from ._store import Row, Transaction
from ._values import coerce_conditions

__all__ = ["LockingTableOps"]

T = TypeVar("T")


class LockingTableOps(MemoryTableOps[T]):
    """`MemoryTableOps`, whose reads also take row locks."""

    async def get(self, key: Any, lock: RowLock | None = None) -> T:
        if lock is None:
            return await super().get(key)
        key = self._key(key)

        def select() -> list[Row]:
            row = txn.get(self._name, key)
            return [] if row is None else [row]

        async with self._session.statement(write=False) as txn:
            rows = await lock_rows(txn, self._name, select, lambda _: key, lock)
        if not rows:
            raise self._table.not_found(key)
        return self._make(rows[0])

    async def find(
        self,
        conditions: Sequence[Condition],
        orders: Sequence[Order],
        limit: int | None,
        offset: int | None,
        lock: RowLock | None = None,
    ) -> list[T]:
        if lock is None:
            return await super().find(conditions, orders, limit, offset)
        start = offset or 0
        # Rows passed over by an offset are locked too, as on PostgreSQL.
        end = None if limit is None else start + limit
        rows = await self._locked(conditions, orders, lock, end)
        return [self._make(r) for r in rows[start:end]]

    def stream(
        self,
        conditions: Sequence[Condition],
        orders: Sequence[Order],
        prefetch: int,
        lock: RowLock | None = None,
    ) -> Stream[T]:
        if lock is None:
            return super().stream(conditions, orders, prefetch)

        async def read() -> list[T]:
            return [self._make(r) for r in await self._locked(conditions, orders, lock, None)]

        return Stream(MemorySource(read, prefetch))

    async def _locked(
        self,
        conditions: Sequence[Condition],
        orders: Sequence[Order],
        lock: RowLock,
        wanted: int | None,
    ) -> list[Row]:
        """The matching rows in order, the first `wanted` free ones locked."""
        conditions = coerce_conditions(self._table, conditions)
        txn: Transaction

        def select() -> list[Row]:
            return sort(self._select(txn, conditions))

        async with self._session.statement(write=False) as txn:
            sort = txn.store.collation.sorter(self._table, orders)
            return await lock_rows(txn, self._name, select, self._table.row_key, lock, wanted)
