"""Tortoise ORM on its asyncpg backend: `Model` classes, querysets, `in_transaction()`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from tortoise import Tortoise, fields
from tortoise.exceptions import IntegrityError
from tortoise.models import Model
from tortoise.transactions import in_transaction

from ._base import PEER_SHARE, UPDATED_COLUMNS, Peak, System
from ._model import INSERT_COLUMNS, product_row

__all__ = ["TortoiseOrm"]

BATCH = 1_000  # rows per INSERT of a bulk_create


class _Columns(Model):
    id = fields.BigIntField(primary_key=True)
    sku = fields.UUIDField(unique=True)
    name = fields.TextField()
    brand_id = fields.BigIntField()
    price = fields.DecimalField(max_digits=12, decimal_places=2)
    in_stock = fields.BooleanField()
    created_at = fields.DatetimeField()
    attributes: fields.Field[Any] = fields.JSONField()

    class Meta:
        abstract = True


class TProduct(_Columns):
    class Meta:
        table = "bench_product"


class TInsert(_Columns):
    class Meta:
        table = "bench_insert"


class TUpsert(_Columns):
    class Meta:
        table = "bench_upsert"


class TTxn(_Columns):
    class Meta:
        table = "bench_txn"


def _url(dsn: str, size: int) -> str:
    base = dsn.replace("postgresql://", "asyncpg://", 1).replace("postgres://", "asyncpg://", 1)
    return f"{base}{'&' if '?' in base else '?'}minsize={size}&maxsize={size}"


class TortoiseOrm(System):
    """Tortoise ORM: `Tortoise.init(db_url=...)`, `Model.get`, `bulk_create`, `in_transaction`."""

    name = "tortoise"
    share = PEER_SHARE
    cannot: ClassVar[Mapping[str, str]] = {
        "stream": (
            "no server-side cursor: `async for` over a QuerySet fetches the whole result first"
        ),
    }

    async def open(self) -> None:
        await Tortoise.init(db_url=_url(self.dsn, self.size), modules={"models": [__name__]})
        # The pool opens lazily on the first query: fill it now, as the other
        # systems' pools are.
        conn = Tortoise.get_connection("default")
        await conn.execute_query("SELECT 1")

    async def close(self) -> None:
        await Tortoise.close_connections()

    async def held_get(self, ids: Sequence[int]) -> None:
        async with in_transaction() as conn:
            for i in ids:
                await TProduct.get(id=i, using_db=conn)

    async def get(self, ids: Sequence[int]) -> None:
        for i in ids:
            await TProduct.get(id=i)

    async def fetch(self, start: int, limit: int) -> int:
        return len(await TProduct.filter(id__gt=start).order_by("id").limit(limit))

    def new_rows(self, first: int, count: int) -> Any:
        rows = (product_row(i) for i in range(first, first + count))
        return [dict(zip(INSERT_COLUMNS, row, strict=True)) for row in rows]

    async def insert(self, rows: Any) -> None:
        await TInsert.bulk_create([TInsert(**row) for row in rows], batch_size=BATCH)

    def upsert_rows(self, count: int) -> Any:
        return [
            {"id": i, **dict(zip(INSERT_COLUMNS, product_row(i, 1), strict=True))}
            for i in range(1, count + 1)
        ]

    async def upsert(self, rows: Any) -> None:
        await TUpsert.bulk_create(
            [TUpsert(**row) for row in rows],
            batch_size=BATCH,
            on_conflict=["id"],
            update_fields=list(UPDATED_COLUMNS),
        )

    async def savepoints(self, rows: Any) -> None:
        for row in rows:
            async with in_transaction() as conn:
                await TTxn.create(**row, using_db=conn)
                try:
                    # A nested in_transaction() is a savepoint.
                    async with in_transaction() as inner:
                        await TTxn.create(**row, using_db=inner)
                except IntegrityError:
                    pass

    async def stream(self, prefetch: int, peak: Peak) -> int:
        raise NotImplementedError(self.cannot["stream"])
