"""The SQL of upserts: INSERT ... ON CONFLICT ... DO UPDATE of the rows that changed.

A conflicting row whose columns to update already hold the values given is
left untouched (``WHERE ROW(...) IS DISTINCT FROM ROW(EXCLUDED...)``: no
write, no new row version, no version bump); json, which has no equality,
is compared by its text. Such a row is not returned by the INSERT, so the
statements that must return every row read it from the table.
"""

from __future__ import annotations

from typing import Any

from repo._columns import quote
from repo._mapping import Table

__all__ = ["by_values_sql", "column_list", "upsert_all_sql", "upsert_one_sql", "upsert_sql"]


def column_list(table: Table[Any], positions: tuple[int, ...]) -> str:
    """The quoted column list of the fields at `positions`."""
    return ", ".join(quote(table.columns[i].column) for i in positions)


def _compared(table: Table[Any], prefix: str, field: str) -> str:
    """The column of `field` as an upsert compares it: json by its text (it has no =)."""
    spec = table.field(field)
    column = f"{prefix}{quote(spec.column)}"
    return f"{column}::text" if spec.kind == "json" and not spec.array else column


def upsert_sql(
    table: Table[Any],
    positions: tuple[int, ...],
    on: tuple[str, ...],
    update: tuple[str, ...],
    *,
    source: str | None = None,
    returning: str | None = None,
) -> str:
    """INSERT of the fields at `positions` ... ON CONFLICT (`on`) DO UPDATE SET `update`.

    A conflicting row whose `update` columns already hold the values given
    is left untouched and is not returned. `source` is a table to INSERT
    ... SELECT from (ordered by its ``_repo_ord``) instead of VALUES;
    `returning` overrides RETURNING.
    """
    t = table.qualified_name
    cols = column_list(table, positions)
    if source is None:
        params = ", ".join(f"${n}" for n in range(1, len(positions) + 1))
        body = f"VALUES ({params})"
    else:
        body = f"SELECT {cols} FROM {source} ORDER BY _repo_ord"
    target = ", ".join(quote(table.column_of(f)) for f in on)
    changed = [f for f in update if f != table.version]
    sets = [f"{quote(table.column_of(f))} = EXCLUDED.{quote(table.column_of(f))}" for f in changed]
    if table.version is not None:
        v = quote(table.column_of(table.version))
        sets.append(f"{v} = {t}.{v} + 1")
    if changed:
        mine = ", ".join(_compared(table, f"{t}.", f) for f in changed)
        theirs = ", ".join(_compared(table, "EXCLUDED.", f) for f in changed)
        where = f"ROW({mine}) IS DISTINCT FROM ROW({theirs})"
    else:
        # Nothing to change on conflict: every conflicting row is unchanged
        # (still locked, as DO UPDATE does).
        first = quote(table.column_of(on[0]))
        sets = [f"{first} = EXCLUDED.{first}"]
        where = "false"
    ret = returning if returning is not None else table.select_list
    return (
        f"INSERT INTO {t} ({cols}) {body} "
        f"ON CONFLICT ({target}) DO UPDATE SET {', '.join(sets)} WHERE {where} "
        f"RETURNING {ret}"
    )


def upsert_one_sql(
    table: Table[Any], positions: tuple[int, ...], on: tuple[str, ...], update: tuple[str, ...]
) -> str:
    """`upsert_sql` of one row that returns the stored row, changed or not, in one statement.

    The INSERT returns the row it inserted or updated; when it left the
    conflicting row untouched, the row is read by its `on` values.
    """
    cols = table.select_list
    at = {table.columns[i].field: n for n, i in enumerate(positions, 1)}
    match = " AND ".join(f"{quote(table.column_of(f))} = ${at[f]}" for f in on)
    return (
        f"WITH written AS ({upsert_sql(table, positions, on, update)}) "
        f"SELECT {cols} FROM written UNION ALL "
        f"SELECT {cols} FROM {table.qualified_name} WHERE {match} "
        "AND NOT EXISTS (SELECT 1 FROM written)"
    )


def by_values_sql(table: Table[Any], fields: tuple[str, ...]) -> str:
    """SELECT of the row whose `fields` equal $1, $2, ..."""
    match = " AND ".join(f"{quote(table.column_of(f))} = ${n}" for n, f in enumerate(fields, 1))
    return f"SELECT {table.select_list} FROM {table.qualified_name} WHERE {match}"


def upsert_all_sql(
    table: Table[Any],
    positions: tuple[int, ...],
    on: tuple[str, ...],
    update: tuple[str, ...],
    source: str,
) -> str:
    """`upsert_sql` from `source` returning every row given, as stored, in `source`'s order.

    Rows inserted or updated come from the INSERT's RETURNING; rows left
    unchanged from the table (the statement's snapshot has them, and not
    the rows it writes).
    """
    t = table.qualified_name
    columns = [quote(c.column) for c in table.columns]

    def listed(prefix: str) -> str:
        return ", ".join(f"{prefix}.{c}" for c in columns)

    def joined(left: str) -> str:
        return " AND ".join(
            f"{left}.{quote(table.column_of(f))} = s.{quote(table.column_of(f))}" for f in on
        )

    return (
        f"WITH written AS ({upsert_sql(table, positions, on, update, source=source)}) "
        f"SELECT {listed('r')} FROM ("
        f"SELECT s._repo_ord, {listed('w')} FROM written w JOIN {source} s ON "
        f"{joined('w')} UNION ALL "
        f"SELECT s._repo_ord, {listed('o')} FROM {source} s JOIN {t} o ON {joined('o')} "
        f"WHERE NOT EXISTS (SELECT 1 FROM written w WHERE {joined('w')})"
        ") r ORDER BY r._repo_ord"
    )
