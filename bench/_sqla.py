"""SQLAlchemy 2 on its asyncpg dialect: Core (`AsyncConnection`) and the ORM (`AsyncSession`).

The bench modules that import SQLAlchemy (the project keeps it out of
``repo/``; here it is the thing being compared against). Core runs on the
ORM classes' ``__table__`` objects, which are the `Table` a Core user declares.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Identity,
    Numeric,
    Table,
    Text,
    Uuid,
    insert,
    pool,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ._base import EVERY, PEER_SHARE, UPDATED_COLUMNS, Peak, System
from ._model import FIELDS, INSERT_COLUMNS, product_row

__all__ = ["SqlaCore", "SqlaOrm"]


class Base(DeclarativeBase):
    pass


class _Columns:
    sku: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    name: Mapped[str] = mapped_column(Text)
    brand_id: Mapped[int] = mapped_column(BigInteger)
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    in_stock: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)


class SaProduct(_Columns, Base):
    __tablename__ = "bench_product"


class SaInsert(_Columns, Base):
    __tablename__ = "bench_insert"


class SaUpsert(_Columns, Base):
    __tablename__ = "bench_upsert"


class SaTxn(_Columns, Base):
    __tablename__ = "bench_txn"


def _table(cls: type[Base]) -> Table:
    table: Table = cls.__table__  # type: ignore[assignment]
    return table


PRODUCT, INSERTED, UPSERTED, TXN = (_table(c) for c in (SaProduct, SaInsert, SaUpsert, SaTxn))


def engine(dsn: str, size: int) -> AsyncEngine:
    """An AsyncEngine on SQLAlchemy's asyncpg dialect: a pool of `size` connections to `dsn`."""

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(dsn)

    return create_async_engine(
        "postgresql+asyncpg://",
        async_creator=connect,
        poolclass=pool.AsyncAdaptedQueuePool,
        pool_size=size,
        max_overflow=0,
    )


def _dicts(rows: Sequence[tuple[Any, ...]], names: Sequence[str]) -> list[dict[str, Any]]:
    return [dict(zip(names, row, strict=True)) for row in rows]


def _upsert(target: Table | type[Base]) -> Any:
    """``INSERT ... ON CONFLICT (id) DO UPDATE`` every other column, as SQLAlchemy spells it."""
    stmt = pg_insert(target)
    return stmt.on_conflict_do_update(
        index_elements=["id"], set_={c: stmt.excluded[c] for c in UPDATED_COLUMNS}
    )


class _Sqla(System):
    share = PEER_SHARE

    async def open(self) -> None:
        self.engine = engine(self.dsn, self.size)
        # The engine's pool fills lazily: open every connection now, as the
        # other systems' pools do.
        conns = [await self.engine.connect() for _ in range(self.size)]
        await asyncio.gather(*(c.close() for c in conns))

    async def close(self) -> None:
        await self.engine.dispose()

    def new_rows(self, first: int, count: int) -> Any:
        rows = [product_row(i) for i in range(first, first + count)]
        return _dicts(rows, INSERT_COLUMNS)

    def upsert_rows(self, count: int) -> Any:
        return _dicts([(*product_row(i, 1), i) for i in range(1, count + 1)], FIELDS)


class SqlaCore(_Sqla):
    """SQLAlchemy Core: `engine.connect()`, `select(table)`, rows as they come."""

    name = "sqla-core"

    async def held_get(self, ids: Sequence[int]) -> None:
        async with self.engine.connect() as conn:
            for i in ids:
                (await conn.execute(select(PRODUCT).where(PRODUCT.c.id == i))).one()

    async def get(self, ids: Sequence[int]) -> None:
        for i in ids:
            async with self.engine.connect() as conn:
                (await conn.execute(select(PRODUCT).where(PRODUCT.c.id == i))).one()

    async def fetch(self, start: int, limit: int) -> int:
        query = select(PRODUCT).where(PRODUCT.c.id > start).order_by(PRODUCT.c.id).limit(limit)
        async with self.engine.connect() as conn:
            return len((await conn.execute(query)).all())

    async def insert(self, rows: Any) -> None:
        # executemany: SQLAlchemy batches it into multi-row INSERTs (insertmanyvalues).
        async with self.engine.begin() as conn:
            await conn.execute(insert(INSERTED), rows)

    async def upsert(self, rows: Any) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(_upsert(UPSERTED), rows)

    async def savepoints(self, rows: Any) -> None:
        for row in rows:
            async with self.engine.begin() as conn:
                (await conn.execute(insert(TXN).returning(TXN), row)).one()
                try:
                    async with conn.begin_nested():
                        await conn.execute(insert(TXN).returning(TXN), row)
                except IntegrityError:
                    pass

    async def stream(self, prefetch: int, peak: Peak) -> int:
        n = 0
        async with self.engine.connect() as conn:
            result = await conn.stream(select(PRODUCT).execution_options(yield_per=prefetch))
            async for _ in result:
                n += 1
                if n % EVERY == 0 and peak.sample(n):
                    break
        return n


class SqlaOrm(_Sqla):
    """SQLAlchemy ORM: `async_sessionmaker`, `DeclarativeBase` mapped classes."""

    name = "sqla-orm"

    async def open(self) -> None:
        await super().open()
        self.session = async_sessionmaker(self.engine, expire_on_commit=False)

    async def held_get(self, ids: Sequence[int]) -> None:
        # One session holds one connection; every id differs, so each get queries.
        async with self.session() as s:
            for i in ids:
                if await s.get(SaProduct, i) is None:
                    raise LookupError(i)

    async def get(self, ids: Sequence[int]) -> None:
        session = self.session
        for i in ids:
            async with session() as s:
                if await s.get(SaProduct, i) is None:
                    raise LookupError(i)

    async def fetch(self, start: int, limit: int) -> int:
        query = select(SaProduct).where(SaProduct.id > start).order_by(SaProduct.id).limit(limit)
        async with self.session() as s:
            return len((await s.scalars(query)).all())

    async def insert(self, rows: Any) -> None:
        # The ORM's bulk INSERT: one statement, batched (insertmanyvalues).
        async with self.session() as s, s.begin():
            await s.execute(insert(SaInsert), rows)

    async def upsert(self, rows: Any) -> None:
        async with self.session() as s, s.begin():
            # The ORM's bulk upsert: pg_insert on the mapped class, a list of dicts.
            await s.execute(_upsert(SaUpsert), rows)

    async def savepoints(self, rows: Any) -> None:
        for row in rows:
            async with self.session() as s, s.begin():
                s.add(SaTxn(**row))
                try:
                    async with s.begin_nested():
                        s.add(SaTxn(**row))
                except IntegrityError:
                    pass

    async def stream(self, prefetch: int, peak: Peak) -> int:
        n = 0
        query = select(SaProduct).execution_options(yield_per=prefetch)
        async with self.session() as s:
            async for _ in await s.stream_scalars(query):
                n += 1
                if n % EVERY == 0 and peak.sample(n):
                    break
        return n
