"""The four systems, each doing every workload through its own idiomatic API.

Each method is the loop a user of that system would write; the runner only
times it. Inputs that a user would already hold (the ids to get, the rows to
insert, in the shape the system takes them) are made before the clock starts.
"""

from __future__ import annotations

import abc
import asyncio
import resource
from collections.abc import Sequence
from typing import Any, ClassVar

import asyncpg
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from repo import Database, UniqueViolation, gt

from ._model import (
    INSERT_COLUMNS,
    SELECT,
    BenchInsertRepository,
    BenchProduct,
    BenchProductRepository,
    BenchTxn,
    BenchUnit,
    product_row,
)
from ._sqla import SaInsert, SaProduct, SaTxn, engine, sessions

__all__ = ["SYSTEMS", "YARDSTICK", "Peak", "System", "make"]

POOL = 10  # connections in every system's pool
EVERY = 10_000  # rows between RSS samples while streaming

GET = f"{SELECT} WHERE id = $1"
FETCH = f"{SELECT} WHERE id > $1 ORDER BY id LIMIT $2"
INSERT_TXN = "INSERT INTO bench_txn (name) VALUES ($1) RETURNING name, id"

_PAGE = resource.getpagesize()


def rss() -> int:
    """Resident set size now, in bytes (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


class Peak:
    """The highest RSS seen by `sample()`, above the RSS when made."""

    def __init__(self) -> None:
        self.start = rss()
        self.peak = self.start

    def sample(self) -> None:
        self.peak = max(self.peak, rss())

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.start) / 2**20


class System(abc.ABC):
    """One way of talking to PostgreSQL, with a pool of `POOL` connections."""

    name: ClassVar[str]

    def __init__(self, dsn: str, size: int = POOL) -> None:
        self.dsn = dsn
        self.size = size

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def get(self, ids: Sequence[int]) -> None:
        """Get each product by key, one after the other."""

    @abc.abstractmethod
    async def fetch(self, start: int, limit: int) -> int:
        """The `limit` products after id `start`, in id order; how many came."""

    @abc.abstractmethod
    def rows_to_insert(self, count: int) -> Any:
        """`count` new products, as this system's user would hold them."""

    @abc.abstractmethod
    async def insert(self, rows: Any) -> None:
        """Store `rows` (from `rows_to_insert`) in bench_insert, in bulk."""

    @abc.abstractmethod
    async def savepoints(self, names: Sequence[str]) -> None:
        """Per name, a transaction: insert it, then insert it again in a savepoint, which fails."""

    @abc.abstractmethod
    async def stream(self, prefetch: int, peak: Peak) -> int:
        """Every product through a server-side cursor; how many came."""


class Asyncpg(System):
    """Raw asyncpg, records as they come."""

    name = "asyncpg"
    pool: asyncpg.Pool

    async def open(self) -> None:
        # asyncpg's default pool, default reset on release: the yardstick of
        # the concurrency target.
        self.pool = await asyncpg.create_pool(self.dsn, min_size=self.size, max_size=self.size)

    async def close(self) -> None:
        await self.pool.close()

    async def get(self, ids: Sequence[int]) -> None:
        pool = self.pool
        for i in ids:
            await pool.fetchrow(GET, i)

    async def fetch(self, start: int, limit: int) -> int:
        return len(await self.pool.fetch(FETCH, start, limit))

    def rows_to_insert(self, count: int) -> Any:
        return [product_row(i) for i in range(count)]

    async def insert(self, rows: Any) -> None:
        await self.pool.copy_records_to_table("bench_insert", records=rows, columns=INSERT_COLUMNS)

    async def savepoints(self, names: Sequence[str]) -> None:
        for name in names:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.fetchrow(INSERT_TXN, name)
                try:
                    async with conn.transaction():
                        await conn.fetchrow(INSERT_TXN, name)
                except asyncpg.UniqueViolationError:
                    pass

    async def stream(self, prefetch: int, peak: Peak) -> int:
        n = 0
        async with self.pool.acquire() as conn, conn.transaction():
            async for _ in conn.cursor(SELECT, prefetch=prefetch):
                n += 1
                if n % EVERY == 0:
                    peak.sample()
        return n


class AsyncpgAttrs(Asyncpg):
    """Raw asyncpg, each record turned into a slotted frozen attrs object by hand."""

    name = "asyncpg+attrs"

    async def get(self, ids: Sequence[int]) -> None:
        pool = self.pool
        for i in ids:
            row = await pool.fetchrow(GET, i)
            if row is None:
                raise LookupError(i)
            BenchProduct(*row)

    async def fetch(self, start: int, limit: int) -> int:
        return len([BenchProduct(*r) for r in await self.pool.fetch(FETCH, start, limit)])

    def rows_to_insert(self, count: int) -> Any:
        return [BenchProduct(*product_row(i)) for i in range(count)]

    async def insert(self, rows: Any) -> None:
        products: list[BenchProduct] = rows
        await self.pool.copy_records_to_table(
            "bench_insert",
            records=((p.name, p.brand_id, p.price) for p in products),
            columns=INSERT_COLUMNS,
        )

    async def savepoints(self, names: Sequence[str]) -> None:
        for name in names:
            async with self.pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(INSERT_TXN, name)
                if row is None:
                    raise LookupError(name)
                BenchTxn(*row)
                try:
                    async with conn.transaction():
                        await conn.fetchrow(INSERT_TXN, name)
                except asyncpg.UniqueViolationError:
                    pass

    async def stream(self, prefetch: int, peak: Peak) -> int:
        n = 0
        async with self.pool.acquire() as conn, conn.transaction():
            async for r in conn.cursor(SELECT, prefetch=prefetch):
                BenchProduct(*r)
                n += 1
                if n % EVERY == 0:
                    peak.sample()
        return n


class Repo(System):
    """This project: `Database`, pool-level repositories, units of work."""

    name = "repo"
    db: Database

    async def open(self) -> None:
        self.db = await Database.connect(self.dsn, min_size=self.size, max_size=self.size)
        self.products = self.db.repository(BenchProductRepository)
        self.inserted = self.db.repository(BenchInsertRepository)

    async def close(self) -> None:
        await self.db.close()

    async def get(self, ids: Sequence[int]) -> None:
        products = self.products
        for i in ids:
            await products.get(i)

    async def fetch(self, start: int, limit: int) -> int:
        return len(await self.products.find(id=gt(start), order_by="id", limit=limit))

    def rows_to_insert(self, count: int) -> Any:
        return [BenchProduct(*product_row(i)) for i in range(count)]

    async def insert(self, rows: Any) -> None:
        await self.inserted.add_many(rows)

    async def savepoints(self, names: Sequence[str]) -> None:
        for name in names:
            async with BenchUnit(self.db) as uow:
                await uow.txns.add(BenchTxn(name))
                try:
                    async with uow.savepoint():
                        await uow.txns.add(BenchTxn(name))
                except UniqueViolation:
                    pass

    async def stream(self, prefetch: int, peak: Peak) -> int:
        n = 0
        async for _ in self.products.stream(prefetch=prefetch):
            n += 1
            if n % EVERY == 0:
                peak.sample()
        return n


class SqlAlchemy(System):
    """SQLAlchemy 2 asyncio ORM: AsyncEngine on asyncpg, async_sessionmaker, mapped classes."""

    name = "sqlalchemy"

    async def open(self) -> None:
        self.engine = engine(self.dsn, self.size)
        self.session = sessions(self.engine)
        # The engine's pool fills lazily: open every connection now, as the
        # other systems' pools do.
        conns = [await self.engine.connect() for _ in range(self.size)]
        await asyncio.gather(*(c.close() for c in conns))

    async def close(self) -> None:
        await self.engine.dispose()

    async def get(self, ids: Sequence[int]) -> None:
        session = self.session
        for i in ids:
            async with session() as s:
                await s.get(SaProduct, i)

    async def fetch(self, start: int, limit: int) -> int:
        query = select(SaProduct).where(SaProduct.id > start).order_by(SaProduct.id).limit(limit)
        async with self.session() as s:
            return len((await s.scalars(query)).all())

    def rows_to_insert(self, count: int) -> Any:
        rows = (product_row(i) for i in range(count))
        return [{"name": n, "brand_id": b, "price": p} for n, b, p in rows]

    async def insert(self, rows: Any) -> None:
        # The ORM's bulk INSERT: one statement, executemany / insertmanyvalues.
        async with self.session() as s, s.begin():
            await s.execute(insert(SaInsert), rows)

    async def savepoints(self, names: Sequence[str]) -> None:
        for name in names:
            async with self.session() as s, s.begin():
                s.add(SaTxn(name=name))
                try:
                    async with s.begin_nested():
                        s.add(SaTxn(name=name))
                except IntegrityError:
                    pass

    async def stream(self, prefetch: int, peak: Peak) -> int:
        n = 0
        query = select(SaProduct).execution_options(yield_per=prefetch)
        async with self.session() as s:
            async for _ in await s.stream_scalars(query):
                n += 1
                if n % EVERY == 0:
                    peak.sample()
        return n


_CLASSES: dict[str, type[System]] = {c.name: c for c in (Asyncpg, AsyncpgAttrs, Repo, SqlAlchemy)}
SYSTEMS = tuple(_CLASSES)
YARDSTICK = AsyncpgAttrs.name


def make(name: str, dsn: str, size: int = POOL) -> System:
    return _CLASSES[name](dsn, size)
