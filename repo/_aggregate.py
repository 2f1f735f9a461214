"""`Aggregate`: a root table with the parents it references and the children that reference it.

Declared beside the mappings, from the foreign keys the tables already
declare; ``via=`` names the referencing fields where that is ambiguous (two
foreign keys to one table) or where no foreign key is declared. Everything
a backend needs to read or write a whole aggregate is resolved here, once:
which fields join which, in what order children come, and how the parts
make the attrs class.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import attrs

from ._columns import fields_of, is_attrs_class
from ._mapping import Table
from ._query import Order, parse_order
from .errors import ConfigurationError, InvalidQuery

__all__ = ["Aggregate", "Link", "Many", "One"]

T = TypeVar("T")

Via = str | Sequence[str]


@attrs.frozen
class Link:
    """How two tables join: `fields` of the referencing table equal `targets` of the other."""

    fields: tuple[str, ...]
    targets: tuple[str, ...]


@attrs.frozen
class One:
    """A parent the root references (``one={"brand": BRANDS}``): read with it, never written."""

    name: str
    table: Table[Any]
    link: Link  # fields of the root, targets of `table`


@attrs.frozen
class Many:
    """Children that reference the root, a plain table or a nested `Aggregate`, in `orders`."""

    name: str
    table: Table[Any]
    node: Aggregate[Any] | None
    link: Link  # fields of the child, targets of the parent's root
    orders: tuple[Order, ...]


class Aggregate(Generic[T]):
    """A root entity read and written with its parents (`one`) and its children (`many`).

    ``Aggregate(ProductDetail, root=PRODUCTS, one={"brand": BRANDS},
    many={"skus": SKUS})`` maps the attrs class `entity`, whose fields are
    the root's entity (the one field not named in `one` or `many`), one
    field per parent (``None`` when the root references none) and one list
    per kind of child. A child may itself be an `Aggregate` (an order, its
    lines, each line's product).

    - `via`: ``{"brand": "brand_id"}``: the referencing fields of a link, the
      root's for a parent and the child's for children, where the tables
      declare several foreign keys between them, or none.
    - `order_by`: ``{"skus": "-stock"}``: the order of children (field names,
      ``-name`` descending); their key breaks ties, and alone is the default.

    A declaration that cannot work raises `ConfigurationError` naming the tables.
    """

    def __init__(
        self,
        entity: type[T],
        *,
        root: Table[Any],
        one: Mapping[str, Table[Any]] | None = None,
        many: Mapping[str, Table[Any] | Aggregate[Any]] | None = None,
        via: Mapping[str, Via] | None = None,
        order_by: Mapping[str, str | Sequence[str]] | None = None,
    ) -> None:
        if not is_attrs_class(entity):
            msg = f"Aggregate({entity!r}, ...) maps attrs classes; {entity!r} is not one"
            raise ConfigurationError(msg)
        given: object = root
        if not isinstance(given, Table):
            msg = f"Aggregate({entity.__name__}, root=...) takes a Table, got {root!r}"
            raise ConfigurationError(msg)
        self.entity: type[T] = entity
        self.root: Table[Any] = root
        one, many = dict(one or {}), dict(many or {})
        via, order_by = dict(via or {}), dict(order_by or {})
        label = f"Aggregate({entity.__name__}, root={root.name})"
        names = [f.name for f in fields_of(entity)]
        for name in (*one, *many):
            if name not in names:
                msg = f"{label}: {entity.__name__} has no field {name!r} to hold it"
                raise ConfigurationError(msg)
        for name in set(one) & set(many):
            msg = f"{label}: {name!r} is named in both one= and many="
            raise ConfigurationError(msg)
        for what, given in (("via", via), ("order_by", order_by)):
            for name in given:
                if name not in one and name not in many:
                    msg = f"{label}: {what}= names {name!r}, which is not in one= or many="
                    raise ConfigurationError(msg)
        for name in order_by:
            if name in one:
                msg = f"{label}: order_by= names {name!r}, a parent: only children have an order"
                raise ConfigurationError(msg)
        rest = [n for n in names if n not in one and n not in many]
        if len(rest) != 1:
            msg = (
                f"{label}: {entity.__name__} must have exactly one field besides those "
                f"of one= and many= (the root's {root.entity.__name__}), it has {rest}"
            )
            raise ConfigurationError(msg)
        self.root_field: str = rest[0]
        _check_annotations(label, entity, root_field=self.root_field, root=root, one=one, many=many)
        self.ones: tuple[One, ...] = tuple(
            One(name, table, _parent_link(label, root, table, via.get(name)))
            for name, table in one.items()
        )
        self.manys: tuple[Many, ...] = tuple(
            _many(label, root, name, child, via=via.get(name), order_by=order_by.get(name))
            for name, child in many.items()
        )
        self.field_names = tuple(names)
        self.make: Callable[..., T] = _maker(entity, names)

    def parts(self, aggregate: T) -> tuple[Any, dict[str, Any], dict[str, list[Any]]]:
        """The root, the parents and the children of `aggregate`, checked to be of their classes.

        The root's values are checked when written, once its references are filled in.
        """
        if not isinstance(aggregate, self.entity):
            msg = f"this repository stores {self.entity.__name__} aggregates, got {aggregate!r}"
            raise InvalidQuery(msg)
        root = getattr(aggregate, self.root_field)
        _check_class(self.root, root)
        ones = {o.name: getattr(aggregate, o.name) for o in self.ones}
        for o in self.ones:
            value = ones[o.name]
            if value is not None:
                _check_class(o.table, value)
        manys: dict[str, list[Any]] = {}
        for m in self.manys:
            value = getattr(aggregate, m.name)
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                msg = (
                    f"{self.entity.__name__}.{m.name} must be a list of "
                    f"{(m.node.entity if m.node else m.table.entity).__name__}, got {value!r}"
                )
                raise InvalidQuery(msg)
            manys[m.name] = list(value)
        return root, ones, manys

    def __repr__(self) -> str:
        return f"Aggregate({self.entity.__name__}, root={self.root.name})"


def _check_class(table: Table[Any], entity: object) -> None:
    if not isinstance(entity, table.entity):
        msg = f"{table.name} stores {table.entity.__name__} objects, got {type(entity).__name__}"
        raise InvalidQuery(msg)


def _maker(entity: type[T], names: list[str]) -> Callable[..., T]:
    """Build `entity` from its parts in field order: positionally when __init__ allows it."""
    fields = fields_of(entity)
    made: Any = entity
    if all(f.init and not f.kw_only and f.alias == f.name for f in fields):
        return made  # type: ignore[no-any-return]
    init_names = [str(f.alias) for f in fields]

    def make(*values: Any) -> T:
        result: T = made(**dict(zip(init_names, values, strict=True)))
        return result

    return make


def _check_annotations(
    label: str,
    entity: type[Any],
    *,
    root_field: str,
    root: Table[Any],
    one: Mapping[str, Table[Any]],
    many: Mapping[str, Table[Any] | Aggregate[Any]],
) -> None:
    """Refuse a field annotated with a class other than the one the declaration gives it."""
    try:
        hints = typing.get_type_hints(entity)
    except NameError:
        return  # annotations that do not resolve yet: the classes are checked on write
    expected: dict[str, type[Any]] = {root_field: root.entity}
    expected.update({name: table.entity for name, table in one.items()})
    for name, child in many.items():
        expected[name] = child.entity
    for name, cls in expected.items():
        hint = hints.get(name)
        if hint is None or hint is Any:
            continue
        found = {a for a in _classes(hint) if isinstance(a, type)}
        if found and cls not in found:
            msg = (
                f"{label}: {entity.__name__}.{name} is annotated {hint!r}, "
                f"but the declaration gives it {cls.__name__}"
            )
            raise ConfigurationError(msg)


def _classes(hint: Any) -> list[Any]:
    args = typing.get_args(hint)
    if not args:
        return [hint]
    return [c for a in args for c in _classes(a)]


def _many(
    label: str,
    parent: Table[Any],
    name: str,
    child: Table[Any] | Aggregate[Any],
    *,
    via: Via | None,
    order_by: str | Sequence[str] | None,
) -> Many:
    given: object = child
    if isinstance(given, Aggregate):
        node: Aggregate[Any] | None = given
        table = given.root
    elif isinstance(given, Table):
        node, table = None, given
    else:
        msg = f"{label}: many={{{name!r}: ...}} takes a Table or an Aggregate, got {child!r}"
        raise ConfigurationError(msg)
    link = _parent_link(label, table, parent, via)
    try:
        orders = parse_order(table, order_by)
    except InvalidQuery as exc:
        msg = f"{label}: order_by={{{name!r}: ...}}: {exc}"
        raise ConfigurationError(msg) from exc
    given = {o.field for o in orders}
    orders += tuple(Order(f) for f in table.key_fields if f not in given)
    return Many(name, table, node, link, orders)


def _parent_link(label: str, child: Table[Any], parent: Table[Any], via: Via | None) -> Link:
    """How `child` references `parent`: from its declared foreign keys, or `via`."""
    given: object = parent
    if not isinstance(given, Table):
        msg = f"{label}: one= takes Tables, got {parent!r}"
        raise ConfigurationError(msg)
    columns = {c.column: c.field for c in parent.columns}
    candidates = [
        Link(fk.fields, tuple(columns[c] for c in fk.target_columns))
        for fk in child.foreign_keys
        if fk.target_table == parent.name and all(c in columns for c in fk.target_columns)
    ]
    if via is not None:
        fields = (via,) if isinstance(via, str) else tuple(via)
        for f in fields:
            if f not in child.field_names:
                msg = f"{label}: via={fields!r}: {child.name} has no field {f!r}"
                raise ConfigurationError(msg)
        chosen = [c for c in candidates if c.fields == fields]
        if chosen:
            return chosen[0]
        if len(fields) != len(parent.key_fields):
            msg = (
                f"{label}: via={fields!r} names {len(fields)} field(s) of {child.name}, "
                f"but the key of {parent.name} has {len(parent.key_fields)}"
            )
            raise ConfigurationError(msg)
        return Link(fields, parent.key_fields)
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        msg = (
            f"{label}: {child.name} declares no foreign key to {parent.name}: declare one "
            f"in its Table(foreign_keys=...), or name the fields of {child.name} that hold "
            f"the key of {parent.name} with via="
        )
    else:
        options = " or ".join(
            repr(c.fields[0] if len(c.fields) == 1 else c.fields) for c in candidates
        )
        msg = (
            f"{label}: {child.name} has several foreign keys to {parent.name}: "
            f"choose one with via= ({options})"
        )
    raise ConfigurationError(msg)
