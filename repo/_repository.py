"""`Repository[T]`: the generic operations on one table, and hand-written SQL."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from ._backend import Session, TableOps
from ._mapping import Table
from ._query import check_limit, parse_filters, parse_order
from ._readmodel import record_mapper
from .errors import InvalidQuery, InvalidState

__all__ = ["Repository"]

T = TypeVar("T")
M = TypeVar("M")


class Repository(Generic[T]):
    """The operations on one mapped table, run by the session it is bound to.

    Subclass it, set ``table``, and build your own methods on the generic ones
    (or on hand-written SQL with `query`, `query_one`, `scalar`, `execute`).
    Get instances from a unit of work (declared as annotations) or from
    ``db.repository(RepoClass)``, never by calling the class yourself.
    """

    table: Table[T]
    _reserved: ClassVar[frozenset[str]] = frozenset({"order_by", "limit", "offset"})

    def __init__(self, session: Session) -> None:
        self._session = session
        table = getattr(type(self), "table", None)
        self._ops: TableOps[T] | None = session.ops(table) if table is not None else None

    @property
    def ops(self) -> TableOps[T]:
        if self._ops is None:
            msg = f"{type(self).__name__} has no `table`: set `table = Table(...)` on the class"
            raise InvalidState(msg)
        return self._ops

    # -- writes ---------------------------------------------------------

    async def add(self, entity: T) -> T:
        """Insert `entity`; return it with the generated columns filled in."""
        return await self.ops.add(self.table.check_entity(entity))

    async def add_many(self, entities: Iterable[T]) -> int:
        """Insert many entities in one COPY; return how many were stored."""
        return await self.ops.add_many(entities)

    async def update(self, entity: T) -> T:
        """Write every column of `entity` by its key; `NotFound` if the key is absent.

        With a version column, the row must still hold the entity's version
        (else `StaleEntity`) and the returned entity carries the next one.
        """
        return await self.ops.update(self.table.check_entity(entity))

    async def delete(self, key: Any) -> None:
        """Delete the row with `key`; `NotFound` if there is none."""
        self._check_key(key)
        await self.ops.delete(key)

    # -- reads ----------------------------------------------------------

    async def get(self, key: Any) -> T:
        """The entity with `key`; `NotFound` if there is none."""
        self._check_key(key)
        return await self.ops.get(key)

    async def get_many(self, keys: Iterable[Any]) -> list[T]:
        """The entities with `keys`, in the order given, in one round trip.

        `NotFound` (listing them) if any key is absent.
        """
        keys = list(keys)
        for key in keys:
            self._check_key(key)
        return await self.ops.get_many(keys)

    async def find(
        self,
        *,
        order_by: str | Sequence[str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        **filters: Any,
    ) -> list[T]:
        """The entities matching every filter.

        ``name=value`` is equality, ``name=None`` is IS NULL, and the operator
        helpers (`gt`, `in_`, `like`, ...) cover the rest. ``order_by`` takes
        field names, ``-name`` for descending; without it the order is the
        database's.
        """
        conditions = parse_filters(self.table, filters)
        orders = parse_order(self.table, order_by)
        check_limit(limit, offset)
        return await self.ops.find(conditions, orders, limit, offset)

    async def find_one(self, **filters: Any) -> T | None:
        """The entity matching the filters, or `None`; `InvalidQuery` if several match."""
        conditions = parse_filters(self.table, filters)
        found = await self.ops.find(conditions, (), 2, None)
        if len(found) > 1:
            msg = f"find_one({_describe(filters)}) matched more than one {self.table.name} row"
            raise InvalidQuery(msg)
        return found[0] if found else None

    async def count(self, **filters: Any) -> int:
        """How many rows match the filters."""
        return await self.ops.count(parse_filters(self.table, filters))

    async def exists(self, **filters: Any) -> bool:
        """Whether any row matches the filters."""
        return await self.ops.exists(parse_filters(self.table, filters))

    # -- hand-written SQL -----------------------------------------------

    async def query(self, model: type[M], sql: str, *args: Any) -> list[M]:
        """Run `sql` and map each row onto `model` (an attrs class), by column name."""
        rows = await self._session.sql(_caller(self)).fetch(sql, args)
        if not rows:
            return []
        make = record_mapper(model, tuple(rows[0].keys()))
        return [make(r) for r in rows]

    async def query_one(self, model: type[M], sql: str, *args: Any) -> M | None:
        """Run `sql` and map its first row onto `model`, or return `None` if it has none."""
        row = await self._session.sql(_caller(self)).fetchrow(sql, args)
        if row is None:
            return None
        return record_mapper(model, tuple(row.keys()))(row)

    async def scalar(self, sql: str, *args: Any) -> Any:
        """Run `sql` and return the first column of its first row."""
        return await self._session.sql(_caller(self)).fetchval(sql, args)

    async def execute(self, sql: str, *args: Any) -> str:
        """Run `sql` for its effect; return the command status (e.g. ``"UPDATE 3"``)."""
        return await self._session.sql(_caller(self)).execute(sql, args)

    def _check_key(self, key: Any) -> None:
        if key is None:
            msg = f"{self.table.name} keys are never None"
            raise InvalidQuery(msg)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} on {self._session!r}>"


def _describe(filters: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in filters.items())


def _caller(repo: Repository[Any]) -> str:
    """The repository method that issued hand-written SQL, for the in-memory error."""
    frame = sys._getframe(2)
    return f"{type(repo).__name__}.{frame.f_code.co_name}"
