"""A mapping's key and constraints, resolved from what a `Table` declares.

The key (one field, or several for a composite key), unique constraints,
foreign keys (to a single or a composite key) and indexes: each checked
against the mapping's fields and named by the one convention (see `Table`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ._columns import (
    ColumnSpec,
    ForeignKey,
    ForeignKeySpec,
    IndexSpec,
    Referenced,
    UniqueSpec,
    server_name,
)
from .errors import InvalidQuery

__all__ = [
    "Mapped",
    "check_composite",
    "foreign_key_spec",
    "index_spec",
    "key_fields_of",
    "unique_spec",
]


class Mapped(Protocol):
    """What the builders need of the `Table` being made: its name and its fields."""

    @property
    def name(self) -> str: ...

    def field(self, name: str, *, purpose: str = ...) -> ColumnSpec: ...

    def column_of(self, name: str) -> str: ...


def key_fields_of(table: str, key: object, names: Sequence[str], entity: str) -> tuple[str, ...]:
    """The key's fields: `key` is a field name, or a sequence of them for a composite key."""
    fields = (key,) if isinstance(key, str) else tuple(key) if isinstance(key, Sequence) else ()
    if not fields or not all(isinstance(f, str) for f in fields):
        msg = (
            f"Table {table!r}: key takes a field name, or a tuple of field names for a "
            f"composite key, got {key!r}"
        )
        raise InvalidQuery(msg)
    if len(set(fields)) < len(fields):
        msg = f"Table {table!r}: the key {fields!r} names a field twice"
        raise InvalidQuery(msg)
    for f in fields:
        if f not in names:
            msg = f"Table {table!r}: key {f!r} is not a field of {entity}"
            raise InvalidQuery(msg)
    return fields


def check_composite(table: str, parts: Sequence[ColumnSpec]) -> None:
    """Refuse a generated part of a composite key: only a single key may be generated."""
    for spec in parts:
        if spec.generated:
            msg = (
                f"Table {table!r}: {spec.field!r} is part of a composite key and generated; "
                "only a single key may be generated (an identity): give every part of a "
                "composite key a value (drop generated=/Column(generated=True) for it), or "
                "key the table by one generated field and declare unique=[(...)] on the others"
            )
            raise InvalidQuery(msg)


def unique_spec(table: Mapped, spec: str | Sequence[str]) -> UniqueSpec:
    """The unique constraint on `spec` (a field, or a tuple of fields)."""
    fields = (spec,) if isinstance(spec, str) else tuple(spec)
    if not fields:
        msg = (
            f"Table {table.name!r}: a unique constraint needs at least one field, "
            "got an empty one: drop it, or name its fields"
        )
        raise InvalidQuery(msg)
    if len(set(fields)) < len(fields):
        msg = f"Table {table.name!r}: the unique constraint {fields!r} names a field twice"
        raise InvalidQuery(msg)
    for f in fields:
        table.field(f)
    cols = "_".join(table.column_of(f) for f in fields)
    return UniqueSpec(f"uq_{table.name}_{cols}", fields)


def index_spec(table: Mapped, spec: str | Sequence[str]) -> IndexSpec:
    """The plain index on `spec` (a field, or a tuple of fields in order)."""
    fields = (spec,) if isinstance(spec, str) else tuple(spec)
    if not fields:
        msg = f"Table {table.name!r}: an index needs at least one field"
        raise InvalidQuery(msg)
    for f in fields:
        table.field(f, purpose="indexes")
    cols = "_".join(table.column_of(f) for f in fields)
    return IndexSpec(server_name(f"ix_{table.name}_{cols}"), fields)


def foreign_key_spec(
    table: Mapped, given: str | tuple[str, ...], target: Referenced | ForeignKey
) -> ForeignKeySpec:
    """The foreign key from the field(s) `given` to `target` (a `Table`, or a `ForeignKey`)."""
    fields: tuple[Any, ...] = (given,) if isinstance(given, str) else tuple(given)
    if not fields or len(set(fields)) < len(fields):
        msg = (
            f"Table {table.name!r}: the foreign key {given!r} must name its fields, "
            "each once (a field, or a tuple of fields)"
        )
        raise InvalidQuery(msg)
    for f in fields:
        table.field(f, purpose="foreign_keys")
    fk = target if isinstance(target, ForeignKey) else ForeignKey(target)
    targets = fk.target_columns
    if len(targets) != len(fields):
        msg = (
            f"Table {table.name!r}: the foreign key {fields!r} has {len(fields)} field(s) "
            f"but references {len(targets)} column(s) of {fk.target_table} {targets!r}: "
            "name one referencing field per referenced column, in order"
        )
        raise InvalidQuery(msg)
    cols = "_".join(table.column_of(f) for f in fields)
    return ForeignKeySpec(
        name=f"fk_{table.name}_{cols}_{fk.target_table}",
        fields=fields,
        target_table=fk.target_table,
        target_columns=targets,
        on_delete=fk.on_delete,
    )
