"""SQL text for a mapping, built once per query shape and reused.

Identifiers come only from the mapping and are quoted; values are always bind
parameters. The text depends only on the shape of a query (which fields, which
operators, which are NULL, the order, whether there is a limit), never on the
values, so asyncpg's statement cache hits on every repeat.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from ._mapping import Table, quote
from ._query import Condition, Operator, Order

__all__ = ["Statements", "arguments", "statements"]

T = TypeVar("T")

Shape = tuple[Any, ...]


class Statements(Generic[T]):
    """The statements of one table; built lazily, cached by shape."""

    def __init__(self, table: Table[T]) -> None:
        self.table = table
        t = table.qualified_name
        cols = table.select_list
        key = quote(table.key_column)
        self.get = f"SELECT {cols} FROM {t} WHERE {key} = $1"
        self.get_many = f"SELECT {cols} FROM {t} WHERE {key} = ANY($1)"
        self.delete = f"DELETE FROM {t} WHERE {key} = $1"
        self.exists_key = f"SELECT EXISTS (SELECT 1 FROM {t} WHERE {key} = $1)"
        self._insert: dict[tuple[str, ...], tuple[str, tuple[int, ...]]] = {}
        self._select: dict[Shape, str] = {}
        self._count: dict[Shape, str] = {}
        self._exists: dict[Shape, str] = {}
        self._build_update()

    def _build_update(self) -> None:
        table = self.table
        t = table.qualified_name
        key = table.key
        self.update_fields = tuple(f for f in table.field_names if f != key)
        self.update_positions = tuple(table.field_names.index(f) for f in self.update_fields)
        sets = []
        for i, f in enumerate(self.update_fields, start=2):
            column = quote(table.column_of(f))
            if f == table.version:
                sets.append(f"{column} = {column} + 1")
            elif table.field(f).generated:
                # None in a generated field (a created_at the entity never
                # read back) keeps what the database holds, as add() would.
                sets.append(f"{column} = COALESCE(${i}, {column})")
            else:
                sets.append(f"{column} = ${i}")
        where = f"{quote(table.key_column)} = $1"
        if table.version is not None:
            version_at = 2 + self.update_fields.index(table.version)
            where += f" AND {quote(table.column_of(table.version))} = ${version_at}"
        set_sql = ", ".join(sets) if sets else f"{quote(table.key_column)} = $1"
        self.update = f"UPDATE {t} SET {set_sql} WHERE {where} RETURNING {table.select_list}"

    def insert(self, omitted: tuple[str, ...]) -> tuple[str, tuple[int, ...]]:
        """The INSERT for an entity whose generated fields `omitted` are None.

        Returns the SQL and the positions of the values it takes.
        """
        found = self._insert.get(omitted)
        if found is None:
            table = self.table
            positions = tuple(i for i, f in enumerate(table.field_names) if f not in omitted)
            t = table.qualified_name
            if positions:
                cols = ", ".join(quote(table.columns[i].column) for i in positions)
                params = ", ".join(f"${n}" for n in range(1, len(positions) + 1))
                body = f"({cols}) VALUES ({params})"
            else:
                body = "DEFAULT VALUES"
            found = (f"INSERT INTO {t} {body} RETURNING {table.select_list}", positions)
            self._insert[omitted] = found
        return found

    def where(self, conditions: Sequence[Condition]) -> str:
        """The WHERE clause (or '') for `conditions`; `arguments` gives its values."""
        if not conditions:
            return ""
        parts = []
        n = 0
        for c in conditions:
            column = quote(self.table.column_of(c.field))
            op = c.operator
            if c.value is None:
                parts.append(f"{column} IS NULL" if op is Operator.EQ else f"{column} IS NOT NULL")
            elif op is Operator.IN:
                n += 1
                parts.append(f"{column} = ANY(${n})")
            elif op is Operator.NOT_IN:
                n += 1
                parts.append(f"{column} <> ALL(${n})")
            elif op is Operator.BETWEEN:
                n += 2
                parts.append(f"{column} BETWEEN ${n - 1} AND ${n}")
            else:
                n += 1
                parts.append(f"{column} {op.value.upper()} ${n}")
        return " WHERE " + " AND ".join(parts)

    def order(self, orders: Sequence[Order]) -> str:
        if not orders:
            return ""
        keys = ", ".join(
            f"{quote(self.table.column_of(o.field))}{' DESC' if o.descending else ''}"
            for o in orders
        )
        return f" ORDER BY {keys}"

    def select(
        self,
        conditions: Sequence[Condition],
        orders: Sequence[Order] = (),
        limit: int | None = None,
        offset: int | None = None,
    ) -> tuple[str, list[Any]]:
        """SELECT of whole rows, with filters, order, limit and offset."""
        shape = (
            tuple(c.shape for c in conditions),
            tuple(orders),
            limit is not None,
            offset is not None,
        )
        args = arguments(conditions)
        sql = self._select.get(shape)
        if sql is None:
            n = len(args)
            where = self.where(conditions)
            tail = ""
            if limit is not None:
                n += 1
                tail += f" LIMIT ${n}"
            if offset is not None:
                n += 1
                tail += f" OFFSET ${n}"
            sql = (
                f"SELECT {self.table.select_list} FROM {self.table.qualified_name}"
                f"{where}{self.order(orders)}{tail}"
            )
            self._select[shape] = sql
        if limit is not None:
            args.append(limit)
        if offset is not None:
            args.append(offset)
        return sql, args

    def count(self, conditions: Sequence[Condition]) -> tuple[str, list[Any]]:
        shape = tuple(c.shape for c in conditions)
        args = arguments(conditions)
        sql = self._count.get(shape)
        if sql is None:
            where = self.where(conditions)
            sql = f"SELECT count(*) FROM {self.table.qualified_name}{where}"
            self._count[shape] = sql
        return sql, args

    def exists(self, conditions: Sequence[Condition]) -> tuple[str, list[Any]]:
        shape = tuple(c.shape for c in conditions)
        args = arguments(conditions)
        sql = self._exists.get(shape)
        if sql is None:
            where = self.where(conditions)
            sql = f"SELECT EXISTS (SELECT 1 FROM {self.table.qualified_name}{where})"
            self._exists[shape] = sql
        return sql, args


def arguments(conditions: Sequence[Condition]) -> list[Any]:
    """The bind values of `conditions`, in the order `Statements.where` numbers them."""
    args: list[Any] = []
    for c in conditions:
        if c.value is None:
            continue
        if c.operator is Operator.BETWEEN:
            args.extend(c.value)
        else:
            args.append(c.value)
    return args


def statements(table: Table[T]) -> Statements[T]:
    """The (cached) statements of `table`."""
    found: Statements[T] | None = table.__dict__.get("_statements")
    if found is None:
        found = Statements(table)
        table.__dict__["_statements"] = found
    return found
