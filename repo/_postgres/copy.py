"""COPY into a table, with its failures told apart and named.

A COPY can fail on the server (a constraint, a value it refuses), on the
connection, in the caller's iterable of entities, or in the driver, which
encodes each record as the COPY reads it. The last is a value the checks let
through and a codec of the connection's refused: a `DataError` naming the
table and entity #n, the connection still usable.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from time import perf_counter
from typing import Any, cast

import asyncpg

from repo._bulk import failed_record, recheck, screens
from repo._checks import shown
from repo._columns import quote
from repo._mapping import Table
from repo._observe import Observer
from repo.errors import DataError, InvalidQuery, RepoError

from .connection import DRIVER_ERRORS, Conn, gone
from .errors import translate
from .run import call

__all__ = ["blame", "copy", "rowcount", "through_staging"]


def rowcount(status: str) -> int:
    """The row count of a command tag such as ``DELETE 3`` or ``INSERT 0 5``."""
    tail = status.rpartition(" ")[2]
    return int(tail) if tail.isdigit() else 0


async def copy(
    conn: Conn,
    table: Table[Any],
    name: str,
    columns: Sequence[str],
    rows: Any,
    *,
    schema: str | None,
    obs: Observer | None = None,
    checked: Any = None,
) -> int:
    """COPY `rows` (records of `columns`) into `name`; the number of rows stored.

    `checked` is the generator from `records` that `rows` reads (if not
    `rows` itself): when the driver cannot encode a record, it says which
    entity that was, and the error is a `DataError` naming it.
    """
    start = perf_counter()
    try:
        status = await conn.copy_records_to_table(
            name, records=rows, columns=list(columns), schema_name=schema
        )
    except InvalidQuery:
        raise
    except Exception as exc:
        if obs is not None:
            obs.statement(
                "copy", _copy_sql(name, columns, schema), (), perf_counter() - start, error=exc
            )
        failed = None if isinstance(exc, RepoError) else failed_record(checked or rows)
        if failed is not None and _encoding(exc) and not gone(conn):
            raise unencodable(table, columns, *failed, exc) from exc
        err = translate(exc, closed=gone(conn), context=f"COPY into {table.name}", table=table)
        if err is exc:
            raise
        raise err from exc
    if obs is not None:
        elapsed = perf_counter() - start
        obs.statement("copy", _copy_sql(name, columns, schema), (), elapsed, result=status)
    return rowcount(status)


def _encoding(exc: Exception) -> bool:
    """Whether `exc`, raised while a record was being sent, is the driver failing to encode it.

    Its own kind of `DataError`, or any error that is not the driver's (a
    codec's TypeError or ValueError); never the server's answer or a
    broken connection.
    """
    return isinstance(exc, asyncpg.exceptions.DataError) or not isinstance(exc, DRIVER_ERRORS)


def unencodable(
    table: Table[Any], columns: Sequence[str], n: int, record: tuple[Any, ...], exc: Exception
) -> DataError:
    """The `DataError` for entity #n, whose `record` (values of `columns`) the driver could
    not encode: a codec of the connection's (set by an ``init`` hook, or the
    driver's own with ``json_codecs=False``) refused a value the checks let through."""
    by_column = {c.column: c for c in table.columns}
    values = dict(zip(columns[-len(record) :], record, strict=True))
    suspects = [
        by_column[c].field
        for c, v in values.items()
        if c in by_column and v is not None and by_column[c].kind not in _DRIVER_KINDS
    ]
    which = (
        f"its {table.name}.{suspects[0]} = {shown(values[table.column_of(suspects[0])])}"
        if len(suspects) == 1
        else f"one of its values ({', '.join(f'{table.name}.{f}' for f in suspects)})"
        if suspects
        else "one of its values"
    )
    msg = (
        f"COPY into {table.name}: entity #{n} could not be encoded: {which} "
        f"({type(exc).__name__}: {exc}); check the codecs the connection's init hook sets "
        "(COPY needs binary ones), or the value's type"
    )
    return DataError(msg)


# The kinds the driver's own codecs encode, after the checks accepted the
# value: a failure to encode one of these is not expected.
_DRIVER_KINDS = frozenset(
    {"text", "int8", "int4", "int2", "numeric", "float8", "float4", "bool", "timestamptz",
     "timestamp", "date", "time", "interval", "uuid", "bytea"}
)  # fmt: skip


def _copy_sql(name: str, columns: Sequence[str], schema: str | None) -> str:
    """The COPY statement asyncpg sends, for the log (the data itself is never shown)."""
    target = quote(name) if schema is None else f"{quote(schema)}.{quote(name)}"
    return f"COPY {target} ({', '.join(quote(c) for c in columns)}) FROM STDIN (FORMAT binary)"


@contextmanager
def blame(
    table: Table[Any], entities: object, positions: tuple[int, ...], required: tuple[int, ...]
) -> Iterator[None]:
    """Around a load of `entities` that `records` only screened: if it fails, the
    full check's error for the entity to blame, if there is one (else the load's)."""
    try:
        yield
    except Exception:
        if screens(entities):
            recheck(table, cast("Sequence[Any]", entities), positions, required)
        raise


async def through_staging(
    conn: Conn,
    table: Table[Any],
    name: str,
    *,
    create: str,
    columns: Sequence[str],
    rows: Any,
    sql: str,
    obs: Observer | None,
    checked: Any = None,
) -> tuple[int, list[asyncpg.Record]]:
    """Make the temporary table `name` (`create`), COPY `rows` (records of `columns`)
    into it, run `sql`, which reads it, and drop it: the rows copied, and `sql`'s rows.

    In a transaction: `create` makes it ON COMMIT DROP, should anything fail before the DROP.
    """
    await call(conn, "execute", create, (), obs, table=table)
    given = await copy(conn, table, name, columns, rows, schema=None, obs=obs, checked=checked)
    result: list[asyncpg.Record] = await call(conn, "fetch", sql, (), obs, table=table)
    await call(conn, "execute", f"DROP TABLE {quote(name)}", (), obs, table=table)
    return given, result
