"""Flat rows grouped into aggregates: one compiled loop per kind of row.

The rows of `aggregate_flat.py` come sorted by kind, each kind after its
parents. Each kind's rows are taken by a function written for it (as attrs
writes each class's ``__init__``): its entity from its columns, its parents
from theirs, filed under the parent it references, with no call per row
beyond the constructors. The code holds only names and integers (positions,
slots), never text from a mapping.

An item is the list of an aggregate's parts in field order, made into the
aggregate once its children are all in (`maker`); a plain child (a table,
not an `Aggregate`) is its entity. `index` holds, per kind of child, each
parent's list of such children by the values they reference, and under
`KEYS` the roots' keys.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

from repo._aggregate import Aggregate
from repo._mapping import Table
from repo.errors import RepoError

from .aggregate_kinds import Kind

__all__ = ["KEYS", "Take", "maker", "taker"]

Take = Callable[[Any, list[Any], dict[int, Any]], None]
Decode = Callable[[Any], Any]
KEYS = 0  # in `index`, the roots' keys (the other entries are kinds' ids, never 0)


def entity_maker(table: Table[Any]) -> Callable[..., Any]:
    """A callable making `table`'s entity from its column values as arguments."""
    if table.positional_entity is not None:
        return table.positional_entity
    from_record = table.from_record
    return lambda *values: from_record(values)


def _values(positions: Sequence[int], space: dict[str, Any], name: str) -> str:
    """The arguments of a call with a row's values at `positions`: a slice where consecutive."""
    first = positions[0]
    if list(positions) == list(range(first, first + len(positions))):
        return f"*row[{first}:{first + len(positions)}]"
    space[name] = operator.itemgetter(*positions)  # two or more: a tuple
    return f"*{name}(row)"


def _key(positions: list[int]) -> str:
    """The expression of a row's values at `positions`: a value, or a tuple of several."""
    if len(positions) == 1:
        return f"row[{positions[0]}]"
    return "(" + ", ".join(f"row[{p}]" for p in positions) + ")"


def _node(kind: Kind) -> Aggregate[Any]:
    if kind.node is None:
        msg = f"{kind.table.name} is read as a plain child, not an aggregate"
        raise RepoError(msg)
    return kind.node


def taker(kind: Kind) -> Take:
    """The function taking the rows of `kind` into items filed under their parents."""
    table = kind.table
    space: dict[str, Any] = {"make": entity_maker(table), "RepoError": RepoError}
    head: list[str] = []
    body: list[str] = []
    width = len(table.columns)
    entity = f"make({_values(kind.at[:width], space, 'mine')})"
    for i, child in enumerate(kind.children):
        head.append(f"d{i} = index[{id(child)}] = {{}}")
    if kind.node is None:
        item = entity
    else:
        node = kind.node
        parts = dict.fromkeys(node.field_names, "None")
        parts[node.root_field] = entity
        for i, ((first, end), one) in enumerate(zip(kind.ones, node.ones, strict=True)):
            parent, at = one.table, kind.at[first:end]
            space[f"one{i}"] = entity_maker(parent)
            values = _values(at, space, f"theirs{i}")
            key = at[parent.key_positions[0]]
            parts[one.name] = f"(None if row[{key}] is None else one{i}({values}))"
        for i, child in enumerate(kind.children):
            assert child.up is not None  # a child has a parent
            targets = kind.positions(child.up.many.link.targets)
            body += [f"l{i} = []", f"d{i}[{_key(targets)}] = l{i}"]
            parts[child.up.many.name] = f"l{i}"
        item = "[" + ", ".join(parts[name] for name in node.field_names) + "]"
    if kind.up is None:
        space["root_key"] = operator.itemgetter(*kind.positions(table.key_fields))
        head += ["rows = list(rows)", f"index[{KEYS}] = list(map(root_key, rows))"]
        body.append(f"roots.append({item})")
    else:
        head.append(f"parents = index[{id(kind)}]")
        references = kind.positions(kind.up.many.link.fields)
        body.append(f"parents[{_key(references)}].append({item})")
        space["label"] = f"{kind.up.kind.table.name} for {table.name}"
    loop = "\n".join(f"            {line}" for line in body)
    source = "\n".join(
        [
            "def take(rows, roots, index):",
            *(f"    {line}" for line in head),
            "    try:",
            "        for row in rows:",
            loop,
            "    except KeyError as exc:",
            "        msg = (f'no row of {label} has the key {exc.args[0]!r}, which PostgreSQL'",
            "               ' matched: a key whose values Python does not hold equal')",
            "        raise RepoError(msg) from None",
        ]
    )
    space.setdefault("label", table.name)
    exec(compile(source, f"<repo: rows of {table.name}>", "exec"), space)
    take: Take = space["take"]
    return take


def maker(kind: Kind) -> Decode:
    """How an item of `kind` becomes its aggregate (its nested children made first)."""
    node = _node(kind)
    make = node.make
    nested = [
        (node.field_names.index(c.up.many.name), maker(c))
        for c in kind.children
        if c.node is not None and c.up is not None
    ]
    if not nested:
        return lambda parts: make(*parts)

    def made(parts: list[Any]) -> Any:
        for slot, child in nested:
            parts[slot] = [child(p) for p in parts[slot]]
        return make(*parts)

    return made
