"""Alembic environment: async, on SQLAlchemy's asyncpg dialect (one driver).

The schema's one source of truth is the `Table` mappings: `target_metadata`
is built from the tables that ``tables`` in alembic.ini names, so
``alembic check`` and ``--autogenerate`` compare the database with them.

The DSN comes from ``config.attributes["dsn"]`` (set by tests and the
``repo db`` commands), else ``-x dsn=...``, else the same resolution as
``Database.connect()``: ``$DATABASE_URL``, else the embedded server.

Every run first sets ``lock_timeout`` (``repo db ... --lock-timeout``, else
``-x lock_timeout=...``, else ``$REPO_MIGRATION_LOCK_TIMEOUT``, else
``lock_timeout`` in alembic.ini, else 5s), so a migration that cannot get its
lock fails instead of queueing every query behind it.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from repo._dsn import resolve_dsn
from repo._migrate import compare_options, engine, lock_timeout
from repo._migration_metadata import load_tables, metadata

config = context.config
x_args = context.get_x_argument(as_dictionary=True)

if config.config_file_name and not config.attributes.get("repo_command"):
    # Plain `alembic ...`: log as alembic.ini says; `repo db` sets up its own.
    fileConfig(config.config_file_name, disable_existing_loggers=False)

tables = config.attributes.get("tables") or load_tables(config.get_main_option("tables") or "")
target_metadata = metadata(tables)
options = compare_options(tables)
timeout = lock_timeout(
    config.attributes.get("lock_timeout"),
    x_args.get("lock_timeout"),
    fallback=config.get_main_option("lock_timeout"),
)


def _dsn() -> str:
    given = config.attributes.get("dsn") or x_args.get("dsn")
    return resolve_dsn(given or config.get_main_option("sqlalchemy.url") or None)


def _migrate() -> None:
    with context.begin_transaction():
        # Session-wide (not LOCAL) so that it holds for every step, even
        # after a revision commits early in an autocommit block.
        context.execute(f"SET lock_timeout = '{timeout}'")
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(
        dialect_name="postgresql",
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **options,
    )
    _migrate()


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, **options)
    _migrate()


async def run_migrations_online() -> None:
    eng = engine(_dsn())
    try:
        async with eng.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await eng.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
