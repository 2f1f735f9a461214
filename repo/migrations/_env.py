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
import copy
from collections.abc import Iterable
from logging.config import fileConfig
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from repo._columns import quote
from repo._mapping import Table
from repo._postgres.dsn import resolve_dsn

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
        "process_revision_directives": enum_types,
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


def _enum_of(column: Any) -> Any:
    type_ = getattr(column, "type", None)
    if isinstance(type_, postgresql.ENUM) and type_.name:
        return type_
    return None


def _name(type_: Any) -> tuple[str | None, str]:
    return (type_.schema, type_.name)


def _qualified(name: tuple[str | None, str]) -> str:
    schema, bare = name
    return f"{quote(schema)}.{quote(bare)}" if schema else quote(bare)


def _create_type(type_: Any) -> ops.ExecuteSQLOp:
    labels = ", ".join("'" + str(label).replace("'", "''") + "'" for label in type_.enums)
    return ops.ExecuteSQLOp(f"CREATE TYPE {_qualified(_name(type_))} AS ENUM ({labels})")


def _not_created(column: Any) -> None:
    """Make `column`'s create_table leave its enum type alone (it exists already)."""
    type_ = copy.copy(column.type)
    type_.create_type = False
    column.type = type_


def _upgrade_enums(
    operations: list[Any], available: set[tuple[str | None, str]], created: list[Any]
) -> list[Any]:
    """`operations`, each enum type created exactly once, before its first use.

    ``create_table`` creates the enum types of its columns and fails if one
    exists (an earlier revision's, or an earlier table's in this one);
    ``add_column`` never creates one. Types created are added to `created`.
    """
    result: list[Any] = []
    for op in operations:
        if isinstance(op, ops.ModifyTableOps):
            op.ops = _upgrade_enums(op.ops, available, created)
        elif isinstance(op, ops.CreateTableOp):
            for column in op.columns:
                type_ = _enum_of(column)
                if type_ is None:
                    continue
                if _name(type_) in available:
                    _not_created(column)
                else:
                    available.add(_name(type_))
                    created.append(_name(type_))
        elif isinstance(op, ops.AddColumnOp):
            type_ = _enum_of(op.column)
            if type_ is not None and _name(type_) not in available:
                available.add(_name(type_))
                created.append(_name(type_))
                result.append(_create_type(type_))
        result.append(op)
    return result


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


def enum_types(context: Any, revision: Any, directives: list[Any]) -> None:
    """Autogenerate hook: each enum type created once before its first use, dropped on the way down.

    Alembic's autogenerate leaves PostgreSQL enum types to SQLAlchemy, which
    creates one with each ``create_table`` that uses it (failing when it
    exists), never with ``add_column``, and never drops one: head → base →
    head then fails with "type ... already exists". So the upgrade creates
    each new type once, before the first table or column that uses it, and
    the downgrade drops the types its upgrade created, after their tables.
    """
    script = directives[0] if directives else None
    upgrade_ops: Any = getattr(script, "upgrade_ops", None)
    downgrade_ops: Any = getattr(script, "downgrade_ops", None)
    if upgrade_ops is None or downgrade_ops is None:
        return
    created: list[tuple[str | None, str]] = []
    upgrade_ops.ops = _upgrade_enums(upgrade_ops.ops, _existing_enums(context), created)
    for name in created:
        downgrade_ops.ops.append(ops.ExecuteSQLOp(f"DROP TYPE IF EXISTS {_qualified(name)}"))
