"""Statement-level semantics on both backends: foreign keys at the statement's end,
ON DELETE actions, constraint names as the server stores them, server defaults.

The tests' own schema: a tree of nodes referencing each other (NO ACTION, and
RESTRICT), owners and their pets (SET DEFAULT, SET NULL), a cascade chain,
codes referenced by a unique column, a table with names past PostgreSQL's
63 bytes, and tickets whose key, time stamp and a few more columns the
database fills.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import attrs
import pytest

from repo import (
    Column,
    ForeignKey,
    ForeignKeyViolation,
    NotNullViolation,
    Repository,
    Table,
    UniqueViolation,
    UnitOfWork,
    UpsertResult,
    in_,
)

from .conftest import AnyDatabase
from .own_schema import own_schema, truncate


@attrs.frozen
class Node:
    node_id: int
    parent_id: int | None = None


@attrs.frozen
class Owner:
    owner_id: int
    name: str


@attrs.frozen
class Pet:
    pet_id: int
    name: str
    owner_id: int = 0
    sitter_id: int | None = None


@attrs.frozen
class Collar:
    collar_id: int
    owner_id: int


@attrs.frozen
class Level:
    level_id: int
    up_id: int | None = None


@attrs.frozen
class Note:
    note_id: int
    level_id: int


@attrs.frozen
class Code:
    code_id: int
    code: str


@attrs.frozen
class Use:
    use_id: int
    code: str | None


@attrs.frozen
class Lengthy:
    lengthy_id: int
    a_rather_long_column_name_for_a_reference: int | None = None
    another_long_column_name_that_is_unique: str | None = None


@attrs.frozen
class Ticket:
    title: str
    ticket_id: uuid.UUID | None = None
    opened_at: dt.datetime | None = None
    state: str | None = None
    priority: int | None = None
    tags: list[str] | None = None
    extra: dict[str, object] | None = None
    urgent: bool | None = None


NODES = Table(
    "st_node", Node, key="node_id", foreign_keys={"parent_id": ForeignKey("st_node", "node_id")}
)
STRICT = Table(
    "st_strict_node",
    Node,
    key="node_id",
    foreign_keys={"parent_id": ForeignKey("st_strict_node", "node_id", on_delete="RESTRICT")},
)
OWNERS = Table("st_owner", Owner, key="owner_id")
PETS = Table(
    "st_pet",
    Pet,
    key="pet_id",
    columns={"owner_id": Column(server_default="0")},
    foreign_keys={
        "owner_id": ForeignKey(OWNERS, on_delete="SET DEFAULT"),
        "sitter_id": ForeignKey(OWNERS, on_delete="SET NULL"),
    },
)
COLLARS = Table(
    "st_collar",
    Collar,
    key="collar_id",
    foreign_keys={"owner_id": ForeignKey(OWNERS, on_delete="SET NULL")},
)
# st_level rows cascade to their sub-levels and to their notes (CASCADE chain);
# st_blocker rows keep a level from going (NO ACTION).
LEVELS = Table(
    "st_level",
    Level,
    key="level_id",
    foreign_keys={"up_id": ForeignKey("st_level", "level_id", on_delete="CASCADE")},
)
NOTES = Table(
    "st_note",
    Note,
    key="note_id",
    foreign_keys={"level_id": ForeignKey(LEVELS, on_delete="CASCADE")},
)
BLOCKERS = Table("st_blocker", Note, key="note_id", foreign_keys={"level_id": LEVELS})
CODES = Table("st_code", Code, key="code_id", unique=["code"])
USES = Table("st_use", Use, key="use_id", foreign_keys={"code": ForeignKey(CODES, "code")})
LONG_NAME = "st_table_with_a_name_long_enough_to_push_constraints_past_63"
LENGTHY = Table(
    LONG_NAME,
    Lengthy,
    key="lengthy_id",
    unique=["another_long_column_name_that_is_unique"],
    foreign_keys={"a_rather_long_column_name_for_a_reference": ForeignKey(LONG_NAME, "lengthy_id")},
)
TICKETS = Table(
    "st_ticket",
    Ticket,
    key="ticket_id",
    columns={
        "ticket_id": Column(server_default="gen_random_uuid()"),
        "opened_at": Column(generated=True, server_default="now()"),
        "state": Column(generated=True, server_default="'open'::text"),
        "priority": Column(type="integer", generated=True, server_default="3"),
        "tags": Column(generated=True, server_default="'{}'::text[]"),
        "extra": Column(generated=True, server_default="'{}'::jsonb"),
        "urgent": Column(generated=True, server_default="false"),
    },
)
TABLES = (
    NODES,
    STRICT,
    OWNERS,
    PETS,
    COLLARS,
    CODES,
    USES,
    LEVELS,
    NOTES,
    BLOCKERS,
    LENGTHY,
    TICKETS,
)


class Nodes(Repository[Node]):
    table = NODES


class StrictNodes(Repository[Node]):
    table = STRICT


class Owners(Repository[Owner]):
    table = OWNERS


class Pets(Repository[Pet]):
    table = PETS


class Collars(Repository[Collar]):
    table = COLLARS


class Levels(Repository[Level]):
    table = LEVELS


class Notes(Repository[Note]):
    table = NOTES


class Blockers(Repository[Note]):
    table = BLOCKERS


class Codes(Repository[Code]):
    table = CODES


class Uses(Repository[Use]):
    table = USES


class Lengthies(Repository[Lengthy]):
    table = LENGTHY


class Tickets(Repository[Ticket]):
    table = TICKETS


class Work(UnitOfWork):
    nodes: Nodes
    strict: StrictNodes
    owners: Owners
    pets: Pets
    collars: Collars
    levels: Levels
    notes: Notes
    blockers: Blockers
    tickets: Tickets


@pytest.fixture(scope="module")
def statement_dsn(migrated_dsn: str) -> Iterator[str]:
    with own_schema(migrated_dsn, TABLES) as dsn:
        yield dsn


@pytest.fixture
def schema(backend_dsn: str | None, request: pytest.FixtureRequest) -> str | None:
    """The database holding the tests' tables on PostgreSQL (made once); None in memory."""
    return None if backend_dsn is None else str(request.getfixturevalue("statement_dsn"))


@pytest.fixture
async def sdb(db: AnyDatabase, schema: str | None) -> AnyDatabase:
    """`db` with the tests' own tables, empty."""
    await truncate(schema, TABLES)
    return db


async def _tree(repo: Nodes | StrictNodes) -> None:
    await repo.add(Node(1))
    await repo.add(Node(2, 1))
    await repo.add(Node(3, 2))


@pytest.mark.parametrize("cls", [Nodes, StrictNodes], ids=["no-action", "restrict"])
async def test_one_statement_deletes_a_parent_and_its_children(
    sdb: AnyDatabase, cls: type[Nodes]
) -> None:
    """A foreign key is checked at the end of the statement: delete_where may remove a
    parent and the rows that reference it together (NO ACTION and RESTRICT alike)."""
    nodes = sdb.repository(cls)
    await _tree(nodes)
    assert await nodes.delete_where(node_id=in_([1, 2, 3])) == 3
    assert await nodes.count() == 0


@pytest.mark.parametrize("cls", [Nodes, StrictNodes], ids=["no-action", "restrict"])
async def test_a_parent_still_referenced_at_the_statement_end_is_kept(
    sdb: AnyDatabase, cls: type[Nodes]
) -> None:
    """Deleting rows some remaining row references fails as a whole: nothing is deleted."""
    nodes = sdb.repository(cls)
    await _tree(nodes)
    with pytest.raises(ForeignKeyViolation) as got:
        await nodes.delete_where(node_id=in_([1, 3]))
    table = cls.table
    assert (got.value.table, got.value.constraint) == (table.name, table.foreign_keys[0].name)
    assert got.value.columns == ("parent_id",)
    with pytest.raises(ForeignKeyViolation):
        await nodes.delete(2)
    assert await nodes.count() == 3


async def test_rows_referencing_each_other_go_in_one_add_many(sdb: AnyDatabase) -> None:
    """add_many checks each row's reference once all rows are in: a child before its parent."""
    nodes = sdb.repository(Nodes)
    assert await nodes.add_many([Node(5, 4), Node(4), Node(6, 5)]) == 3
    with pytest.raises(ForeignKeyViolation):
        await nodes.add_many([Node(8, 7), Node(9)])
    assert await nodes.count() == 3


async def test_set_default_sets_the_key_to_its_default(sdb: AnyDatabase) -> None:
    """ON DELETE SET DEFAULT: the pets of a deleted owner go to owner 0 (the column's
    default); SET NULL empties the sitter; when the default references nothing, the delete fails."""
    async with Work(sdb) as uow:
        await uow.owners.add(Owner(0, "shelter"))
        await uow.owners.add(Owner(1, "ada"))
        await uow.pets.add(Pet(1, "rex", 1, sitter_id=1))
        await uow.pets.add(Pet(2, "tom", 1))
        await uow.pets.add(Pet(3, "kit", 0, sitter_id=1))
    pets = sdb.repository(Pets)
    owners = sdb.repository(Owners)
    await owners.delete(1)
    assert await pets.find(order_by="pet_id") == [
        Pet(1, "rex", 0),
        Pet(2, "tom", 0),
        Pet(3, "kit", 0),
    ]
    with pytest.raises(ForeignKeyViolation) as got:
        await owners.delete(0)
    assert got.value.table == "st_pet"
    assert got.value.constraint == PETS.foreign_keys[0].name
    assert await owners.count() == 1
    assert await pets.count(owner_id=0) == 3


async def test_cascade_runs_down_a_chain_and_fails_as_a_whole(sdb: AnyDatabase) -> None:
    """CASCADE deletes the sub-levels and their notes, level after level; a NO ACTION
    reference anywhere down the chain fails the whole statement."""
    async with Work(sdb) as uow:
        await uow.levels.add_many([Level(1), Level(2, 1), Level(3, 2), Level(4)])
        await uow.notes.add_many([Note(1, 1), Note(2, 3), Note(3, 4)])
        await uow.blockers.add(Note(1, 3))
    levels = sdb.repository(Levels)
    with pytest.raises(ForeignKeyViolation) as got:
        await levels.delete(1)
    assert (got.value.table, got.value.constraint) == ("st_blocker", BLOCKERS.foreign_keys[0].name)
    assert await levels.count() == 4
    assert await sdb.repository(Notes).count() == 3
    await sdb.repository(Blockers).delete(1)
    await levels.delete(1)
    assert [x.level_id for x in await levels.find()] == [4]
    assert await sdb.repository(Notes).find() == [Note(3, 4)]


async def test_a_rolled_back_cascade_leaves_rows_and_lookups_intact(sdb: AnyDatabase) -> None:
    """After a savepoint that cascaded is rolled back, the rows are back and found by key,
    by reference and by unique lookups; a later delete still sees the references."""
    async with Work(sdb) as uow:
        await uow.levels.add_many([Level(1), Level(2, 1)])
        await uow.notes.add(Note(1, 2))
        with pytest.raises(RuntimeError):
            async with uow.savepoint():
                await uow.levels.delete(1)
                raise RuntimeError
        assert await uow.notes.find(level_id=2) == [Note(1, 2)]
        await uow.blockers.add(Note(7, 2))
        with pytest.raises(ForeignKeyViolation):
            async with uow.savepoint():
                await uow.levels.delete(2)
        assert await uow.levels.count() == 2


async def test_long_constraint_names_are_cut_to_63_bytes(sdb: AnyDatabase) -> None:
    """Errors name a constraint as the server stores it (63 bytes), and the mapping finds
    the constraint by that name."""
    lengthy = sdb.repository(Lengthies)
    await lengthy.add(Lengthy(1, None, "x"))
    unique = LENGTHY.unique[0].name
    assert len(unique) > 63
    with pytest.raises(UniqueViolation) as dup:
        await lengthy.add(Lengthy(2, None, "x"))
    assert dup.value.constraint == unique[:63]
    assert dup.value.columns == ("another_long_column_name_that_is_unique",)
    assert LENGTHY.constraint(unique[:63]) == (LONG_NAME, dup.value.columns)
    fk = LENGTHY.foreign_keys[0].name
    assert len(fk) > 63
    with pytest.raises(ForeignKeyViolation) as missing:
        await lengthy.add(Lengthy(3, 99))
    assert missing.value.constraint == fk[:63]
    with pytest.raises(UniqueViolation) as key:
        await lengthy.add(Lengthy(1))
    assert key.value.constraint == LENGTHY.primary_key_name


async def test_server_defaults_fill_what_the_entity_leaves_out(sdb: AnyDatabase) -> None:
    """gen_random_uuid() makes the key, now() the transaction's start (one value for every
    row of the transaction), and constants and casts of constants their value."""
    before = dt.datetime.now(dt.UTC)
    async with Work(sdb) as uow:
        first = await uow.tickets.add(Ticket("one"))
        [second] = await uow.tickets.add_many([Ticket("two")], returning=True)
        third = await uow.tickets.add(Ticket("three", state="closed", priority=1))
    assert isinstance(first.ticket_id, uuid.UUID)
    assert len({first.ticket_id, second.ticket_id, third.ticket_id}) == 3
    assert first.opened_at is not None
    assert first.opened_at.utcoffset() == dt.timedelta(0)
    assert before - dt.timedelta(seconds=5) <= first.opened_at <= dt.datetime.now(dt.UTC)
    assert first.opened_at == second.opened_at == third.opened_at
    assert (first.state, first.priority, first.tags, first.extra, first.urgent) == (
        "open",
        3,
        [],
        {},
        False,
    )
    assert (third.state, third.priority) == ("closed", 1)
    tickets = sdb.repository(Tickets)
    assert await tickets.get(first.ticket_id) == first
    later = await tickets.add(Ticket("four"))
    assert later.opened_at is not None
    assert later.opened_at > first.opened_at


async def test_set_null_on_a_not_null_column_fails_the_delete(sdb: AnyDatabase) -> None:
    """SET NULL on a column that refuses NULL fails the delete (NotNullViolation), and a
    SET DEFAULT whose default references no row fails it too; nothing changes."""
    async with Work(sdb) as uow:
        await uow.owners.add(Owner(1, "ada"))
        await uow.owners.add(Owner(2, "bob"))
        await uow.pets.add(Pet(1, "rex", 1))
        await uow.collars.add(Collar(1, 2))
    with pytest.raises(NotNullViolation) as got:
        await sdb.repository(Owners).delete(2)
    assert (got.value.table, got.value.columns) == ("st_collar", ("owner_id",))
    with pytest.raises(ForeignKeyViolation) as fk:
        await sdb.repository(Owners).delete(1)
    assert (fk.value.table, fk.value.constraint) == ("st_pet", PETS.foreign_keys[0].name)
    assert await sdb.repository(Owners).count() == 2
    assert await sdb.repository(Collars).get(1) == Collar(1, 2)
    assert await sdb.repository(Pets).get(1) == Pet(1, "rex", 1)


async def test_a_referenced_value_an_update_changes_is_no_action(sdb: AnyDatabase) -> None:
    """A foreign key to a unique column: a row may reference a code that exists; an update
    (or upsert) that changes a code still referenced fails, one no row references goes
    through."""
    codes, uses = sdb.repository(Codes), sdb.repository(Uses)
    await codes.add_many([Code(1, "A"), Code(2, "B")])
    await uses.add(Use(1, "A"))
    with pytest.raises(ForeignKeyViolation) as missing:
        await uses.add(Use(2, "Z"))
    assert missing.value.constraint == USES.foreign_keys[0].name
    with pytest.raises(ForeignKeyViolation) as got:
        await codes.update_where({"code": "C"}, code="A")
    assert (got.value.table, got.value.constraint) == ("st_use", USES.foreign_keys[0].name)
    with pytest.raises(ForeignKeyViolation):
        await codes.update(Code(1, "D"))
    with pytest.raises(ForeignKeyViolation):
        await codes.upsert(Code(1, "E"), on="code_id")
    with pytest.raises(ForeignKeyViolation):
        await codes.upsert_many([Code(2, "B"), Code(1, "F")], on="code_id")
    assert await codes.upsert_many([Code(1, "A")], on="code_id") == UpsertResult(0, 0, 1)
    assert await codes.update_where({"code": "C"}, code="B") == 1
    assert await codes.update(Code(1, "A")) == Code(1, "A")
    await uses.update(Use(1, "C"))
    assert await codes.delete_where(code="A") == 1
    assert [c.code for c in await codes.find(order_by="code_id")] == ["C"]
