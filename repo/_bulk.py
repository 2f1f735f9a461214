"""Rows for bulk loads: entities (from any iterable or async iterable) to COPY records."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Sequence
from typing import Any

import attrs

from ._checks import check_lines
from ._mapping import Table
from .errors import InvalidQuery

__all__ = [
    "UpsertResult",
    "failed_record",
    "numbered",
    "records",
    "update_fields",
    "upsert_fields",
    "upsert_many_plan",
    "upsert_positions",
]


@attrs.frozen
class UpsertResult:
    """What a bulk upsert did: rows inserted, rows updated, and rows left as they were.

    A row that already held every value given is `unchanged`: not written,
    its version not bumped.
    """

    inserted: int
    updated: int
    unchanged: int = 0

    @property
    def total(self) -> int:
        """Every entity given: inserted, updated or unchanged."""
        return self.inserted + self.updated + self.unchanged


@functools.lru_cache(maxsize=512)
def _checker(table: Table[Any], positions: tuple[int, ...], required: tuple[int, ...]) -> Any:
    """``row(n, entity)``, entity #n's COPY record, checked, and ``rows(entities)``.

    Generated once per shape. Like `Table.check_values`, the common case
    runs inline, with no call: a class test, each field read once, the type
    tests, the record; ``rows`` does it in one loop over an iterable.
    """
    cls = table.entity
    env: dict[str, Any] = {}

    def wrong_class(n: int, entity: Any) -> None:
        msg = f"{table.name} stores {cls.__name__} objects, got {type(entity).__name__} (#{n})"
        raise InvalidQuery(msg)

    def left_to_the_database(n: int, i: int, value: Any) -> None:
        field = table.field_names[i]
        msg = (
            f"bulk loads leave {field} to the database, but entity #{n} has "
            f"{field}={value!r}: use add() or upsert for it"
        )
        raise InvalidQuery(msg)

    def missing(n: int, i: int) -> None:
        msg = f"entity #{n} has no {table.field_names[i]}, which the upsert matches on"
        raise InvalidQuery(msg)

    names = [f"v{i}" for i in range(len(table.field_names))]
    # The body checks `entity` (entity #`where`) into the variables `names`.
    head = [
        "    if entity.__class__ is not cls and not isinstance(entity, cls):",
        "        wrong_class(where, entity)",
        *(f"    {v} = entity.{f}" for v, f in zip(names, table.field_names, strict=True)),
    ]
    tail = []
    left_out = {i for _field, i in table.generated_positions if i not in positions}
    for i in sorted(left_out):
        tail.append(f"    if {names[i]} is not None:")
        tail.append(f"        left_to_the_database(where, {i}, {names[i]})")
    for i in required:
        tail.append(f"    if {names[i]} is None:")
        tail.append(f"        missing(where, {i})")
    body = [*head, *check_lines(table.columns, table.name, names, env), *tail]
    screen = [
        *head,
        *check_lines(table.columns, table.name, names, env, screen=True, skip=left_out),
        *tail,
    ]
    record = f"({''.join(f'{names[i]}, ' for i in positions)})"
    row = ["def row(where, entity):", *body, f"    return {record}"]

    def generator(name: str, lines: list[str]) -> list[str]:
        """`lines` over a whole iterable, as a generator: no call per entity.

        While it waits at its yield, its locals say which entity it gave
        last: `where` and `record` (see `failed_record`).
        """
        return [
            f"def {name}(entities):",
            "    where = 0",
            "    for entity in entities:",
            *(f"    {line}" for line in lines),
            f"        record = {record}",
            "        yield record",
            "        where += 1",
        ]

    env.update(
        cls=cls,
        wrong_class=wrong_class,
        left_to_the_database=left_to_the_database,
        missing=missing,
    )
    exec("\n".join(row), env)
    exec("\n".join(generator("rows", body)), env)
    exec("\n".join(generator("screened", screen)), env)
    return env["row"], env["rows"], env["screened"]


# Up to this many entities in a list, bulk loads check them all before
# sending any. Beyond it they are checked as they are sent: holding a checked
# copy of a big list costs more (memory, and the garbage collector walking
# it) than the round trip a bad entity then wastes.
CHECK_WHOLE_MAX = 10_000


def records(
    table: Table[Any],
    entities: Iterable[Any] | AsyncIterable[Any],
    positions: tuple[int, ...],
    required: tuple[int, ...],
    *,
    screen: bool = False,
) -> Iterator[tuple[Any, ...]] | AsyncIterator[tuple[Any, ...]]:
    """COPY records of `entities`, the fields at `positions`, checked one by one.

    A list or tuple of up to `CHECK_WHOLE_MAX` entities is checked whole
    before anything is sent, so a bad entity costs no round trip; a longer
    one, or any other iterable, is checked as it is sent (never held in
    memory a second time), and a bad entity part-way aborts the COPY: either
    way nothing is stored, and the error is the same.

    With `screen` (for a server that refuses what a screen leaves out), a
    list or tuple past `CHECK_WHOLE_MAX` is only screened as it is sent
    (see `check_lines`), which costs a third of the full check; if the load
    fails, the caller calls `recheck`, which raises the same error the full
    check would have.
    """
    row, rows, screened = _checker(table, positions, required)
    if screen and screens(entities):
        fast: Iterator[tuple[Any, ...]] = screened(entities)
        return fast
    if isinstance(entities, AsyncIterable):

        async def lazy() -> AsyncIterator[tuple[Any, ...]]:
            where = 0
            async for entity in entities:
                record = row(where, entity)
                yield record
                where += 1

        return lazy()
    if isinstance(entities, Sequence) and len(entities) <= CHECK_WHOLE_MAX:
        return _replay(list(rows(entities)))
    given: object = entities
    if not isinstance(given, Iterable):
        msg = f"bulk loads take an iterable or async iterable of entities, got {given!r}"
        raise InvalidQuery(msg)
    checked: Iterator[tuple[Any, ...]] = rows(entities)
    return checked


def _replay(checked: list[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """The records `checked`, from a generator that knows its place (see `failed_record`)."""
    for where, record in enumerate(checked):  # noqa: B007 (read by failed_record)
        yield record


def failed_record(rows: object) -> tuple[int, tuple[Any, ...]] | None:
    """After a COPY of `rows` (from `records`) failed: (n, record) of entity #n, if its
    encoding is what failed, else None (the failure came from reading the entities).

    The driver encodes each record right after it is yielded, so a generator
    still waiting at its yield gave the record the driver could not encode;
    one that raised has finished.
    """
    if inspect.isgenerator(rows):
        if inspect.getgeneratorstate(rows) != inspect.GEN_SUSPENDED:
            return None
        found = inspect.getgeneratorlocals(rows)
    elif inspect.isasyncgen(rows):
        frame = rows.ag_frame
        if frame is None or rows.ag_running:
            return None
        found = frame.f_locals
    else:
        return None
    if "record" not in found:
        return None
    return found["where"], found["record"]


def screens(entities: object) -> bool:
    """Whether `records(..., screen=True)` only screens `entities`."""
    return isinstance(entities, Sequence) and len(entities) > CHECK_WHOLE_MAX


def recheck(
    table: Table[Any],
    entities: Sequence[Any],
    positions: tuple[int, ...],
    required: tuple[int, ...],
) -> None:
    """After a screened load failed: the full check's error for the first bad entity, if any."""
    _row, rows, _screened = _checker(table, positions, required)
    for _record in rows(entities):
        pass


def numbered(
    rows: Iterator[tuple[Any, ...]] | AsyncIterator[tuple[Any, ...]],
) -> Iterator[tuple[Any, ...]] | AsyncIterator[tuple[Any, ...]]:
    """`rows` each prefixed with its ordinal (1, 2, ...), keeping sync rows sync."""
    if isinstance(rows, AsyncIterator):

        async def counted() -> AsyncIterator[tuple[Any, ...]]:
            n = 0
            async for r in rows:
                n += 1
                yield (n, *r)

        return counted()
    return ((n, *r) for n, r in enumerate(rows, 1))


def upsert_positions(
    table: Table[Any], values: tuple[Any, ...], on: tuple[str, ...]
) -> tuple[int, ...]:
    """The fields one upsert inserts: all but generated ones left None (and not in `on`)."""
    for f in on:
        if values[table.field_names.index(f)] is None:
            msg = f"upsert on {on!r} needs a value for {f!r}, got None"
            raise InvalidQuery(msg)
    return tuple(
        i
        for i, c in enumerate(table.columns)
        if not (c.generated and values[i] is None and c.field not in on)
    )


def update_fields(
    table: Table[Any],
    positions: tuple[int, ...],
    on: tuple[str, ...],
    update: tuple[str, ...] | None,
) -> tuple[str, ...]:
    """The fields overwritten on conflict: `update`, or every inserted one but `on` and the key."""
    inserted = [table.columns[i].field for i in positions]
    if update is None:
        return tuple(f for f in inserted if f not in on and f not in table.key_fields)
    for f in update:
        if f not in inserted:
            msg = f"upsert cannot update {f!r}: it is not among the inserted columns {inserted}"
            raise InvalidQuery(msg)
    return update


def upsert_many_plan(
    table: Table[Any], on: tuple[str, ...], update: tuple[str, ...] | None
) -> tuple[tuple[int, ...], tuple[str, ...], tuple[int, ...]]:
    """A bulk upsert's fields: inserted (positions), overwritten on conflict, and required.

    Every entity carries the same columns: all but the generated ones outside
    `on`; the `on` fields must hold values. Both backends follow this plan.
    """
    positions = tuple(i for i, c in enumerate(table.columns) if not c.generated or c.field in on)
    required = tuple(table.field_names.index(f) for f in on)
    return positions, update_fields(table, positions, on, update), required


def upsert_fields(table: Table[Any], fields: Sequence[str] | None) -> tuple[str, ...] | None:
    """The fields an upsert updates on conflict (None: all but the key), checked."""
    if fields is None:
        return None
    if isinstance(fields, str):
        fields = (fields,)
    for f in fields:
        table.field(f, purpose="upsert update=")
    return tuple(fields)
