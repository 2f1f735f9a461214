"""This project, through its public API: `Database`, repositories, units of work."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from repo import Database, UniqueViolation, gt

from ._base import EVERY, Peak, System
from ._model import (
    BenchInsertRepository,
    BenchProduct,
    BenchProductRepository,
    BenchUnit,
    BenchUpsertRepository,
    product_row,
)

__all__ = ["Repo"]


class Repo(System):
    """`Database.connect()`, `db.repository(...)` at pool level, a `UnitOfWork` otherwise."""

    name = "repo"
    db: Database

    async def open(self) -> None:
        self.db = await Database.connect(self.dsn, min_size=self.size, max_size=self.size)
        self.products = self.db.repository(BenchProductRepository)
        self.inserted = self.db.repository(BenchInsertRepository)
        self.upserted = self.db.repository(BenchUpsertRepository)

    async def close(self) -> None:
        await self.db.close()

    async def held_get(self, ids: Sequence[int]) -> None:
        # A unit of work holds one connection from BEGIN to COMMIT.
        async with BenchUnit(self.db, readonly=True) as uow:
            products = uow.products
            for i in ids:
                await products.get(i)

    async def get(self, ids: Sequence[int]) -> None:
        products = self.products
        for i in ids:
            await products.get(i)

    async def fetch(self, start: int, limit: int) -> int:
        return len(await self.products.find(id=gt(start), order_by="id", limit=limit))

    def new_rows(self, first: int, count: int) -> Any:
        return [BenchProduct(*product_row(i)) for i in range(first, first + count)]

    async def insert(self, rows: Any) -> None:
        await self.inserted.add_many(rows)

    def upsert_rows(self, count: int) -> Any:
        return [BenchProduct(*product_row(i, 1), id=i) for i in range(1, count + 1)]

    async def upsert(self, rows: Any) -> None:
        await self.upserted.upsert_many(rows)

    async def savepoints(self, rows: Any) -> None:
        products: list[BenchProduct] = rows
        for p in products:
            async with BenchUnit(self.db) as uow:
                await uow.txns.add(p)
                try:
                    async with uow.savepoint():
                        await uow.txns.add(p)
                except UniqueViolation:
                    pass

    async def stream(self, prefetch: int, peak: Peak) -> int:
        n = 0
        async for _ in self.products.stream(prefetch=prefetch):
            n += 1
            if n % EVERY == 0 and peak.sample(n):
                break
        return n
