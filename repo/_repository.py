"""`Repository[T]`: the generic operations on one table, and hand-written SQL."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar, Generic, Literal, TypeVar, overload

from ._aggregate_repository import AggregateRepository
from ._bulk import UpsertResult, upsert_fields
from ._contract import Session, TableOps
from ._mapping import Table
from ._paging import Page, check_page_limit, next_token, page_start
from ._query import RowLock, check_limit, parse_filters, parse_order, row_lock
from ._readmodel import lazy_mapper, record_mapper
from ._stream import Cursor, Stream, check_prefetch
from .errors import InvalidQuery, InvalidState

__all__ = ["Repository"]

T = TypeVar("T")
M = TypeVar("M")
R = TypeVar("R", bound="Repository[Any] | AggregateRepository[Any]")


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

    @overload
    async def add_many(
        self, entities: Iterable[T] | AsyncIterable[T], *, returning: Literal[False] = False
    ) -> int: ...

    @overload
    async def add_many(
        self, entities: Iterable[T] | AsyncIterable[T], *, returning: Literal[True]
    ) -> list[T]: ...

    async def add_many(
        self, entities: Iterable[T] | AsyncIterable[T], *, returning: bool = False
    ) -> int | list[T]:
        """Insert many entities with COPY; return how many were stored.

        `entities` may be any iterable or async iterable; it is read lazily,
        never held in memory whole. The load is one statement: if any row
        fails, nothing is stored. With ``returning=True`` the stored entities
        come back, generated keys filled, in the order given.
        """
        return await self.ops.add_many(entities, returning)

    async def upsert(
        self,
        entity: T,
        *,
        on: str | Sequence[str] | None = None,
        update: Sequence[str] | None = None,
    ) -> T:
        """Insert `entity`, or update the row it conflicts with; return the stored row.

        INSERT ... ON CONFLICT (`on`) DO UPDATE ... RETURNING. `on` is the key
        (default) or the fields of a declared unique constraint; `update` the
        fields to overwrite on conflict (default: every inserted field but
        `on` and the key). A row that already holds those values is left
        untouched (no write, no version bump), and returned as stored.
        """
        table = self.table
        return await self.ops.upsert(
            table.check_entity(entity), table.conflict_target(on), upsert_fields(table, update)
        )

    @overload
    async def upsert_many(
        self,
        entities: Iterable[T] | AsyncIterable[T],
        *,
        on: str | Sequence[str] | None = None,
        update: Sequence[str] | None = None,
        returning: Literal[False] = False,
    ) -> UpsertResult: ...

    @overload
    async def upsert_many(
        self,
        entities: Iterable[T] | AsyncIterable[T],
        *,
        on: str | Sequence[str] | None = None,
        update: Sequence[str] | None = None,
        returning: Literal[True],
    ) -> list[T]: ...

    async def upsert_many(
        self,
        entities: Iterable[T] | AsyncIterable[T],
        *,
        on: str | Sequence[str] | None = None,
        update: Sequence[str] | None = None,
        returning: bool = False,
    ) -> UpsertResult | list[T]:
        """Upsert many entities: COPY into a temporary table, then one INSERT ... ON CONFLICT.

        Returns how many rows were inserted, updated and left unchanged (a
        row that already held the values given is not written), or with
        ``returning=True`` every entity given, as stored, in the order given.
        Two entities with the same `on` values in one call are refused by the
        server, unless both leave an existing row unchanged.
        """
        table = self.table
        return await self.ops.upsert_many(
            entities, table.conflict_target(on), upsert_fields(table, update), returning
        )

    async def delete_where(self, **filters: Any) -> int:
        """Delete every row matching the filters; return how many. At least one filter."""
        if not filters:
            msg = (
                "delete_where() needs at least one filter: deleting every row is "
                "too easy to do by accident (use execute('DELETE FROM ...') if you mean it)"
            )
            raise InvalidQuery(msg)
        return await self.ops.delete_where(parse_filters(self.table, filters))

    async def update_where(self, set: Mapping[str, Any], **filters: Any) -> int:
        """Set fields (``set={"name": value}``) on every row matching the filters; return how many.

        At least one filter; the key cannot be set. A version column is bumped.
        """
        table = self.table
        if not isinstance(set, Mapping) or not set:
            msg = f"update_where(set=...) takes a non-empty mapping of field to value, got {set!r}"
            raise InvalidQuery(msg)
        for name, value in set.items():
            table.field(name, purpose="update_where set=")
            if name in table.key_fields:
                msg = f"update_where cannot change the key {name!r}"
                raise InvalidQuery(msg)
            table.check_value(name, value, "update_where(set=...)")
        if not filters:
            msg = (
                "update_where() needs at least one filter: updating every row is too easy "
                "to do by accident (use execute('UPDATE ...') if you mean it)"
            )
            raise InvalidQuery(msg)
        return await self.ops.update_where(dict(set), parse_filters(table, filters))

    async def update(self, entity: T) -> T:
        """Write every column of `entity` by its key; `NotFound` if the key is absent.

        With a version column, the row must still hold the entity's version
        (else `StaleEntity`) and the returned entity carries the next one.
        """
        table = self.table
        if table.lacks_key(table.check_entity(entity)):
            missing = [f for f in table.key_fields if getattr(entity, f) is None]
            msg = (
                f"update needs the key: {table.entity.__name__}.{missing[0]} is None "
                "(add the entity first, or use the one add() returned)"
            )
            raise InvalidQuery(msg)
        return await self.ops.update(entity)

    async def delete(self, key: Any) -> None:
        """Delete the row with `key`; `NotFound` if there is none, `InvalidQuery` for a key
        of the wrong type (or, for a composite key, not a tuple of one value per part)."""
        await self.ops.delete(self.table.check_key(key, "delete()"))

    # -- reads ----------------------------------------------------------

    async def get(
        self, key: Any, *, for_update: bool = False, for_share: bool = False, nowait: bool = False
    ) -> T:
        """The entity with `key`; `NotFound` if there is none.

        A key of the wrong type is refused with `InvalidQuery`; the str of a
        UUID stands for the UUID. A composite key is a tuple of one value per
        key field, in the order `Table(key=...)` names them. Row locks as in `find`.
        """
        lock = self._lock("get", for_update, for_share, False, nowait)
        return await self.ops.get(self.table.check_key(key, "get()"), lock)

    async def get_many(self, keys: Iterable[Any]) -> list[T]:
        """The entities with `keys`, in the order given, in one round trip.

        `NotFound` (listing them) if any key is absent; `InvalidQuery` if a
        key is of the wrong type.
        """
        check = self.table.check_key
        return await self.ops.get_many([check(key, "get_many()") for key in keys])

    async def find(
        self,
        *,
        order_by: str | Sequence[str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        for_update: bool = False,
        for_share: bool = False,
        skip_locked: bool = False,
        nowait: bool = False,
        **filters: Any,
    ) -> list[T]:
        """The entities matching every filter.

        ``name=value`` is equality, ``name=None`` is IS NULL, and the operator
        helpers (`gt`, `in_`, `like`, ...) cover the rest. ``order_by`` takes
        field names, ``-name`` for descending; without it the order is the
        database's.

        Row locks (in a unit of work only): ``for_update`` / ``for_share`` lock
        the rows returned until the unit ends; a row another unit holds is
        waited for (``lock_timeout``), skipped (``skip_locked``) or refused at
        once (``nowait``: `LockNotAvailable`).
        """
        lock = self._lock("find", for_update, for_share, skip_locked, nowait)
        conditions = parse_filters(self.table, filters)
        orders = parse_order(self.table, order_by)
        check_limit(limit, offset)
        return await self.ops.find(conditions, orders, limit, offset, lock)

    async def find_one(
        self,
        *,
        for_update: bool = False,
        for_share: bool = False,
        skip_locked: bool = False,
        nowait: bool = False,
        **filters: Any,
    ) -> T | None:
        """The entity matching the filters, or `None`; `InvalidQuery` if several match.

        Row locks as in `find`; with ``skip_locked`` any one free matching row.
        """
        lock = self._lock("find_one", for_update, for_share, skip_locked, nowait)
        conditions = parse_filters(self.table, filters)
        # With skip_locked any one free row: a second would be locked, not returned.
        found = await self.ops.find(conditions, (), 1 if skip_locked else 2, None, lock)
        if len(found) > 1:
            msg = f"find_one({_describe(filters)}) matched more than one {self.table.name} row"
            raise InvalidQuery(msg)
        return found[0] if found else None

    def _lock(self, method: str, *flags: bool) -> RowLock | None:
        if not any(flags):  # the hot path: no lock asked for
            return None
        return row_lock(method, self._session.keeps_locks, *flags)

    async def page(
        self,
        *,
        after: str | None = None,
        limit: int = 50,
        order_by: str | Sequence[str] | None = None,
        **filters: Any,
    ) -> Page[T]:
        """One page of `limit` entities by keyset, after the token `after` (``None``: the first).

        Ordered by the key, or by `order_by` with the key (every part of a
        composite one) as tie-breaker (all one direction, none nullable).
        ``page.next`` is the token for the next page, ``None`` on the last.
        Rows inserted between pages are never skipped or repeated, and no
        page scans the ones before it.
        """
        table = self.table
        check_page_limit(limit)
        conditions = parse_filters(table, filters)
        orders, values = page_start(table, order_by, after)
        items, more = await self.ops.page(conditions, orders, values, limit)
        return Page(items, next_token(table, orders, items[-1] if items else None, more))

    def stream(
        self,
        *,
        order_by: str | Sequence[str] | None = None,
        prefetch: int | None = None,
        for_update: bool = False,
        for_share: bool = False,
        skip_locked: bool = False,
        nowait: bool = False,
        **filters: Any,
    ) -> Stream[T]:
        """``async for`` over every matching entity, `prefetch` rows per round trip.

        A server-side cursor: memory holds one batch, however many rows match.
        In a unit of work it reads in the unit's transaction; from
        ``db.repository()`` it holds its own connection and transaction until
        the loop ends, breaks, fails or is cancelled. Row locks as in `find`.
        """
        lock = self._lock("stream", for_update, for_share, skip_locked, nowait)
        conditions = parse_filters(self.table, filters)
        orders = parse_order(self.table, order_by)
        return self.ops.stream(conditions, orders, check_prefetch(prefetch), lock)

    def cursor(
        self, *, order_by: str | Sequence[str] | None = None, **filters: Any
    ) -> AbstractAsyncContextManager[Cursor[T]]:
        """``async with repo.cursor(...) as cur``: a cursor to `forward` and `fetch` on."""
        conditions = parse_filters(self.table, filters)
        orders = parse_order(self.table, order_by)
        return self.ops.cursor(conditions, orders)

    async def count(self, **filters: Any) -> int:
        """How many rows match the filters."""
        return await self.ops.count(parse_filters(self.table, filters))

    async def exists(self, **filters: Any) -> bool:
        """Whether any row matches the filters."""
        return await self.ops.exists(parse_filters(self.table, filters))

    # -- siblings ---------------------------------------------------------

    def repository(self, cls: type[R]) -> R:
        """A repository of another class on the same unit of work (or the same pool).

        For a method that needs the other tables of its unit, hand-written
        or in an in-memory override: ``self.repository(ProductRepository)``
        reads and writes in this repository's transaction; an
        `AggregateRepository` class gives one of those.
        """
        candidate: object = cls
        if not (
            isinstance(candidate, type) and issubclass(candidate, (Repository, AggregateRepository))
        ):
            msg = f"repository() takes a Repository or AggregateRepository subclass, got {cls!r}"
            raise InvalidState(msg)
        return self._session.repository(cls)

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

    def stream_query(
        self, model: type[M], sql: str, *args: Any, prefetch: int | None = None
    ) -> Stream[M]:
        """Stream the rows of `sql` mapped onto `model`, through a server-side cursor."""
        runner = self._session.sql(_caller(self))
        return runner.stream(sql, args, lazy_mapper(model), check_prefetch(prefetch))

    def cursor_query(
        self, model: type[M], sql: str, *args: Any
    ) -> AbstractAsyncContextManager[Cursor[M]]:
        """``async with``: a cursor over `sql`, rows mapped onto `model`."""
        return self._session.sql(_caller(self)).cursor(sql, args, lazy_mapper(model))

    async def scalar(self, sql: str, *args: Any) -> Any:
        """Run `sql` and return the first column of its first row."""
        return await self._session.sql(_caller(self)).fetchval(sql, args)

    async def execute(self, sql: str, *args: Any) -> str:
        """Run `sql` for its effect; return the command status (e.g. ``"UPDATE 3"``)."""
        return await self._session.sql(_caller(self)).execute(sql, args)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} on {self._session!r}>"


def _describe(filters: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in filters.items())


def _caller(repo: Repository[Any]) -> str:
    """The repository method that issued hand-written SQL, for the in-memory error."""
    frame = sys._getframe(2)
    return f"{type(repo).__name__}.{frame.f_code.co_name}"
