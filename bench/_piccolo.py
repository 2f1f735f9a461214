"""Piccolo ORM on its Postgres engine: `Table` classes, `objects()`, transactions, `batch()`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from piccolo.columns import (
    JSONB,
    UUID,
    BigInt,
    BigSerial,
    Boolean,
    Numeric,
    Text,
    Timestamptz,
)
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

from ._base import EVERY, PEER_SHARE, Peak, System
from ._model import INSERT_COLUMNS, product_row

__all__ = ["Piccolo"]

BATCH = 1_000  # rows per INSERT: one statement takes at most 32,767 parameters

# Connects only when `Piccolo.open` fills in the DSN and starts the pool.
ENGINE = PostgresEngine(config={})


class PProduct(Table, tablename="bench_product", db=ENGINE):
    id = BigSerial(primary_key=True)
    sku = UUID(unique=True)
    name = Text()
    brand_id = BigInt()
    price = Numeric(digits=(12, 2))
    in_stock = Boolean()
    created_at = Timestamptz()
    attributes = JSONB()


class PInsert(PProduct, tablename="bench_insert", db=ENGINE):
    pass


class PUpsert(PProduct, tablename="bench_upsert", db=ENGINE):
    pass


class PTxn(PProduct, tablename="bench_txn", db=ENGINE):
    pass


def _chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[k : k + BATCH] for k in range(0, len(items), BATCH)]


class Piccolo(System):
    """Piccolo: `objects().get()`, `insert(*rows)`, `on_conflict`, savepoints, `batch()`."""

    name = "piccolo"
    share = PEER_SHARE

    async def open(self) -> None:
        ENGINE.config = {"dsn": self.dsn}
        await ENGINE.start_connection_pool(min_size=self.size, max_size=self.size)

    async def close(self) -> None:
        await ENGINE.close_connection_pool()

    async def held_get(self, ids: Sequence[int]) -> None:
        # Inside a transaction every query runs on its connection.
        async with ENGINE.transaction():
            for i in ids:
                await PProduct.objects().get(PProduct.id == i).output(load_json=True)

    async def get(self, ids: Sequence[int]) -> None:
        for i in ids:
            await PProduct.objects().get(PProduct.id == i).output(load_json=True)

    async def fetch(self, start: int, limit: int) -> int:
        query = (
            PProduct.objects()
            .where(PProduct.id > start)
            .order_by(PProduct.id)
            .limit(limit)
            .output(load_json=True)
        )
        return len(await query)

    def new_rows(self, first: int, count: int) -> Any:
        rows = (product_row(i) for i in range(first, first + count))
        return [dict(zip(INSERT_COLUMNS, row, strict=True)) for row in rows]

    async def insert(self, rows: Any) -> None:
        objects = [PInsert(**row) for row in rows]
        async with ENGINE.transaction():
            for chunk in _chunks(objects):
                await PInsert.insert(*chunk)

    def upsert_rows(self, count: int) -> Any:
        return [
            {"id": i, **dict(zip(INSERT_COLUMNS, product_row(i, 1), strict=True))}
            for i in range(1, count + 1)
        ]

    async def upsert(self, rows: Any) -> None:
        objects = [PUpsert(**row) for row in rows]
        updated = [getattr(PUpsert, c) for c in INSERT_COLUMNS]
        async with ENGINE.transaction():
            for chunk in _chunks(objects):
                await PUpsert.insert(*chunk).on_conflict(
                    target=PUpsert.id, action="DO UPDATE", values=updated
                )

    async def savepoints(self, rows: Any) -> None:
        for row in rows:
            async with ENGINE.transaction() as txn:
                await PTxn.insert(PTxn(**row))
                savepoint = await txn.savepoint()
                try:
                    await PTxn.insert(PTxn(**row))
                except asyncpg.UniqueViolationError:
                    await savepoint.rollback_to()  # type: ignore[no-untyped-call]

    async def stream(self, prefetch: int, peak: Peak) -> int:
        n = 0
        query = PProduct.objects().output(load_json=True)
        # batch() reads through a server-side cursor on a connection of its own.
        async with await query.batch(batch_size=prefetch) as batch:
            async for products in batch:
                for _ in products:
                    n += 1
                    if n % EVERY == 0 and peak.sample(n):
                        return n
        return n
