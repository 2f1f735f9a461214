"""Where each kind's columns go in an aggregate's flat rows: slots, shared by type.

A flat row is as wide as its slots, and every slot a kind does not fill is
a NULL the server sorts and sends and the client decodes, in every row of
that kind: a product's seven columns were seven NULLs in each of its skus'
rows. So kinds share slots: a column takes a slot of another kind's column
of the same type where the mapping declares one, else a slot of its own.
The deepest kinds (the most rows) are placed first, so that their columns
are consecutive and a row's entity is a slice of it. The columns a kind is
ordered by keep slots of their own: the statement sorts every row by every
kind's order (by position), which must be NULL in other kinds' rows.

UNION ALL gives each slot one type. Columns share a slot only where the
mapping declares them of one built-in type; each is cast to it, and every
branch carries a `guard` that holds only when each column's type in the
database is its declared type, or one the cast widens without changing its
value in Python (an ``integer`` column mapped as ``int``, that is
``bigint``; a ``varchar`` one mapped as ``str``). Where a table has
drifted further (an ``int`` mapped over a ``numeric`` column), the guard
fails before any row is read and the statement returns a single `DRIFTED`
row instead; the reader then drops sharing for good and reads again
(`aggregate_flat.py`).
"""

from __future__ import annotations

from collections.abc import Sequence

from repo._types import BUILTIN_KINDS

from .aggregate_kinds import Column, Kind

__all__ = ["DRIFTED", "Layout", "shared_type"]

DRIFTED = -1  # the tag of the row a statement returns when its guard fails

_VARCHAR = ("varchar", "character varying")  # its own type, though `kind_of` names it text

# The types a column declared of the key may have in the database and still
# share its slot: each cast to it gives the same Python value (int4 to int8,
# float4 to float8 exactly, varchar to text as is; not bpchar, whose padding
# the cast drops, nor json, which jsonb normalizes).
_WIDENED = {
    "int8": ("int8", "int4", "int2"),
    "int4": ("int4", "int2"),
    "float8": ("float8", "float4"),
    "text": ("text", "varchar"),
}


def shared_type(column: Column) -> str | None:
    """The type under which `column` may share a slot: a built-in one, as declared."""
    spec = column.spec
    if spec.kind not in BUILTIN_KINDS or spec.sql_type.lower().startswith(_VARCHAR):
        return None
    return spec.kind + ("[]" if spec.array else "")


def _check(column: Column, type_: str) -> str:
    """The condition that `column`'s type in the database reads as `type_` unchanged."""
    base, array = type_.removesuffix("[]"), "[]" if type_.endswith("[]") else ""
    accepted = [f"'{t}{array}'::regtype" for t in _WIDENED.get(base, (base,))]
    found = f"pg_typeof({column.null})"
    if len(accepted) == 1:
        return f"{found} = {accepted[0]}"
    return f"{found} IN ({', '.join(accepted)})"


class _Slot:
    def __init__(self, type_: str | None) -> None:
        self.type = type_
        self.columns: list[Column] = []

    @property
    def shared(self) -> bool:
        return len(self.columns) > 1


class Layout:
    """The slots of the flat rows of `kinds`; sets each kind's `at`.

    Not `share`, every column has a slot of its own (after a drift).
    """

    def __init__(self, kinds: Sequence[Kind], *, share: bool = True) -> None:
        self.share = share
        slots: list[_Slot] = []
        for kind in sorted(kinds, key=lambda k: -k.depth):
            taken: set[int] = set()
            kind.at = []
            ordered = {o.field for o in kind.up.many.orders} if kind.up is not None else set()
            for i, column in enumerate(kind.columns):
                alone = not share or (i < len(kind.table.columns) and column.spec.field in ordered)
                type_ = None if alone else shared_type(column)
                place = next(
                    (
                        j
                        for j, slot in enumerate(slots)
                        if type_ is not None and slot.type == type_ and j not in taken
                    ),
                    None,
                )
                if place is None:
                    place = len(slots)
                    slots.append(_Slot(type_))
                slots[place].columns.append(column)
                taken.add(place)
                kind.at.append(place + 1)  # after the tag
        self._slots = slots
        self.width = len(slots)
        checks = dict.fromkeys(
            _check(c, s.type) for s in slots if s.shared and s.type for c in s.columns
        )
        self.guard = " AND ".join(checks)

    def items(self, kind: Kind) -> list[str]:
        """The select items of `kind`'s rows, slot by slot (without the tag)."""
        mine = dict(zip(kind.at, kind.columns, strict=True))
        items = []
        for place, slot in enumerate(self._slots, start=1):
            column = mine.get(place)
            if not slot.shared:
                items.append(slot.columns[0].null if column is None else column.item)
            elif column is None:
                items.append(f"NULL::{slot.type}")
            else:
                items.append(f"{column.item}::{slot.type}")
        return items
