"""`Table`: the mapping of a plain attrs class to a PostgreSQL table.

The mapping lives beside the entity, not inside it. It knows each column's
name, SQL type and nullability (from the field annotations unless declared),
which columns the database generates, the key, the unique and foreign-key
constraints, the indexes and an optional version column. It is the single
source of truth for table structure: the migrations' SQLAlchemy metadata is
built from it (``repo/_migration_metadata.py``, never imported at run time). Everything
per-row (record → entity, entity → parameters) is compiled here once per
mapping.
"""

from __future__ import annotations

import operator
import re
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import attrs

from ._checks import compile_check, compile_key_check, compile_values_check
from ._types import (
    check_enum,
    decoder,
    element_of,
    enum_class,
    kind_of,
    sql_type_of,
    unwrap_optional,
)
from .errors import CONSTRAINTS, InvalidQuery, NotFound, StaleEntity

__all__ = ["Column", "ForeignKey", "Table", "quote"]

T = TypeVar("T")

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


def is_attrs_class(cls: object) -> bool:
    """Whether `cls` is an attrs class (without narrowing its static type)."""
    return attrs.has(cls)  # type: ignore[arg-type]


def fields_of(cls: Any) -> tuple[attrs.Attribute[Any], ...]:
    """The attrs fields of `cls`, for any attrs class (typed loosely on purpose)."""
    return tuple(attrs.fields(cls))


def quote(name: str) -> str:
    """Quote an identifier for SQL; names come only from mappings, never from callers."""
    return '"' + name.replace('"', '""') + '"'


def _column_spec(
    f: attrs.Attribute[Any], col: Column, hint: Any, where: str, *, key: str, generated: bool
) -> ColumnSpec:
    """The resolved mapping of the field `f` (annotated `hint`), with its `Column` overrides."""
    tp, optional = unwrap_optional(hint)
    sql_type = col.type or sql_type_of(tp, where)
    kind, array = kind_of(sql_type)
    element, element_nullable = (element_of(tp) or (Any, True)) if array else (tp, False)
    if (found := enum_class(element)) is not None:
        check_enum(found, where)
    is_generated = col.generated or generated or (f.name == key and f.default is None and optional)
    nullable = col.nullable
    if nullable is None:
        nullable = optional and not is_generated and f.name != key
    return ColumnSpec(
        field=f.name,
        init_name=f.alias or f.name,
        column=_check_identifier(col.name or f.name, "column name"),
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


def _one_field_per_column(table: str, specs: Sequence[ColumnSpec]) -> None:
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


def _check_identifier(name: str, what: str) -> str:
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


@attrs.frozen
class ForeignKey:
    """A reference from a column to another table's key (or `column`)."""

    table: Table[Any] | str
    column: str | None = None
    on_delete: str | None = None

    @property
    def target_table(self) -> str:
        return self.table if isinstance(self.table, str) else self.table.name

    @property
    def target_column(self) -> str:
        if self.column is not None:
            return self.column
        if isinstance(self.table, str):
            msg = f"ForeignKey to {self.table!r} given by name needs column="
            raise InvalidQuery(msg)
        return self.table.column_of(self.table.key)


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
    name: str
    field: str
    target_table: str
    target_column: str
    on_delete: str | None


@attrs.frozen
class IndexSpec:
    name: str
    fields: tuple[str, ...]


class Table(Generic[T]):
    """Maps the attrs class `entity` to the table `name`.

    ``Table("brand", Brand, key="brand_id")`` is enough for a class whose key
    field defaults to ``None``: such a key is generated by the database.

    - `key`: the primary-key field.
    - `columns`: per-field `Column` overrides (name, SQL type, nullability, generation).
    - `generated`: more fields the database fills when they are ``None``.
    - `unique`: unique constraints, each a field name or a tuple of them.
    - `foreign_keys`: ``{field: other_table}`` or ``{field: ForeignKey(...)}``.
    - `version`: an int field used for optimistic locking by `update`.
    - `schema`: the schema the table lives in (default: the search path).
    - `indexes`: plain indexes, each a field name or a tuple of them (in
      order), e.g. the columns a keyset page filters and sorts on.

    Constraint and index names follow one convention (``pk_<table>``,
    ``uq_<table>_<cols>``, ``fk_<table>_<col>_<target>``,
    ``ix_<table>_<cols>``), so errors name the constraint and columns, and
    migrations are deterministic.
    """

    def __init__(
        self,
        name: str,
        entity: type[T],
        *,
        key: str,
        columns: Mapping[str, Column] | None = None,
        generated: Iterable[str] = (),
        unique: Iterable[str | Sequence[str]] = (),
        foreign_keys: Mapping[str, Table[Any] | ForeignKey] | None = None,
        version: str | None = None,
        schema: str | None = None,
        indexes: Iterable[str | Sequence[str]] = (),
    ) -> None:
        self.entity: type[T] = entity
        if not is_attrs_class(entity):
            msg = f"Table({name!r}, ...) maps attrs classes; {entity!r} is not one"
            raise InvalidQuery(msg)
        self.name = _check_identifier(name, "table name")
        self.schema = _check_identifier(schema, "schema name") if schema else None
        fields = fields_of(entity)
        names = [f.name for f in fields]
        columns = dict(columns or {})
        generated = set(generated)
        for label, given in (("columns", columns), ("generated", generated)):
            for unknown in sorted(set(given) - set(names)):
                msg = (
                    f"Table {name!r}: {label} names {unknown!r}, "
                    f"which {entity.__name__} has no field for"
                )
                raise InvalidQuery(msg)
        if key not in names:
            msg = f"Table {name!r}: key {key!r} is not a field of {entity.__name__}"
            raise InvalidQuery(msg)
        self.key = key
        try:
            hints = typing.get_type_hints(entity)
        except NameError as exc:
            msg = f"cannot resolve the annotations of {entity.__name__}: {exc}"
            raise InvalidQuery(msg) from exc

        specs = [
            _column_spec(
                f,
                columns.get(f.name, Column()),
                hints.get(f.name, Any),
                f"{entity.__name__}.{f.name}",
                key=key,
                generated=f.name in generated,
            )
            for f in fields
        ]
        _one_field_per_column(name, specs)
        self.columns: tuple[ColumnSpec, ...] = tuple(specs)
        self._by_field = {s.field: s for s in specs}
        self.field_names: tuple[str, ...] = tuple(names)

        if version is not None:
            spec = self.field(version)
            if spec.python_type is not int:
                msg = f"Table {name!r}: version field {version!r} must be an int"
                raise InvalidQuery(msg)
        self.version = version

        self.primary_key_name = f"pk_{name}"
        self.unique: tuple[UniqueSpec, ...] = tuple(self._unique(u) for u in unique)
        self.foreign_keys: tuple[ForeignKeySpec, ...] = tuple(
            self._foreign_key(fname, target) for fname, target in (foreign_keys or {}).items()
        )
        CONSTRAINTS[self.primary_key_name] = (name, (self.column_of(key),))
        for u in self.unique:
            CONSTRAINTS[u.name] = (name, tuple(self.column_of(f) for f in u.fields))
        for fk in self.foreign_keys:
            CONSTRAINTS[fk.name] = (name, (self.column_of(fk.field),))
        self.indexes: tuple[IndexSpec, ...] = tuple(self._index(i) for i in indexes)

        self._compile()

    def _unique(self, spec: str | Sequence[str]) -> UniqueSpec:
        fields = (spec,) if isinstance(spec, str) else tuple(spec)
        if not fields:
            msg = (
                f"Table {self.name!r}: a unique constraint needs at least one field, "
                "got an empty one: drop it, or name its fields"
            )
            raise InvalidQuery(msg)
        if len(set(fields)) < len(fields):
            msg = f"Table {self.name!r}: the unique constraint {fields!r} names a field twice"
            raise InvalidQuery(msg)
        for f in fields:
            self.field(f)
        cols = "_".join(self.column_of(f) for f in fields)
        return UniqueSpec(f"uq_{self.name}_{cols}", fields)

    def _index(self, spec: str | Sequence[str]) -> IndexSpec:
        fields = (spec,) if isinstance(spec, str) else tuple(spec)
        if not fields:
            msg = f"Table {self.name!r}: an index needs at least one field"
            raise InvalidQuery(msg)
        for f in fields:
            self.field(f, purpose="indexes")
        cols = "_".join(self.column_of(f) for f in fields)
        return IndexSpec(f"ix_{self.name}_{cols}", fields)

    def _foreign_key(self, fname: str, target: Table[Any] | ForeignKey) -> ForeignKeySpec:
        self.field(fname)
        fk = target if isinstance(target, ForeignKey) else ForeignKey(target)
        return ForeignKeySpec(
            name=f"fk_{self.name}_{self.column_of(fname)}_{fk.target_table}",
            field=fname,
            target_table=fk.target_table,
            target_column=fk.target_column,
            on_delete=fk.on_delete,
        )

    def _compile(self) -> None:
        self.qualified_name = (
            f"{quote(self.schema)}.{quote(self.name)}" if self.schema else quote(self.name)
        )
        self.select_list = ", ".join(quote(c.column) for c in self.columns)
        self.key_column = self.column_of(self.key)
        self.generated_fields = tuple(c.field for c in self.columns if c.generated)
        self.generated_positions = tuple(
            (c.field, i) for i, c in enumerate(self.columns) if c.generated
        )
        self.key_position = self.field_names.index(self.key)
        self._get_values = operator.attrgetter(*self.field_names)
        self._given = f"the {self.entity.__name__} given"
        checks = tuple(compile_check(c, self.name) for c in self.columns)
        self._check_by_field = dict(zip(self.field_names, checks, strict=True))
        self.check_values: Callable[[Sequence[Any], str | int], None] = compile_values_check(
            self.columns, self.name
        )
        self.check_key: Callable[[Any, str], Any] = compile_key_check(
            self.field(self.key), self.name
        )
        init_fields = fields_of(self.entity)
        positional = all(f.init and not f.kw_only for f in init_fields)
        entity: Any = self.entity
        # StrEnum members are str, so they travel to the server as they are;
        # only the way back needs a conversion, text label -> member.
        enums = [enum_class(c.element_type) for c in self.columns]
        if any(enums):
            decoders = tuple(
                decoder(e, array=c.array) for e, c in zip(enums, self.columns, strict=True)
            )
            if positional:
                self.from_record: Callable[[Any], T] = lambda r: entity(
                    *[d(v) for d, v in zip(decoders, r, strict=True)]
                )
            else:
                names = tuple(c.init_name for c in self.columns)
                self.from_record = lambda r: entity(
                    **{n: d(v) for n, d, v in zip(names, decoders, r, strict=True)}
                )
        elif positional:
            # Selecting the columns in field order lets a record go straight
            # into __init__, the cheapest way to build an attrs instance.
            self.from_record = lambda r: entity(*r)
        else:
            names = tuple(c.init_name for c in self.columns)
            self.from_record = lambda r: entity(**dict(zip(names, r, strict=True)))
        make = self.from_record
        self.from_records: Callable[[Iterable[Any]], list[T]] = (
            # The common case with no call per row: a big fetch is measurably faster.
            (lambda rows: [entity(*r) for r in rows])
            if positional and not any(enums)
            else (lambda rows: [make(r) for r in rows])
        )

    # -- lookups --------------------------------------------------------

    def field(self, name: str, *, purpose: str = "filter") -> ColumnSpec:
        """The column of field `name`; `InvalidQuery` if the mapping has no such field."""
        try:
            return self._by_field[name]
        except (KeyError, TypeError):
            known = ", ".join(self.field_names)
            msg = (
                f"{self.entity.__name__} has no field {name!r} (in {purpose}); "
                f"known fields: {known}"
            )
            raise InvalidQuery(msg) from None

    def column_of(self, name: str) -> str:
        """The column name of field `name`."""
        return self.field(name).column

    def values(self, entity: T) -> tuple[Any, ...]:
        """The entity's field values, in column order."""
        values: Any = self._get_values(entity)
        return values if len(self.field_names) > 1 else (values,)

    def key_of(self, entity: T) -> Any:
        """The entity's key value (``None`` before the database assigned it)."""
        return getattr(entity, self.key)

    def conflict_target(self, on: str | Sequence[str] | None) -> tuple[str, ...]:
        """The fields an upsert matches on: the key by default, else a declared unique set."""
        if on is None:
            return (self.key,)
        fields = (on,) if isinstance(on, str) else tuple(on)
        for f in fields:
            self.field(f, purpose="upsert on=")
        choices = [(self.key,), *(u.fields for u in self.unique)]
        if not any(set(fields) == set(c) for c in choices):
            known = " or ".join(repr(c) for c in choices)
            msg = (
                f"upsert on={fields!r} matches no unique constraint of {self.name}: "
                f"use {known}, or declare unique=[...] in its Table"
            )
            raise InvalidQuery(msg)
        return fields

    def not_found(self, key: Any) -> NotFound:
        """The `NotFound` for `key`, or for a list of keys none of which exist."""
        if isinstance(key, list):
            msg = f"no {self.name} with {self.key} in {key!r}"
        else:
            msg = f"no {self.name} with {self.key}={key!r}"
        return NotFound(msg, table=self.name, key=key)

    def stale(self, key: Any, version: Any) -> StaleEntity:
        """The `StaleEntity` for an update of `key` that expected `version`."""
        msg = (
            f"{self.name} {self.key}={key!r} was changed by someone else "
            f"(it is no longer at {self.version}={version!r}): reload it and retry"
        )
        return StaleEntity(msg)

    def check_entity(self, entity: object) -> T:
        """Refuse an object that is not this table's entity, or holds a value a column cannot.

        `InvalidQuery` for the wrong class; `DataError` or `NotNullViolation`
        naming the field for a bad value (see `check_values`).
        """
        if not isinstance(entity, self.entity):
            msg = f"{self.name} stores {self.entity.__name__} objects, got {type(entity).__name__}"
            raise InvalidQuery(msg)
        self.check_values(self.values(entity), self._given)
        return entity

    def check_value(self, field: str, value: Any, where: str) -> None:
        """Refuse one value for `field` (which must be known), naming it."""
        self._check_by_field[field](value, where)

    def __repr__(self) -> str:
        return f"Table({self.name!r}, {self.entity.__name__}, key={self.key!r})"
