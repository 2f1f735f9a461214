"""The SET of an UPDATE of whole entities, one policy for `update` and `update_many`.

The version column is bumped from what the row holds (the value given only
matches it, in the WHERE); a generated field given as None (a created_at the
entity never read back) keeps what the database holds, as `add` would; any
other field takes the value given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from repo._columns import quote
from repo._mapping import Table

__all__ = ["assignments"]


def assignments(
    table: Table[Any], fields: Sequence[str], value: Callable[[str], str], row: str = ""
) -> list[str]:
    """``column = ...`` for each of `fields`, the given values from ``value(field)``, the
    row's current ones read as ``{row}column`` (``_t.`` when the table is aliased)."""
    sets = []
    for f in fields:
        column = quote(table.column_of(f))
        if f == table.version:
            sets.append(f"{column} = {row}{column} + 1")
        elif table.field(f).generated:
            sets.append(f"{column} = COALESCE({value(f)}, {row}{column})")
        else:
            sets.append(f"{column} = {value(f)}")
    return sets
