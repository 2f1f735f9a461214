"""Alembic environment: async, on SQLAlchemy's asyncpg dialect (one driver).

The DSN comes from ``config.attributes["dsn"]`` (set by tests and the
``repo db`` commands), else ``-x dsn=...``, else the same resolution as
``Database.connect()``: ``$DATABASE_URL``, else the embedded server.
"""

from __future__ import annotations

import asyncio

import asyncpg
from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from repo._dsn import resolve_dsn

config = context.config
target_metadata = None


def _dsn() -> str:
    given = config.attributes.get("dsn") or context.get_x_argument(as_dictionary=True).get("dsn")
    return resolve_dsn(given or config.get_main_option("sqlalchemy.url") or None)


def run_migrations_offline() -> None:
    context.configure(
        dialect_name="postgresql",
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    dsn = _dsn()

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(dsn)

    # The engine connects through asyncpg with the very DSN repo uses, so
    # sockets, query options and passwords need no translation into a URL.
    engine = create_async_engine(
        "postgresql+asyncpg://", async_creator=connect, poolclass=pool.NullPool
    )
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
