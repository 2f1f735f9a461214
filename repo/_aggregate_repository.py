"""`AggregateRepository[T]`: whole aggregates read in one statement and saved as one."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Generic, TypeVar

from ._aggregate import Aggregate
from ._aggregate_writes import add_aggregate, delete_aggregate, update_aggregate
from ._contract import AggregateReads, Session
from ._paging import Page, check_page_limit, next_token, page_start
from ._query import check_limit, parse_filters, parse_order
from ._stream import Stream, check_prefetch
from .errors import InvalidQuery, InvalidState

__all__ = ["AggregateRepository"]

T = TypeVar("T")


class AggregateRepository(Generic[T]):
    """The operations on whole aggregates: a root with its parents and its children.

    Subclass it and set ``aggregate = Aggregate(...)``; declare it on a unit
    of work like any repository (``details: ProductDetails``) or get one from
    ``db.repository(ProductDetails)``. On PostgreSQL each read is one
    statement, decoded in binary: one row per root with its children as
    arrays of rows (`get`, `stream`), or flat rows, the roots' then each kind
    of child's (`get_many`, `find`, `page`). Each write is one transaction:
    the unit's, or its own at pool level.
    Filters and `order_by` name fields of the root.
    """

    aggregate: Aggregate[T]

    def __init__(self, session: Session) -> None:
        agg = getattr(type(self), "aggregate", None)
        if not isinstance(agg, Aggregate):
            msg = (
                f"{type(self).__name__} has no `aggregate`: set "
                "`aggregate = Aggregate(...)` on the class"
            )
            raise InvalidState(msg)
        self._agg: Aggregate[T] = agg
        self._session = session
        self._reads: AggregateReads[T] = session.aggregate(agg)

    # -- reads ----------------------------------------------------------

    async def get(self, key: Any) -> T:
        """The aggregate whose root has `key`; `NotFound` if there is none."""
        return await self._reads.get(self._agg.root.check_key(key, "get()"))

    async def get_many(self, keys: Iterable[Any]) -> list[T]:
        """The aggregates with `keys`, in the order given, in one round trip.

        `NotFound` (listing them) if any key is absent.
        """
        check = self._agg.root.check_key
        return await self._reads.get_many([check(key, "get_many()") for key in keys])

    async def find(
        self,
        *,
        order_by: str | Sequence[str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        **filters: Any,
    ) -> list[T]:
        """The aggregates whose root matches every filter (as `Repository.find`)."""
        root = self._agg.root
        conditions = parse_filters(root, filters)
        orders = parse_order(root, order_by)
        check_limit(limit, offset)
        return await self._reads.find(conditions, orders, limit, offset)

    async def find_one(self, **filters: Any) -> T | None:
        """The aggregate whose root matches the filters, or `None`; `InvalidQuery` if several do."""
        found = await self._reads.find(parse_filters(self._agg.root, filters), (), 2, None)
        if len(found) > 1:
            msg = f"find_one() matched more than one {self._agg.root.name} row"
            raise InvalidQuery(msg)
        return found[0] if found else None

    async def page(
        self,
        *,
        after: str | None = None,
        limit: int = 50,
        order_by: str | Sequence[str] | None = None,
        **filters: Any,
    ) -> Page[T]:
        """One keyset page of aggregates, ordered by the root's key (see `Repository.page`)."""
        agg = self._agg
        table = agg.root
        check_page_limit(limit)
        conditions = parse_filters(table, filters)
        orders, values = page_start(table, order_by, after)
        items, more = await self._reads.page(conditions, orders, values, limit)
        last = getattr(items[-1], agg.root_field) if items else None
        return Page(items, next_token(table, orders, last, more))

    def stream(
        self,
        *,
        order_by: str | Sequence[str] | None = None,
        prefetch: int | None = None,
        **filters: Any,
    ) -> Stream[T]:
        """``async for`` over every matching aggregate, `prefetch` per round trip (a cursor)."""
        root = self._agg.root
        conditions = parse_filters(root, filters)
        orders = parse_order(root, order_by)
        return self._reads.stream(conditions, orders, check_prefetch(prefetch))

    async def count(self, **filters: Any) -> int:
        """How many aggregates' roots match the filters."""
        root = self._agg.root
        return await self._session.ops(root).count(parse_filters(root, filters))

    # -- writes ---------------------------------------------------------

    async def add(self, aggregate: T) -> T:
        """Insert the root, then its children in bulk; return the aggregate as stored.

        Parents (`one=`) are referenced, not written: each must be stored
        already. Children's references to their parent are set from it (a
        generated key is known only once the parent is stored).
        """
        async with self._session.atomic_session() as session:
            key = await add_aggregate(session, self._agg, aggregate)
            return await session.aggregate(self._agg).get(key)

    async def update(self, aggregate: T) -> T:
        """Update the root and make the stored children equal to those given; return it as stored.

        Children whose key is stored are updated if changed, those without a
        key (or with one not stored) inserted, stored ones not given deleted.
        A versioned root must still hold the version given (else
        `StaleEntity`) and is bumped by any change to the aggregate.
        """
        agg = self._agg
        root = getattr(aggregate, agg.root_field, None)
        if isinstance(root, agg.root.entity) and agg.root.lacks_key(root):
            name = agg.root.entity.__name__
            msg = f"update needs the key: the {name} given has none (add it first)"
            raise InvalidQuery(msg)
        agg.parts(aggregate)
        async with self._session.atomic_session() as session:
            reads = session.aggregate(agg)
            key = agg.root.key_of(root)
            await update_aggregate(session, agg, aggregate, await reads.get(key))
            return await reads.get(key)

    async def delete(self, key: Any) -> None:
        """Delete the aggregate with `key`, its children first; `NotFound` if there is none."""
        key = self._agg.root.check_key(key, "delete()")
        async with self._session.atomic_session() as session:
            stored = await session.aggregate(self._agg).get(key)
            await delete_aggregate(session, self._agg, stored)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} on {self._session!r}>"
