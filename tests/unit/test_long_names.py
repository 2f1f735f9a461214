"""Constraint and index names past 63 bytes: cut as the server cuts them, everywhere."""

from __future__ import annotations

import attrs

from repo import ForeignKey, Table
from repo._columns import server_name
from repo.migrations import metadata


@attrs.frozen
class Wide:
    wide_id: int
    a_column_name_long_enough_to_matter: str
    another_column_name_long_enough_too: int | None = None


NAME = "a_table_whose_name_alone_takes_up_most_of_the_63_bytes"
WIDE = Table(
    NAME,
    Wide,
    key="wide_id",
    unique=[("a_column_name_long_enough_to_matter", "another_column_name_long_enough_too")],
    foreign_keys={"another_column_name_long_enough_too": ForeignKey(NAME, "wide_id")},
    indexes=["another_column_name_long_enough_too"],
)


def test_server_name_cuts_at_63_bytes_on_a_character_boundary() -> None:
    """ASCII is cut at 63 characters; a two-byte character is never split."""
    assert server_name("x" * 70) == "x" * 63
    assert server_name("x" * 62 + "é" + "y") == "x" * 62
    assert server_name("é" * 40).encode() == ("é" * 31).encode()
    assert server_name("short") == "short"


def test_migrations_create_long_names_as_the_server_stores_them() -> None:
    """The metadata names each constraint and index by its cut name (SQLAlchemy refuses
    longer ones), which is what the errors carry and `Table.constraint` finds."""
    table = metadata([WIDE]).tables[NAME]
    names = {c.name for c in table.constraints} | {i.name for i in table.indexes}
    declared = [WIDE.unique[0].name, WIDE.foreign_keys[0].name, WIDE.indexes[0].name]
    assert all(len(n) > 63 for n in declared[:2])  # an index's default name is cut when made
    assert {server_name(n) for n in declared} <= names
    assert all(len(str(n).encode()) <= 63 for n in names)
    columns = ("a_column_name_long_enough_to_matter", "another_column_name_long_enough_too")
    assert WIDE.constraint(server_name(WIDE.unique[0].name)) == (NAME, columns)
    assert WIDE.constraint(server_name(WIDE.foreign_keys[0].name)) == (NAME, columns[1:])
