"""Tables of the tests' own (not the catalog's), made on PostgreSQL from their mappings.

The DDL is what the migrations' metadata renders (``repo.migrations.metadata``),
so a test on these tables also pins what ``repo db revision --autogenerate``
would create: enum types, composite primary keys, foreign keys, CHECK
constraints and (partial, unique) indexes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import CreateEnumType
from sqlalchemy.schema import CreateIndex, CreateTable

from repo import Table
from repo.migrations import metadata
from tests.conftest import _admin

__all__ = ["create_statements", "drop_statements", "own_schema", "truncate"]


def _enums(meta: sa.MetaData) -> list[postgresql.ENUM]:
    found: dict[str, postgresql.ENUM] = {}
    for table in meta.sorted_tables:
        for column in table.columns:
            kind: Any = column.type
            kind = getattr(kind, "item_type", kind)
            if isinstance(kind, postgresql.ENUM) and kind.name:
                found.setdefault(kind.name, kind)
    return list(found.values())


def create_statements(tables: Sequence[Table[Any]]) -> list[str]:
    """CREATE TYPE, TABLE and INDEX statements for `tables`, as the migrations make them."""
    meta = metadata(tables)
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    found = [str(CreateEnumType(e).compile(dialect=dialect)) for e in _enums(meta)]
    for table in meta.sorted_tables:
        found.append(str(CreateTable(table).compile(dialect=dialect)))
        found += [str(CreateIndex(i).compile(dialect=dialect)) for i in table.indexes]
    return found


def drop_statements(tables: Sequence[Table[Any]]) -> list[str]:
    meta = metadata(tables)
    names = ", ".join(f'"{t.name}"' for t in reversed(meta.sorted_tables))
    enums = [f'DROP TYPE IF EXISTS "{e.name}"' for e in _enums(meta)]
    return [f"DROP TABLE IF EXISTS {names} CASCADE", *enums]


@contextmanager
def own_schema(dsn: str, tables: Sequence[Table[Any]]) -> Iterator[str]:
    """`tables` made in the database at `dsn` (dropped first, and again at exit)."""
    asyncio.run(_admin(dsn, *drop_statements(tables), *create_statements(tables)))
    try:
        yield dsn
    finally:
        asyncio.run(_admin(dsn, *drop_statements(tables)))


async def truncate(dsn: str | None, tables: Sequence[Table[Any]]) -> None:
    """Empty `tables` on PostgreSQL (`dsn`); nothing to do in memory (None)."""
    if dsn is not None:
        names = ", ".join(f'"{t.name}"' for t in tables)
        await _admin(dsn, f"TRUNCATE {names} RESTART IDENTITY CASCADE")
