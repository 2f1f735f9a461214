"""SQLAlchemy `MetaData` built from `Table` mappings: what Alembic compares against.

The mappings are the single source of truth for table structure; this module
translates them for Alembic's autogenerate and ``alembic check``. It imports
SQLAlchemy, so only ``migrations/env.py``, ``repo/_migrate.py`` and tests
import it: never the runtime modules.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import conv

from repo._columns import ColumnSpec, server_name
from repo._mapping import Table
from repo._types import enum_class
from repo.errors import ConfigurationError, InvalidQuery

__all__ = ["NAMING_CONVENTION", "load_tables", "metadata", "sql_type"]


def _check_name(constraint: Any, table: sa.Table) -> str:
    """``ck_<table>_<name>``, leaving a name that already has the prefix as it is.

    So that both a mapping's `Check` (named in full by `Table`) and a
    revision's ``op.create_check_constraint("fee_not_negative", ...)`` get
    one prefix, never ``ck_loan_ck_loan_...``.
    """
    name = constraint.name
    if not isinstance(name, str) or not name:
        msg = f"a CHECK constraint on {table.name} needs a name (ck_{table.name}_<name>)"
        raise InvalidQuery(msg)
    prefix = f"ck_{table.name}_"
    return str(name) if str(name).startswith(prefix) else prefix + str(name)


# The same names `Table` gives its constraints, for anything a revision
# creates without naming it in full.
NAMING_CONVENTION: Mapping[str, Any] = {
    "pk": "pk_%(table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    # SQLAlchemy applies a convention to a named constraint only when the
    # convention mentions "constraint_name": this token's name does.
    "ck": "%(ck_constraint_name)s",
    "ck_constraint_name": _check_name,
}

_PLAIN: Mapping[str, Callable[[], sa.types.TypeEngine[Any]]] = {
    "text": sa.Text,
    "bigint": sa.BigInteger,
    "int8": sa.BigInteger,
    "integer": sa.Integer,
    "int": sa.Integer,
    "int4": sa.Integer,
    "smallint": sa.SmallInteger,
    "int2": sa.SmallInteger,
    "boolean": sa.Boolean,
    "bool": sa.Boolean,
    "double precision": postgresql.DOUBLE_PRECISION,
    "float8": postgresql.DOUBLE_PRECISION,
    "real": postgresql.REAL,
    "float4": postgresql.REAL,
    "date": sa.Date,
    "interval": postgresql.INTERVAL,
    "uuid": postgresql.UUID,
    "jsonb": postgresql.JSONB,
    "json": postgresql.JSON,
    "bytea": postgresql.BYTEA,
}

_NUMERIC = re.compile(r"^(?:numeric|decimal)(?:\((\d+)(?:,(\d+))?\))?$")
_VARCHAR = re.compile(r"^(?:varchar|character varying)(?:\((\d+)\))?$")
_TIMESTAMP = re.compile(
    r"^(timestamptz|timestamp)(?:\((\d)\))?( with time zone| without time zone)?$"
)
_TIME = re.compile(r"^(timetz|time)(?:\((\d)\))?( with time zone| without time zone)?$")


def _normal(sql: str) -> str:
    text = " ".join(sql.lower().split())
    return re.sub(r"\s*([(),])\s*", r"\1", text)


def _builtin(sql: str) -> sa.types.TypeEngine[Any] | None:
    text = _normal(sql)
    if text.endswith("[]"):
        element = _builtin(text[:-2])
        return None if element is None else postgresql.ARRAY(element)
    if text in _PLAIN:
        return _PLAIN[text]()
    if m := _NUMERIC.match(text):
        precision, scale = m.group(1), m.group(2)
        return sa.Numeric(
            int(precision) if precision else None, int(scale) if scale is not None else None
        )
    if m := _VARCHAR.match(text):
        return sa.String(int(m.group(1))) if m.group(1) else sa.String()
    if m := _TIMESTAMP.match(text):
        zoned = m.group(1) == "timestamptz" or m.group(3) == " with time zone"
        digits = m.group(2)
        return postgresql.TIMESTAMP(timezone=zoned, precision=int(digits) if digits else None)
    if m := _TIME.match(text):
        zoned = m.group(1) == "timetz" or m.group(3) == " with time zone"
        digits = m.group(2)
        return postgresql.TIME(timezone=zoned, precision=int(digits) if digits else None)
    return None


def sql_type(spec: ColumnSpec, table: Table[Any]) -> sa.types.TypeEngine[Any]:
    """The SQLAlchemy type of one mapped column; `InvalidQuery` for a type it cannot map."""
    found = _builtin(spec.sql_type)
    if found is not None:
        return found
    cls = enum_class(spec.element_type)
    if cls is not None:
        labels = [str(member.value) for member in cls]
        name = spec.sql_type.removesuffix("[]")
        enum = postgresql.ENUM(*labels, name=name, schema=table.schema)
        return postgresql.ARRAY(enum) if spec.array else enum
    known = ", ".join(
        sorted(
            {
                *_PLAIN,
                "numeric(p,s)",
                "varchar(n)",
                "timestamptz",
                "time",
                "timetz",
                "<any of these>[]",
            }
        )
    )
    msg = (
        f"{table.name}.{spec.column}: the SQL type {spec.sql_type!r} has no migration mapping; "
        f"use one of {known}, or a StrEnum field for an enum type"
    )
    raise InvalidQuery(msg)


def _column(spec: ColumnSpec, table: Table[Any]) -> sa.Column[Any]:
    type_ = sql_type(spec, table)
    extra: list[Any] = []
    server_default = sa.text(spec.server_default) if spec.server_default else None
    if (
        spec.generated
        and (spec.field,) == table.key_fields
        and server_default is None
        and isinstance(type_, sa.Integer)
    ):
        # The key is an identity column; BY DEFAULT (not ALWAYS) so an
        # explicit key can still be inserted, as `add` allows.
        extra.append(sa.Identity(always=False))
    return sa.Column(
        spec.column,
        type_,
        *extra,
        nullable=spec.nullable and spec.field not in table.key_fields,
        server_default=server_default,
    )


def _schemas(tables: Iterable[Table[Any]]) -> Mapping[str, str | None]:
    return {t.name: t.schema for t in tables}


def _add(table: Table[Any], meta: sa.MetaData, schemas: Mapping[str, str | None]) -> None:
    items: list[Any] = [_column(spec, table) for spec in table.columns]
    # Names past 63 bytes are given as the server would store them (it cuts
    # them; SQLAlchemy refuses them): the schema and the errors agree.
    items.append(
        sa.PrimaryKeyConstraint(*table.key_columns, name=server_name(table.primary_key_name))
    )
    for u in table.unique:
        items.append(
            sa.UniqueConstraint(*(table.column_of(f) for f in u.fields), name=server_name(u.name)),
        )
    for fk in table.foreign_keys:
        schema = schemas.get(fk.target_table, table.schema)
        prefix = f"{schema}.{fk.target_table}" if schema else fk.target_table
        items.append(
            sa.ForeignKeyConstraint(
                [table.column_of(f) for f in fk.fields],
                [f"{prefix}.{column}" for column in fk.target_columns],
                name=server_name(fk.name),
                ondelete=fk.on_delete,
            )
        )
    for ix in table.indexes:
        # postgresql_where only when partial: a plain index renders as before.
        where: dict[str, Any] = {"postgresql_where": sa.text(ix.where_sql)} if ix.where_sql else {}
        columns = (table.column_of(f) for f in ix.fields)
        items.append(sa.Index(server_name(ix.name), *columns, unique=ix.unique, **where))
    for ck in table.checks:
        # conv(): the name is final, the convention is not applied to it again.
        items.append(sa.CheckConstraint(sa.text(ck.sql), name=conv(ck.name)))
    sa.Table(table.name, meta, *items, schema=table.schema)


def metadata(tables: Iterable[Table[Any]]) -> sa.MetaData:
    """The `MetaData` of `tables`, with the naming convention the mappings follow."""
    tables = tuple(tables)
    names = [t.name if t.schema is None else f"{t.schema}.{t.name}" for t in tables]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        msg = f"the tables {', '.join(twice)} are mapped more than once: list each table once"
        raise ConfigurationError(msg)
    meta = sa.MetaData(naming_convention=dict(NAMING_CONVENTION))
    schemas = _schemas(tables)
    for table in tables:
        _add(table, meta, schemas)
    return meta


def load_tables(spec: str) -> tuple[Table[Any], ...]:
    """The tables named by `spec`: ``module:NAME`` entries (a Table or a sequence of them).

    Entries are separated by whitespace or commas, e.g. ``repo.catalog:TABLES``.
    """
    found: list[Table[Any]] = []
    for entry in spec.replace(",", " ").split():
        module_name, sep, attr = entry.partition(":")
        if not sep or not module_name or not attr:
            msg = f"bad tables entry {entry!r}: write module:NAME, e.g. repo.catalog:TABLES"
            raise ConfigurationError(msg)
        try:
            value: object = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            msg = f"cannot load the tables {entry!r}: {exc}"
            raise ConfigurationError(msg) from exc
        items = [value] if isinstance(value, Table) else value
        if not isinstance(items, Iterable) or not all(isinstance(t, Table) for t in items):
            msg = f"{entry} is neither a Table nor a sequence of Tables"
            raise ConfigurationError(msg)
        found.extend(items)
    if not found:
        msg = "no tables given: set `tables = module:NAME` in alembic.ini, e.g. repo.catalog:TABLES"
        raise ConfigurationError(msg)
    return tuple(found)
