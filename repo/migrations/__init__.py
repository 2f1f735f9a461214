"""The bridge between `repo`'s mappings and Alembic, for a project's migrations.

A project made with ``repo db init`` has an ``env.py`` that calls
`run_migrations(context)`; the ``repo db`` commands call `run`. The rest is
there for a project's own scripts and tests:

- `metadata(tables)`: the SQLAlchemy ``MetaData`` Alembic compares with the
  database, built from `Table` mappings (the one source of truth);
- `load_tables("module:NAME ...")`: the mappings alembic.ini names;
- `upgrade(dsn, revision)`, `drift(dsn, tables)`: migrate a database, or say
  how its schema differs from the mappings;
- `init_project(directory, tables=...)`: what ``repo db init`` writes.

This module imports SQLAlchemy and Alembic (the ``migrations`` extra); the
rest of `repo` never does.
"""

from ._commands import (
    DEFAULT_LOCK_TIMEOUT,
    ENV_LOCK_TIMEOUT,
    compare_options,
    describe,
    drift,
    engine,
    excluded_objects,
    lock_timeout,
    run,
    upgrade,
)
from ._env import enum_types, run_migrations
from ._init import init_project
from ._metadata import NAMING_CONVENTION, load_tables, metadata, sql_type

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "ENV_LOCK_TIMEOUT",
    "NAMING_CONVENTION",
    "compare_options",
    "describe",
    "drift",
    "engine",
    "enum_types",
    "excluded_objects",
    "init_project",
    "load_tables",
    "lock_timeout",
    "metadata",
    "run",
    "run_migrations",
    "sql_type",
    "upgrade",
]
