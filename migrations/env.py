"""Alembic's environment for this project's migrations.

The schema's one source of truth is the `Table` mappings that ``tables`` in
alembic.ini names: autogenerate and ``repo db check`` compare the database
with them. `run_migrations` resolves the database like
``Database.connect()`` (``$DATABASE_URL``, else the embedded server; ``repo db
--dsn`` or ``-x dsn=...`` win) and sets a lock timeout first.
"""

from alembic import context

from repo.migrations import run_migrations

run_migrations(context)
