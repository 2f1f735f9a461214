"""Many aggregates read in one statement of flat rows: the roots, then each kind of child.

`get_many`, `find` and `page` read many roots at once. As arrays of
anonymous rows (`aggregate.py`), their children cost the client a codec
look-up per field (asyncpg decodes a ``record`` field by field, by the OID
each carries); as plain rows, they cost what any fetch costs. So these reads
run one statement of this form (an order, its lines, each line's notes):

    WITH _repo_r AS MATERIALIZED (                   -- the roots, numbered in their order
           SELECT _i.*, row_number() OVER (ORDER BY ...) AS _repo_ord FROM (<root SELECT>) _i),
         _repo_c1 AS MATERIALIZED (                  -- a kind with children of its own
           SELECT <line's columns> FROM line AS _s
           WHERE _s.order_no = ANY(ARRAY(SELECT order_no FROM _repo_r)))
    SELECT 0, <slots: order's, its customer's columns, NULLs>, _k0._repo_ord
      FROM _repo_r AS _k0 LEFT JOIN customer AS _k0_0 ON ... WHERE <guard>
    UNION ALL SELECT 1, <slots: line's, its product's columns, NULLs>, NULL
      FROM _repo_c1 AS _k1 LEFT JOIN product AS _k1_0 ON ... WHERE <guard>
    UNION ALL SELECT 2, <slots: note's columns, NULLs>, NULL
      FROM note AS _k2 WHERE (_k2.order_no, _k2.line_no) IN (SELECT order_no, line_no FROM _repo_c1)
      AND <guard>
    UNION ALL SELECT -1, NULL, ... WHERE NOT (<guard>)
    ORDER BY 1, <the ordinal's position>, <each kind's order, by position>

Kinds share slots where the mapping declares their columns of one type,
each slot's NULLs typed as its columns are, so that UNION ALL never
coerces a type; the guard checks the declared types against the
database's, once per statement (`aggregate_layout.py`). The rows come
sorted by kind, each after its parents: the roots in their order, each kind
of child in its declared order; they are grouped in Python by the values
they reference. `get_many` orders its roots itself, and has no ordinal.
Streams keep one row per root (`aggregate.py`), which bounds their memory.
"""

from __future__ import annotations

import operator
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

from repo._aggregate import Aggregate
from repo._columns import quote
from repo._query import Order

from .aggregate_group import KEYS, maker, taker
from .aggregate_kinds import kinds_of
from .aggregate_layout import DRIFTED, Layout

__all__ = ["FlatStatements"]

_TAG = operator.itemgetter(0)


class FlatStatements:
    """The flat statement of an aggregate around each root SELECT, and the grouping of its rows.

    Not `share`, every column has a slot of its own (see `aggregate_layout.py`).
    """

    def __init__(self, agg: Aggregate[Any], *, share: bool = True) -> None:
        self.agg = agg
        self.kinds = kinds_of(agg)
        self.layout = Layout(self.kinds, share=share)
        self._wrapped: dict[tuple[str, tuple[Order, ...], bool], str] = {}
        self._tails = {n: self._build_tail(n) for n in (False, True)}
        self._take = [taker(k) for k in self.kinds]
        self._make = maker(self.kinds[0])

    def _build_tail(self, numbered: bool) -> tuple[str, str]:
        """The CTEs after the root's, and the UNION ALL of every kind with its ORDER BY.

        A row is its kind's tag, the slots, and when `numbered` the roots'
        ordinal last (so that no position moves without it).
        """
        layout = self.layout
        guard = layout.guard
        ctes = ""
        branches = []
        for kind in self.kinds:
            items = [str(kind.tag), *layout.items(kind)]
            if numbered:
                items.append("NULL::bigint" if kind.up else f"{kind.alias}._repo_ord")
            source, where = f"{kind.source} AS {kind.alias}", []
            if kind.up is not None:
                if kind.cte:
                    t = kind.table
                    ctes += (
                        f", {kind.source} AS MATERIALIZED (SELECT {t.select_list} FROM "
                        f"{t.qualified_name} AS _s WHERE {kind.filter(kind.up, '_s')})"
                    )
                else:
                    source = f"{kind.table.qualified_name} AS {kind.alias}"
                    where.append(kind.filter(kind.up, kind.alias))
            if guard:
                where.append(guard)
            conditions = f" WHERE {' AND '.join(where)}" if where else ""
            branches.append(f"SELECT {', '.join(items)} FROM {source}{kind.joins}{conditions}")
        if guard:
            nulls = ["NULL"] * (layout.width + numbered)
            branches.append(f"SELECT {DRIFTED}, {', '.join(nulls)} WHERE NOT ({guard})")
        keys = ["1"]
        if numbered:
            keys.append(str(layout.width + 2))
        order = ", ".join(keys + [o for k in self.kinds for o in k.order()])
        return ctes, " UNION ALL ".join(branches) + f" ORDER BY {order}"

    def wrap(self, inner: str, orders: Sequence[Order], *, numbered: bool = True) -> str:
        """The statement reading the aggregates of the roots `inner` selects, in `orders`.

        Not `numbered`, the roots come in any order (for `get_many`, which orders them).
        """
        shape = (inner, tuple(orders), numbered)
        found = self._wrapped.get(shape)
        if found is None:
            table = self.agg.root
            ctes, union = self._tails[numbered]
            if numbered:
                # In their order, or as `inner` gives them (a table's order on disk,
                # as the one-table reads give it) where none is asked for.
                over = ", ".join(
                    f"_i.{quote(table.column_of(o.field))}{' DESC' if o.descending else ''}"
                    for o in orders
                )
                root = (
                    f"SELECT _i.*, row_number() OVER ({'ORDER BY ' + over if orders else ''})"
                    f" AS _repo_ord FROM ({inner}) AS _i"
                )
            else:
                root = inner
            found = f"WITH _repo_r AS MATERIALIZED ({root}){ctes} {union}"
            self._wrapped[shape] = found
        return found

    @staticmethod
    def drifted(rows: Sequence[Any]) -> bool:
        """Whether `rows` are the one row of a failed guard: read again, unshared."""
        return bool(rows) and rows[0][0] == DRIFTED

    def assemble(self, rows: Sequence[Any]) -> tuple[list[Any], list[Any]]:
        """The aggregates of `rows`, in the roots' order, and their roots' keys."""
        roots: list[Any] = []
        index: dict[int, Any] = {KEYS: []}
        take = self._take
        start = 0
        for tag in range(len(take)):
            # Each kind's rows follow the kind before it's: find where they end.
            end = bisect_right(rows, tag, lo=start, key=_TAG)
            take[tag](rows[start:end], roots, index)
            start = end
        make = self._make
        return [make(p) for p in roots], index[KEYS]
