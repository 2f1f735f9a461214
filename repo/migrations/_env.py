"""What a project's ``migrations/env.py`` runs: `run_migrations`.

Alembic runs ``env.py`` for every command; `repo db init` writes one that
calls `run_migrations(context)`, and the catalog's own does the same. It
builds the target metadata from the `Table` mappings that ``tables`` in
``alembic.ini`` names, resolves the database like `Database.connect()`, sets a
lock timeout, and runs the migrations online (asyncpg, through SQLAlchemy's
asyncpg dialect) or offline (``--sql``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from logging.config import fileConfig
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from repo._dsn import resolve_dsn
from repo._mapping import Table, quote

from ._commands import compare_options, engine, excluded_objects, lock_timeout
from ._metadata import load_tables, metadata

__all__ = ["run_migrations"]


def run_migrations(context: Any, *, tables: Iterable[Table[Any]] | None = None) -> None:
    """Run Alembic's migrations for the mappings `tables` (default: ``tables`` in alembic.ini).

    `context` is ``alembic.context``, as ``env.py`` imports it. The database
    is ``config.attributes["dsn"]`` (set by the ``repo db`` commands), else
    ``-x dsn=...``, else ``sqlalchemy.url`` in alembic.ini, else the same
    resolution as `Database.connect()`: ``$DATABASE_URL``, else the embedded
    server. Every run first sets ``lock_timeout`` (``--lock-timeout``, else
    ``-x lock_timeout=...``, else ``$REPO_MIGRATION_LOCK_TIMEOUT``, else
    ``lock_timeout`` in alembic.ini, else 5s), so that a migration that
    cannot get its lock fails instead of queueing every query behind it.
    """
    config = context.config
    x_args = context.get_x_argument(as_dictionary=True)
    if config.config_file_name and not config.attributes.get("repo_command"):
        # Plain `alembic ...`: log as alembic.ini says; `repo db` sets up its own.
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    mapped = tuple(
        tables
        if tables is not None
        else config.attributes.get("tables") or load_tables(config.get_main_option("tables") or "")
    )
    target = metadata(mapped)
    options = {
        **compare_options(mapped, exclude=excluded_objects(config.get_main_option("exclude"))),
        "process_revision_directives": drop_created_enums,
    }
    timeout = lock_timeout(
        config.attributes.get("lock_timeout"),
        x_args.get("lock_timeout"),
        fallback=config.get_main_option("lock_timeout"),
    )

    def migrate() -> None:
        with context.begin_transaction():
            # Session-wide (not LOCAL) so that it holds for every step, even
            # after a revision commits early in an autocommit block.
            context.execute(f"SET lock_timeout = '{timeout}'")
            context.run_migrations()

    if context.is_offline_mode():
        context.configure(
            dialect_name="postgresql",
            target_metadata=target,
            literal_binds=True,
            dialect_opts={"paramstyle": "named"},
            **options,
        )
        migrate()
        return

    def run(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=target, **options)
        migrate()

    async def online() -> None:
        given = config.attributes.get("dsn") or x_args.get("dsn")
        eng = engine(resolve_dsn(given or config.get_main_option("sqlalchemy.url") or None))
        try:
            async with eng.connect() as connection:
                await connection.run_sync(run)
        finally:
            await eng.dispose()

    asyncio.run(online())


def _enums(operations: Sequence[Any]) -> dict[tuple[str | None, str], None]:
    """The enum types the columns that `operations` create or add use, in order."""
    found: dict[tuple[str | None, str], None] = {}
    for op in operations:
        columns: Iterable[Any] = ()
        if isinstance(op, ops.CreateTableOp):
            columns = (c for c in op.columns if isinstance(c, sa.Column))
        elif isinstance(op, ops.AddColumnOp):
            columns = (op.column,)
        elif isinstance(op, ops.ModifyTableOps):
            found.update(_enums(op.ops))
        for column in columns:
            if isinstance(column.type, postgresql.ENUM | sa.Enum) and column.type.name:
                found[(column.type.schema, column.type.name)] = None
    return found


def _existing_enums(context: Any) -> set[tuple[str | None, str]]:
    connection = getattr(context, "connection", None)
    if connection is None:
        return set()
    rows = connection.execute(
        sa.text(
            "SELECT n.nspname, t.typname FROM pg_type t "
            "JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typtype = 'e'"
        )
    )
    found: set[tuple[str | None, str]] = set()
    for schema, name in rows:
        found.add((schema, name))
        if schema == "public":
            found.add((None, name))
    return found


def drop_created_enums(context: Any, revision: Any, directives: list[Any]) -> None:
    """Autogenerate hook: the downgrade drops the enum types its upgrade created.

    Alembic's autogenerate creates a PostgreSQL enum type with the first table
    that uses it, but its downgrade drops only the table, so a later upgrade
    fails with "type ... already exists". The types the upgrade's new tables
    and columns use, and which the database does not have yet, are dropped at
    the end of the downgrade.
    """
    script = directives[0] if directives else None
    upgrade_ops: Any = getattr(script, "upgrade_ops", None)
    downgrade_ops: Any = getattr(script, "downgrade_ops", None)
    if upgrade_ops is None or downgrade_ops is None:
        return
    created = [t for t in _enums(upgrade_ops.ops) if t not in _existing_enums(context)]
    for schema, name in created:
        qualified = f"{quote(schema)}.{quote(name)}" if schema else quote(name)
        downgrade_ops.ops.append(ops.ExecuteSQLOp(f"DROP TYPE IF EXISTS {qualified}"))
