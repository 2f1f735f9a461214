"""The SQLAlchemy 2 ORM side: declarative classes on the bench's tables, an AsyncEngine.

The only bench module that imports SQLAlchemy (the project keeps it out of
``repo/``; here it is the thing being compared against).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import asyncpg
from sqlalchemy import BigInteger, DateTime, Identity, Numeric, Text, func, pool
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["SaInsert", "SaProduct", "SaTxn", "engine", "sessions"]


class Base(DeclarativeBase):
    pass


class _ProductColumns:
    name: Mapped[str] = mapped_column(Text)
    brand_id: Mapped[int]
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class SaProduct(_ProductColumns, Base):
    __tablename__ = "bench_product"


class SaInsert(_ProductColumns, Base):
    __tablename__ = "bench_insert"


class SaTxn(Base):
    __tablename__ = "bench_txn"

    name: Mapped[str] = mapped_column(Text, unique=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)


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


def sessions(eng: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(eng, expire_on_commit=False)
