"""A UnitOfWork subclass resolves its repository annotations when the class is made.

This module has ``from __future__ import annotations``, so every annotation
below is a string until the unit of work resolves it.
"""

from __future__ import annotations

import attrs
import pytest

from repo import InvalidQuery, Repository, Table, UnitOfWork
from repo.testing import MemoryDatabase


@attrs.frozen
class Pen:
    colour: str
    pen_id: int | None = None


PENS = Table("unit_class_pen", Pen, key="pen_id")


class PenRepository(Repository[Pen]):
    table = PENS


def test_an_annotation_that_does_not_resolve_is_refused_when_the_class_is_made() -> None:
    """A repository named before it exists: InvalidQuery naming the class, the attribute and
    the name, and saying to define or import it first; not a NameError at first use."""
    with pytest.raises(InvalidQuery) as got:

        class Desk(UnitOfWork):
            pens: PenRepository
            inks: InkRepository  # type: ignore[name-defined]  # noqa: F821 - the point

    message = str(got.value)
    assert "Desk.inks" in message
    assert "'InkRepository'" in message
    assert "define or import the repository class before the unit of work" in message


async def test_repositories_local_to_a_function_resolve() -> None:
    """A unit of work made inside a function may name repositories local to it, and a
    subclass keeps its base's repositories."""

    class LocalPens(PenRepository):
        pass

    class Desk(UnitOfWork):
        pens: LocalPens
        note: str  # not a repository: left alone

    class BigDesk(Desk):
        spare: PenRepository

    async with MemoryDatabase() as db, BigDesk(db) as uow:
        await uow.pens.add(Pen("red"))
        assert isinstance(uow.pens, LocalPens)
        assert await uow.spare.count() == 1
