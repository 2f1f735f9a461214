"""Updating many rows by key in one statement (the changed children of an aggregate).

The new values travel as one array per column, ``unnest($1::type[], ...)``,
in one round trip. A table with an array, json or jsonb column cannot go
that way (an array of arrays is one flat array to unnest, and a JSON list
would be taken for an array of values): its rows are COPied into a
temporary table, in the binary format, which carries every type, and the
UPDATE reads them from there (four round trips, whatever the number of rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from repo._columns import quote
from repo._mapping import Table

from .copy import through_staging
from .sql import Statements
from .sql_update import assignments

__all__ = ["update_many_rows", "update_many_sql"]


def update_many_sql(table: Table[Any], fields: Sequence[str], source: str | None = None) -> str:
    """One UPDATE of many rows, setting `fields` as `update` does (version bumped and
    matched, a generated None kept), from `source` (a table of columns ``_v0``, ``_v1``,
    ..., one per field in field order) or else from arrays ($1, $2, ...: the same)."""
    given = {c.field: f"_v._v{i}" for i, c in enumerate(table.columns)}
    sets = assignments(table, fields, given.__getitem__, row="_t.")
    if not sets:
        first = quote(table.key_columns[0])
        sets.append(f"{first} = _t.{first}")
    match = [f"_t.{quote(table.column_of(f))} = {given[f]}" for f in table.key_fields]
    if table.version is not None:
        match.append(f"_t.{quote(table.column_of(table.version))} = {given[table.version]}")
    if source is None:
        arrays = ", ".join(f"${n}::{c.sql_type}[]" for n, c in enumerate(table.columns, 1))
        names = ", ".join(f"_v{i}" for i in range(len(table.columns)))
        source = f"unnest({arrays}) AS _v({names})"
    else:
        source = f"{source} AS _v"
    returning = ", ".join(f"_t.{quote(c.column)}" for c in table.columns)
    return (
        f"UPDATE {table.qualified_name} AS _t SET {', '.join(sets)} "
        f"FROM {source} WHERE {' AND '.join(match)} RETURNING {returning}"
    )


def _staging_sql(table: Table[Any], name: str) -> str:
    columns = ", ".join(f"{quote(c.column)} AS _v{i}" for i, c in enumerate(table.columns))
    return (
        f"CREATE TEMP TABLE {quote(name)} ON COMMIT DROP AS "
        f"SELECT {columns} FROM {table.qualified_name} WITH NO DATA"
    )


async def update_many_rows(
    runner: Any, st: Statements[Any], entities: Sequence[Any]
) -> list[asyncpg.Record]:
    """The rows `entities` (checked, keys filled, two or more) update, as stored.

    A row whose key (or version) matched none is not among them. `runner`: the
    session's statements (`Runner`), in its transaction if it has one.
    """
    table = st.table
    everything = tuple(range(len(table.columns)))
    values = [table.values(e) for e in entities]
    if st.can_unnest(everything):
        sql = st._cached(("update_many",), lambda: update_many_sql(table, st.update_fields))
        rows: list[asyncpg.Record] = await runner.fetch(
            sql, [list(c) for c in zip(*values, strict=True)], table
        )
        return rows
    name = f"{st.staging_name}_u"
    source = quote(name)
    sql = st._cached(
        ("update_many", source), lambda: update_many_sql(table, st.update_fields, source)
    )
    columns = [f"_v{i}" for i in everything]
    async with runner.atomic() as conn:
        _, rows = await through_staging(
            conn,
            table,
            name,
            create=_staging_sql(table, name),
            columns=columns,
            rows=values,
            sql=sql,
            obs=runner.obs,
        )
    return rows
