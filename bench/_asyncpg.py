"""Raw asyncpg, records as they come, and asyncpg + attrs by hand (the yardstick)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import asyncpg

from ._base import EVERY, UPDATED_COLUMNS, Peak, System
from ._model import COLUMNS, INSERT_COLUMNS, SELECT, BenchProduct, json_row, product_row

__all__ = ["Asyncpg", "AsyncpgAttrs"]

GET = f"{SELECT} WHERE id = $1"
FETCH = f"{SELECT} WHERE id > $1 ORDER BY id LIMIT $2"
_PLACES = ", ".join(f"${n}" for n in range(1, len(INSERT_COLUMNS) + 1))
INSERT_TXN = (
    f"INSERT INTO bench_txn ({', '.join(INSERT_COLUMNS)}) VALUES ({_PLACES}) RETURNING {COLUMNS}"
)
# A bulk upsert by hand: COPY into a temporary table, then one INSERT ... ON CONFLICT.
STAGE = "CREATE TEMPORARY TABLE bench_upsert_in (LIKE bench_upsert) ON COMMIT DROP"
UPSERT_COLUMNS = ("id", *INSERT_COLUMNS)
UPSERT = (
    f"INSERT INTO bench_upsert ({', '.join(UPSERT_COLUMNS)}) "
    f"SELECT {', '.join(UPSERT_COLUMNS)} FROM bench_upsert_in "
    "ON CONFLICT (id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in UPDATED_COLUMNS)
)


def _jsonb_out(value: Any) -> bytes:
    # jsonb's binary format: a version byte, then the JSON text.
    return b"\x01" + json.dumps(value).encode()


def _jsonb_in(data: bytes) -> Any:
    return json.loads(data[1:])


async def binary_jsonb(conn: asyncpg.Connection) -> None:
    """jsonb to and from Python objects in the binary format, which COPY needs."""
    await conn.set_type_codec(
        "jsonb", encoder=_jsonb_out, decoder=_jsonb_in, schema="pg_catalog", format="binary"
    )


class Asyncpg(System):
    """Raw asyncpg on its default pool: records as they come (jsonb as JSON text)."""

    name = "asyncpg"
    pool: asyncpg.Pool

    async def open(self) -> None:
        # asyncpg's default pool, default reset on release: the yardstick of
        # the concurrency targets.
        self.pool = await asyncpg.create_pool(
            self.dsn, min_size=self.size, max_size=self.size, init=self.init
        )

    async def init(self, conn: asyncpg.Connection) -> None:
        """Nothing: jsonb comes and goes as JSON text."""

    async def close(self) -> None:
        await self.pool.close()

    async def held_get(self, ids: Sequence[int]) -> None:
        async with self.pool.acquire() as conn:
            for i in ids:
                await conn.fetchrow(GET, i)

    async def get(self, ids: Sequence[int]) -> None:
        pool = self.pool
        for i in ids:
            await pool.fetchrow(GET, i)

    async def fetch(self, start: int, limit: int) -> int:
        return len(await self.pool.fetch(FETCH, start, limit))

    def new_rows(self, first: int, count: int) -> Any:
        return [json_row(product_row(i)) for i in range(first, first + count)]

    async def insert(self, rows: Any) -> None:
        await self.pool.copy_records_to_table("bench_insert", records=rows, columns=INSERT_COLUMNS)

    def upsert_rows(self, count: int) -> Any:
        return [(i, *json_row(product_row(i, 1))) for i in range(1, count + 1)]

    async def upsert(self, rows: Any) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(STAGE)
            await conn.copy_records_to_table(
                "bench_upsert_in", records=rows, columns=UPSERT_COLUMNS
            )
            await conn.execute(UPSERT)

    async def savepoints(self, rows: Any) -> None:
        for row in rows:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.fetchrow(INSERT_TXN, *row)
                try:
                    async with conn.transaction():
                        await conn.fetchrow(INSERT_TXN, *row)
                except asyncpg.UniqueViolationError:
                    pass

    async def stream(self, prefetch: int, peak: Peak) -> int:
        n = 0
        async with self.pool.acquire() as conn, conn.transaction():
            async for _ in conn.cursor(SELECT, prefetch=prefetch):
                n += 1
                if n % EVERY == 0 and peak.sample(n):
                    break
        return n


class AsyncpgAttrs(Asyncpg):
    """Raw asyncpg, each record turned into a slotted frozen attrs object by hand.

    jsonb is decoded to Python objects (a binary-format codec, which COPY needs).
    """

    name = "asyncpg+attrs"

    async def init(self, conn: asyncpg.Connection) -> None:
        await binary_jsonb(conn)

    async def held_get(self, ids: Sequence[int]) -> None:
        async with self.pool.acquire() as conn:
            for i in ids:
                row = await conn.fetchrow(GET, i)
                if row is None:
                    raise LookupError(i)
                BenchProduct(*row)

    async def get(self, ids: Sequence[int]) -> None:
        pool = self.pool
        for i in ids:
            row = await pool.fetchrow(GET, i)
            if row is None:
                raise LookupError(i)
            BenchProduct(*row)

    async def fetch(self, start: int, limit: int) -> int:
        return len([BenchProduct(*r) for r in await self.pool.fetch(FETCH, start, limit)])

    def new_rows(self, first: int, count: int) -> Any:
        return [BenchProduct(*product_row(i)) for i in range(first, first + count)]

    async def insert(self, rows: Any) -> None:
        products: list[BenchProduct] = rows
        await self.pool.copy_records_to_table(
            "bench_insert",
            records=(
                (p.sku, p.name, p.brand_id, p.price, p.in_stock, p.created_at, p.attributes)
                for p in products
            ),
            columns=INSERT_COLUMNS,
        )

    def upsert_rows(self, count: int) -> Any:
        return [BenchProduct(*product_row(i, 1), id=i) for i in range(1, count + 1)]

    async def upsert(self, rows: Any) -> None:
        products: list[BenchProduct] = rows
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(STAGE)
            await conn.copy_records_to_table(
                "bench_upsert_in",
                records=(
                    (
                        p.id,
                        p.sku,
                        p.name,
                        p.brand_id,
                        p.price,
                        p.in_stock,
                        p.created_at,
                        p.attributes,
                    )
                    for p in products
                ),
                columns=UPSERT_COLUMNS,
            )
            await conn.execute(UPSERT)

    async def savepoints(self, rows: Any) -> None:
        products: list[BenchProduct] = rows
        for p in products:
            values = (p.sku, p.name, p.brand_id, p.price, p.in_stock, p.created_at, p.attributes)
            async with self.pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(INSERT_TXN, *values)
                if row is None:
                    raise LookupError(p)
                BenchProduct(*row)
                try:
                    async with conn.transaction():
                        await conn.fetchrow(INSERT_TXN, *values)
                except asyncpg.UniqueViolationError:
                    pass

    async def stream(self, prefetch: int, peak: Peak) -> int:
        n = 0
        async with self.pool.acquire() as conn, conn.transaction():
            async for r in conn.cursor(SELECT, prefetch=prefetch):
                BenchProduct(*r)
                n += 1
                if n % EVERY == 0 and peak.sample(n):
                    break
        return n
