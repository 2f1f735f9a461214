"""Rows of hand-written SQL mapped onto any attrs class (a read model).

Columns are matched to fields by name. The matching is worked out once per
(class, column list) and reused, so a large result costs one call per row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs

from ._columns import fields_of, is_attrs_class
from .errors import InvalidQuery

__all__ = ["lazy_mapper", "record_mapper"]

M = TypeVar("M")

_MAPPERS: dict[tuple[type[Any], tuple[str, ...]], Callable[[Any], Any]] = {}


def record_mapper(model: type[M], columns: tuple[str, ...]) -> Callable[[Any], M]:
    """A function turning a row with `columns` into a `model`; `InvalidQuery` if they do not fit."""
    found: Callable[[Any], M] | None = _MAPPERS.get((model, columns))
    if found is not None:
        return found
    if not is_attrs_class(model):
        msg = f"read models are attrs classes; {model!r} is not one"
        raise InvalidQuery(msg)
    fields = {f.name: f for f in fields_of(model) if f.init}
    extra = [c for c in columns if c not in fields]
    if extra:
        msg = (
            f"the query returns column(s) {', '.join(extra)} that {model.__name__} has no "
            f"field for: alias them in the SELECT or add fields"
        )
        raise InvalidQuery(msg)
    missing = [
        name for name, f in fields.items() if name not in columns and f.default is attrs.NOTHING
    ]
    if missing:
        msg = (
            f"{model.__name__} needs column(s) {', '.join(missing)} that the query does not return"
        )
        raise InvalidQuery(msg)
    names = tuple((fields[c].alias or c) for c in columns)
    positional = [f for f in fields_of(model) if f.init and not f.kw_only]
    mapper: Callable[[Any], Any]
    if tuple(f.name for f in positional[: len(columns)]) == columns:
        mapper = lambda r: model(*r)  # noqa: E731
    else:
        mapper = lambda r: model(**dict(zip(names, r, strict=True)))  # noqa: E731
    _MAPPERS[(model, columns)] = mapper
    typed: Callable[[Any], M] = mapper
    return typed


def lazy_mapper(model: type[M]) -> Callable[[Any], M]:
    """A row → `model` function that works out the column matching from its first row."""
    compiled: list[Callable[[Any], M]] = []

    def make(row: Any) -> M:
        if not compiled:
            compiled.append(record_mapper(model, tuple(row.keys())))
        return compiled[0](row)

    return make
