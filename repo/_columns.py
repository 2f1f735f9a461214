"""What a mapping is made of: the declarations a user writes, and the specs `Table` resolves.

- Declarations: `Column` (how one field is stored) and `ForeignKey` (a
  reference to another table), written beside the entity.
- Specs: `ColumnSpec`, `UniqueSpec`, `ForeignKeySpec`, `IndexSpec`, what a
  `Table` resolved them to, read by the value checks, both backends and the
  migrations.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

import attrs

from ._types import check_enum, element_of, enum_class, kind_of, sql_type_of, unwrap_optional
from .errors import InvalidQuery

__all__ = [
    "Column",
    "ColumnSpec",
    "ForeignKey",
    "ForeignKeySpec",
    "IndexSpec",
    "Referenced",
    "UniqueSpec",
    "check_identifier",
    "column_spec",
    "fields_of",
    "is_attrs_class",
    "one_field_per_column",
    "quote",
    "server_name",
]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


def is_attrs_class(cls: object) -> bool:
    """Whether `cls` is an attrs class (without narrowing its static type)."""
    return attrs.has(cls)  # type: ignore[arg-type]


def fields_of(cls: Any) -> tuple[attrs.Attribute[Any], ...]:
    """The attrs fields of `cls`, for any attrs class (typed loosely on purpose)."""
    return tuple(attrs.fields(cls))


# PostgreSQL keeps at most this many bytes of an identifier (NAMEDATALEN - 1).
NAME_BYTES = 63


def server_name(name: str) -> str:
    """`name` as the server stores it: cut to 63 bytes, never inside a character."""
    encoded = name.encode("utf-8")
    if len(encoded) <= NAME_BYTES:
        return name
    return encoded[:NAME_BYTES].decode("utf-8", errors="ignore")


def quote(name: str) -> str:
    """Quote an identifier for SQL; names come only from mappings, never from callers."""
    return '"' + name.replace('"', '""') + '"'


def column_spec(
    f: attrs.Attribute[Any],
    col: Column,
    hint: Any,
    where: str,
    *,
    key: tuple[str, ...],
    generated: bool,
) -> ColumnSpec:
    """The resolved mapping of the field `f` (annotated `hint`), with its `Column` overrides.

    `key` holds the key's fields: a single key field that defaults to None
    (and admits it) is generated; no part of a composite key is.
    """
    tp, optional = unwrap_optional(hint)
    sql_type = col.type or sql_type_of(tp, where)
    kind, array = kind_of(sql_type)
    element, element_nullable = (element_of(tp) or (Any, True)) if array else (tp, False)
    if (found := enum_class(element)) is not None:
        check_enum(found, where)
    is_generated = (
        col.generated or generated or (key == (f.name,) and f.default is None and optional)
    )
    nullable = col.nullable
    if nullable is None:
        nullable = optional and not is_generated and f.name not in key
    return ColumnSpec(
        field=f.name,
        init_name=f.alias or f.name,
        column=check_identifier(col.name or f.name, "column name"),
        sql_type=sql_type,
        nullable=nullable,
        generated=is_generated,
        server_default=col.server_default,
        python_type=tp,
        kind=kind,
        array=array,
        element_type=element,
        element_nullable=element_nullable,
    )


def one_field_per_column(table: str, specs: Sequence[ColumnSpec]) -> None:
    """Refuse two fields stored in one column: a row could not hold both."""
    seen: dict[str, str] = {}
    for spec in specs:
        other = seen.setdefault(spec.column, spec.field)
        if other != spec.field:
            msg = (
                f"Table {table!r}: the fields {other!r} and {spec.field!r} both map to the "
                f"column {spec.column!r}: give each its own Column(name=...)"
            )
            raise InvalidQuery(msg)


def check_identifier(name: str, what: str) -> str:
    if not isinstance(name, str) or not _IDENT.match(name):
        msg = f"{what} {name!r} is not a plain SQL identifier (letters, digits, _; at most 63)"
        raise InvalidQuery(msg)
    return name


@attrs.frozen
class Column:
    """How one field is stored, where the defaults do not fit.

    - `name`: the column name (default: the field name).
    - `type`: the SQL type (default: from the annotation: ``str`` → ``text``,
      ``int`` → ``bigint``, ``Decimal`` → ``numeric``, ``datetime`` →
      ``timestamptz``, ``UUID`` → ``uuid``, ``dict``/``list`` → ``jsonb``, ...).
    - `nullable`: default: the annotation admits ``None`` and the column is
      neither the key nor generated.
    - `generated`: the database fills it when the entity holds ``None``
      (identity, serial or a server default); `add` leaves it out and reads it
      back from ``RETURNING``.
    - `server_default`: the SQL default expression, for migrations.

    A ``StrEnum`` field maps to a PostgreSQL enum type named after the class
    in snake_case (``OrderStatus`` → ``order_status``); its members travel as
    their values and come back as members.
    """

    name: str | None = None
    type: str | None = None
    nullable: bool | None = None
    generated: bool = False
    server_default: str | None = None


class Referenced(Protocol):
    """What a foreign key needs of the table it points at (a `Table`)."""

    @property
    def name(self) -> str: ...

    @property
    def key_columns(self) -> tuple[str, ...]: ...


def _columns(value: Sequence[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    return tuple(value)


# The referential actions PostgreSQL knows, in any case and spacing.
ON_DELETE_ACTIONS = ("NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT")


def _on_delete(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or " ".join(value.upper().split()) not in ON_DELETE_ACTIONS:
        known = ", ".join(ON_DELETE_ACTIONS)
        msg = (
            f"ForeignKey(on_delete={value!r}) is not an action PostgreSQL knows: use one of {known}"
        )
        raise InvalidQuery(msg)
    return value


@attrs.frozen
class ForeignKey:
    """A reference from one field (or several) to another table's key, or to `columns`.

    In ``Table(..., foreign_keys={...})`` the mapping's key names the
    referencing field, or a tuple of fields for a composite reference
    (``{("order_no", "line_no"): ORDER_LINES}``); they reference, in order,
    the target's key (one column per field), or the target columns
    `columns` (`column` for one). A target given by name needs them.
    `on_delete` (``NO ACTION``, the default, ``RESTRICT``, ``CASCADE``,
    ``SET NULL`` or ``SET DEFAULT``) is the action on delete of the
    referenced row; anything else is refused with `InvalidQuery`.
    """

    table: Referenced | str
    column: str | None = None
    on_delete: str | None = attrs.field(default=None, converter=_on_delete)
    columns: tuple[str, ...] | None = attrs.field(default=None, converter=_columns)

    @property
    def target_table(self) -> str:
        return self.table if isinstance(self.table, str) else self.table.name

    @property
    def target_columns(self) -> tuple[str, ...]:
        """The referenced columns, in the order of the referencing fields."""
        if self.columns is not None and self.column is not None:
            msg = f"ForeignKey to {self.target_table!r}: give column= or columns=, not both"
            raise InvalidQuery(msg)
        if self.columns is not None:
            return self.columns
        if self.column is not None:
            return (self.column,)
        if isinstance(self.table, str):
            msg = f"ForeignKey to {self.table!r} given by name needs column= (or columns=)"
            raise InvalidQuery(msg)
        return self.table.key_columns

    @property
    def target_column(self) -> str:
        """The referenced column of a one-column reference."""
        found = self.target_columns
        if len(found) != 1:
            msg = f"ForeignKey to {self.target_table!r} references {len(found)} columns"
            raise InvalidQuery(msg)
        return found[0]


@attrs.frozen
class ColumnSpec:
    """The resolved mapping of one field (built by `Table`, read by backends).

    `kind` is the canonical name of the SQL type (``int8``, ``timestamptz``,
    ``jsonb``, an enum type's name, ...; see `kind_of`) and `array` whether
    the column is an array of it. `element_type` is the Python type of a
    value (of each element, for an array; ``Any`` where the annotation does
    not say) and `element_nullable` whether an array element may be None.
    """

    field: str
    init_name: str
    column: str
    sql_type: str
    nullable: bool
    generated: bool
    server_default: str | None
    python_type: Any
    kind: str = ""
    array: bool = False
    element_type: Any = None
    element_nullable: bool = False


@attrs.frozen
class UniqueSpec:
    name: str
    fields: tuple[str, ...]


@attrs.frozen
class ForeignKeySpec:
    """A resolved foreign key: the referencing `fields` and the `target_columns`, in order."""

    name: str
    fields: tuple[str, ...]
    target_table: str
    target_columns: tuple[str, ...]
    on_delete: str | None

    @property
    def field(self) -> str:
        """The referencing field of a one-column foreign key."""
        return self.fields[0]

    @property
    def target_column(self) -> str:
        """The referenced column of a one-column foreign key."""
        return self.target_columns[0]


@attrs.frozen
class IndexSpec:
    """A resolved index: `unique`, and partial when `where` holds its conditions.

    `where_sql` is the same predicate as SQL with literal values, for the DDL.
    """

    name: str
    fields: tuple[str, ...]
    unique: bool = False
    where: tuple[Any, ...] = ()
    where_sql: str | None = None
