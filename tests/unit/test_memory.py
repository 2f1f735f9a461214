"""MemoryDatabase's own surface: what has no PostgreSQL counterpart to compare with."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from repo import (
    ForeignKey,
    InvalidQuery,
    InvalidState,
    NotSupportedInMemory,
    Repository,
    SerializationFailure,
    StaleEntity,
    Table,
    UniqueViolation,
    UnitOfWork,
)
from repo.catalog import (
    Brand,
    BrandRepository,
    CatalogUnitOfWork,
    MemorySkuRepository,
    SkuRepository,
)
from repo.testing import MemoryDatabase


async def test_memory_db_fixture_is_fresh(memory_db: MemoryDatabase) -> None:
    """The plugin's ``memory_db`` is an empty MemoryDatabase of its own."""
    assert await memory_db.repository(BrandRepository).count() == 0
    await memory_db.repository(BrandRepository).add(Brand("acme"))


async def test_connect_await_and_close() -> None:
    """connect() works as `await` and `async with`; a closed database refuses calls."""
    db = await MemoryDatabase.connect("postgresql://ignored/db", max_size=3)
    brands = db.repository(BrandRepository)
    await brands.add(Brand("acme"))
    await db.close()
    with pytest.raises(InvalidState, match="closed"):
        await brands.count()


async def test_sql_only_features_say_they_need_a_server() -> None:
    """The raw connection, acquire() and a caller's connection raise NotSupportedInMemory."""
    db = MemoryDatabase()
    async with CatalogUnitOfWork(db) as uow:
        with pytest.raises(NotSupportedInMemory, match="connection"):
            _ = uow.connection
    with pytest.raises(NotSupportedInMemory):
        db.acquire()
    with pytest.raises(NotSupportedInMemory):
        db.repository(BrandRepository, connection=object())


def test_overrides_must_subclass_the_repository() -> None:
    """An override that is not a subclass of the repository it replaces is refused."""
    with pytest.raises(InvalidQuery, match="subclass"):
        MemoryDatabase(overrides={SkuRepository: BrandRepository})


async def test_registered_override_is_used() -> None:
    """The catalog's memory_override makes SkuRepository a MemorySkuRepository in memory."""
    db = MemoryDatabase()
    assert type(db.repository(SkuRepository)) is MemorySkuRepository
    async with CatalogUnitOfWork(db) as uow:
        assert type(uow.skus) is MemorySkuRepository


@attrs.frozen
class Doc:
    body: dict[str, Any]
    doc_id: int | None = None
    version: int = 0


@attrs.frozen
class Note:
    doc_id: int
    text: str
    note_id: int | None = None


DOCS = Table("mem_doc", Doc, key="doc_id", version="version")
NOTES = Table(
    "mem_note", Note, key="note_id", foreign_keys={"doc_id": ForeignKey(DOCS, on_delete="CASCADE")}
)


class DocRepository(Repository[Doc]):
    table = DOCS


class NoteRepository(Repository[Note]):
    table = NOTES


class Docs(UnitOfWork):
    docs: DocRepository
    notes: NoteRepository


async def test_entities_never_alias_stored_values() -> None:
    """Mutating a dict inside a returned (or given) entity never changes what is stored."""
    db = MemoryDatabase()
    docs = db.repository(DocRepository)
    given = Doc({"tags": ["a"]})
    stored = await docs.add(given)
    given.body["tags"].append("given")
    stored.body["tags"].append("returned")
    assert (await docs.get(stored.doc_id)).body == {"tags": ["a"]}


async def test_version_column_is_an_optimistic_lock() -> None:
    """update bumps the version; an update from a stale copy raises StaleEntity."""
    db = MemoryDatabase()
    docs = db.repository(DocRepository)
    first = await docs.add(Doc({}))
    second = await docs.update(attrs.evolve(first, body={"x": 1}))
    assert second.version == 1
    with pytest.raises(StaleEntity):
        await docs.update(attrs.evolve(first, body={"x": 2}))
    assert await docs.update_where({"body": {"y": 1}}, doc_id=first.doc_id) == 1
    assert (await docs.get(first.doc_id)).version == 2


async def test_on_delete_cascade_is_honoured() -> None:
    """Deleting a row deletes the rows whose CASCADE foreign key references it."""
    db = MemoryDatabase()
    async with Docs(db) as uow:
        doc = await uow.docs.add(Doc({}))
        await uow.notes.add_many([Note(doc.doc_id or 0, "a"), Note(doc.doc_id or 0, "b")])
        await uow.docs.delete(doc.doc_id)
        assert await uow.notes.count() == 0


async def test_a_row_another_open_unit_wrote_cannot_be_written() -> None:
    """PostgreSQL would wait for the other unit; the fake raises SerializationFailure."""
    db = MemoryDatabase()
    brand = await db.repository(BrandRepository).add(Brand("acme"))
    async with CatalogUnitOfWork(db) as first:
        await first.brands.update(Brand("mine", brand.brand_id))
        with pytest.raises(SerializationFailure, match="still open"):
            await db.repository(BrandRepository).delete(brand.brand_id)


async def test_the_later_of_two_units_adding_one_name_fails_at_commit() -> None:
    """Two open units add the same unique name: the second to commit gets UniqueViolation."""
    db = MemoryDatabase()
    first = await CatalogUnitOfWork(db).__aenter__()
    second = await CatalogUnitOfWork(db).__aenter__()
    await first.brands.add(Brand("acme"))
    await second.brands.add(Brand("acme"))
    await first.commit()
    with pytest.raises(UniqueViolation, match="at commit"):
        await second.commit()
    assert [b.brand_name for b in await db.repository(BrandRepository).find()] == ["acme"]
