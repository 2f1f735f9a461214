"""SQL text for a mapping, built once per query shape and reused.

Identifiers come only from the mapping and are quoted; values are always bind
parameters. The text depends only on the shape of a query (which fields, which
operators, which are NULL, the order, whether there is a limit), never on the
values, so asyncpg's statement cache hits on every repeat.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from repo._columns import quote
from repo._mapping import Table
from repo._query import Condition, Operator, Order, RowLock

from .sql_update import assignments
from .sql_upsert import by_values_sql, column_list, upsert_all_sql, upsert_one_sql, upsert_sql

__all__ = ["Statements", "arguments", "statements"]

T = TypeVar("T")

Shape = tuple[Any, ...]


class Statements(Generic[T]):
    """The statements of one table; built lazily, cached by shape."""

    def __init__(self, table: Table[T]) -> None:
        self.table = table
        t = table.qualified_name
        cols = table.select_list
        key = self.key_match()
        self.get = f"SELECT {cols} FROM {t} WHERE {key}"
        self.get_many = f"SELECT {cols} FROM {t} WHERE {self._key_in()}"
        self.delete = f"DELETE FROM {t} WHERE {key}"
        self.delete_many = f"DELETE FROM {t} WHERE {self._key_in()}"
        self.exists_key = f"SELECT EXISTS (SELECT 1 FROM {t} WHERE {key})"
        self._insert: dict[tuple[str, ...], tuple[str, tuple[int, ...]]] = {}
        self._select: dict[Shape, str] = {}
        self._count: dict[Shape, str] = {}
        self._exists: dict[Shape, str] = {}
        self._other: dict[Shape, Any] = {}
        # Unquoted for copy_records_to_table (which quotes it); quoted in SQL.
        self.staging_name = f"_repo_stage_{table.name}"
        self._build_update()

    def key_match(self, start: int = 0) -> str:
        """``"k" = $1``, or ``"a" = $1 AND "b" = $2`` for a composite key (after `start`)."""
        return " AND ".join(
            f"{quote(c)} = ${n}" for n, c in enumerate(self.table.key_columns, start + 1)
        )

    def _key_in(self) -> str:
        """The key among those of $1 (an array); $1, $2, ... one array per part if composite."""
        table = self.table
        if not table.composite:
            return f"{quote(table.key_columns[0])} = ANY($1)"
        cols = ", ".join(quote(c) for c in table.key_columns)
        arrays = ", ".join(
            f"${n}::{table.field(f).sql_type}[]" for n, f in enumerate(table.key_fields, 1)
        )
        return f"({cols}) IN (SELECT * FROM unnest({arrays}))"

    def _build_update(self) -> None:
        table = self.table
        t = table.qualified_name
        keys = table.key_fields
        self.update_fields = tuple(f for f in table.field_names if f not in keys)
        self.update_positions = tuple(table.field_names.index(f) for f in self.update_fields)
        param = {f: f"${i}" for i, f in enumerate(self.update_fields, start=len(keys) + 1)}
        sets = assignments(table, self.update_fields, param.__getitem__)
        where = self.key_match()
        if table.version is not None:
            version_at = len(keys) + 1 + self.update_fields.index(table.version)
            where += f" AND {quote(table.column_of(table.version))} = ${version_at}"
        set_sql = ", ".join(sets) if sets else f"{quote(table.key_columns[0])} = $1"
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

    def where(self, conditions: Sequence[Condition], start: int = 0) -> str:
        """The WHERE clause (or '') for `conditions`, numbering parameters after `start`.

        `arguments` gives its values.
        """
        if not conditions:
            return ""
        parts = []
        n = start
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

    def locked(self, sql: str, lock: RowLock | None) -> str:
        """`sql` (a SELECT) with the row-lock clause, which PostgreSQL takes after LIMIT."""
        if lock is None:
            return sql
        found: str | None = self._other.get((sql, lock))
        if found is None:
            found = self._other[(sql, lock)] = f"{sql}{lock.sql}"
        return found

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

    def _cached(self, shape: Shape, build: Any) -> Any:
        found = self._other.get(shape)
        if found is None:
            found = build()
            self._other[shape] = found
        return found

    def page(
        self, conditions: Sequence[Condition], orders: Sequence[Order], after: bool
    ) -> tuple[str, list[Any]]:
        """A keyset page: filters, then ``(a, key) > ($n, $m)`` when `after`, ordered, limited.

        The arguments returned are the filters'; the caller appends the
        ordering values (when `after`) and the limit.
        """
        shape = ("page", tuple(c.shape for c in conditions), tuple(orders), after)
        args = arguments(conditions)

        def build() -> str:
            n = len(args)
            where = self.where(conditions)
            if after:
                cols = ", ".join(quote(self.table.column_of(o.field)) for o in orders)
                params = ", ".join(f"${n + i}" for i in range(1, len(orders) + 1))
                op = "<" if orders[0].descending else ">"
                keyset = f"({cols}) {op} ({params})"
                where = f"{where} AND {keyset}" if where else f" WHERE {keyset}"
                n += len(orders)
            return (
                f"SELECT {self.table.select_list} FROM {self.table.qualified_name}"
                f"{where}{self.order(orders)} LIMIT ${n + 1}"
            )

        sql: str = self._cached(shape, build)
        return sql, args

    def delete_where(self, conditions: Sequence[Condition]) -> tuple[str, list[Any]]:
        shape = ("delete", tuple(c.shape for c in conditions))
        sql: str = self._cached(
            shape,
            lambda: f"DELETE FROM {self.table.qualified_name}{self.where(conditions)}",
        )
        return sql, arguments(conditions)

    def update_where(
        self, fields: Sequence[str], conditions: Sequence[Condition]
    ) -> tuple[str, int]:
        """UPDATE setting `fields` from $1..$k, then the filters' parameters."""
        shape = ("update", tuple(fields), tuple(c.shape for c in conditions))

        def build() -> str:
            table = self.table
            sets = [f"{quote(table.column_of(f))} = ${i}" for i, f in enumerate(fields, 1)]
            if table.version is not None and table.version not in fields:
                v = quote(table.column_of(table.version))
                sets.append(f"{v} = {v} + 1")
            where = self.where(conditions, start=len(fields))
            return f"UPDATE {table.qualified_name} SET {', '.join(sets)}{where}"

        sql: str = self._cached(shape, build)
        return sql, len(fields)

    def upsert(
        self,
        positions: tuple[int, ...],
        on: tuple[str, ...],
        update: tuple[str, ...],
        source: str | None = None,
        returning: str | None = None,
    ) -> str:
        """INSERT ... ON CONFLICT ... DO UPDATE of changed rows (see `upsert_sql`)."""
        shape = ("upsert", positions, on, update, source, returning)
        sql: str = self._cached(
            shape,
            lambda: upsert_sql(
                self.table, positions, on, update, source=source, returning=returning
            ),
        )
        return sql

    def upsert_one(
        self, positions: tuple[int, ...], on: tuple[str, ...], update: tuple[str, ...]
    ) -> str:
        """An upsert of one row returning it, changed or not (see `upsert_one_sql`)."""
        shape = ("upsert_one", positions, on, update)
        sql: str = self._cached(shape, lambda: upsert_one_sql(self.table, positions, on, update))
        return sql

    def upsert_counted(
        self, positions: tuple[int, ...], on: tuple[str, ...], update: tuple[str, ...], source: str
    ) -> str:
        """An upsert from `source` returning one row: (rows inserted, rows written)."""

        def build() -> str:
            written = upsert_sql(
                self.table, positions, on, update, source=source, returning="(xmax = 0) AS i"
            )
            return f"WITH w AS ({written}) SELECT count(*) FILTER (WHERE i), count(*) FROM w"

        sql: str = self._cached(("upsert_counted", positions, on, update, source), build)
        return sql

    def upsert_all(
        self,
        positions: tuple[int, ...],
        on: tuple[str, ...],
        update: tuple[str, ...],
        source: str,
    ) -> str:
        """An upsert from `source` returning every row given (see `upsert_all_sql`)."""
        shape = ("upsert_all", positions, on, update, source)
        sql: str = self._cached(
            shape, lambda: upsert_all_sql(self.table, positions, on, update, source)
        )
        return sql

    def by_values(self, fields: tuple[str, ...]) -> str:
        """SELECT of the row whose `fields` equal $1, $2, ..."""
        sql: str = self._cached(("by_values", fields), lambda: by_values_sql(self.table, fields))
        return sql

    def bulk_insert(self, positions: tuple[int, ...], source: str) -> str:
        """INSERT ... SELECT from a staging table, in its order, returning every column."""

        def build() -> str:
            table = self.table
            cols = self.columns(positions)
            return (
                f"INSERT INTO {table.qualified_name} ({cols}) "
                f"SELECT {cols} FROM {source} ORDER BY _repo_ord RETURNING {table.select_list}"
            )

        sql: str = self._cached(("bulk", positions, source), build)
        return sql

    def can_unnest(self, positions: tuple[int, ...]) -> bool:
        """Whether `unnest_insert` can carry the columns at `positions`.

        Not an array column (an array of arrays would be one flat array to
        unnest), nor json or jsonb (a list value would be taken for an array
        of values, not for one JSON array).
        """
        columns = [self.table.columns[i] for i in positions]
        return not any(c.array or c.kind in ("json", "jsonb") for c in columns)

    def unnest_insert(self, positions: tuple[int, ...]) -> str:
        """INSERT ... SELECT FROM unnest($1::type[], ...) RETURNING: one array per column."""

        def build() -> str:
            table = self.table
            cols = self.columns(positions)
            arrays = ", ".join(
                f"${n}::{table.columns[i].sql_type}[]" for n, i in enumerate(positions, 1)
            )
            return (
                f"INSERT INTO {table.qualified_name} ({cols}) "
                f"SELECT * FROM unnest({arrays}) RETURNING {table.select_list}"
            )

        sql: str = self._cached(("unnest", positions), build)
        return sql

    def staging(self, positions: tuple[int, ...]) -> str:
        """CREATE TEMP TABLE `staging_name` with an ordinal and the columns at `positions`.

        One name per table is enough: a bulk operation holds its connection
        from CREATE to DROP, and ON COMMIT DROP covers a failure in between.
        """

        def build() -> str:
            return (
                f"CREATE TEMP TABLE {quote(self.staging_name)} ON COMMIT DROP AS "
                f"SELECT 0::bigint AS _repo_ord, {self.columns(positions)} "
                f"FROM {self.table.qualified_name} WITH NO DATA"
            )

        sql: str = self._cached(("staging", positions), build)
        return sql

    def columns(self, positions: tuple[int, ...]) -> str:
        """The quoted column list of the fields at `positions`."""
        return column_list(self.table, positions)


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
