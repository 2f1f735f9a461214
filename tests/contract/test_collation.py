"""Text orders as the database's collation says: "C", or a libc locale (``en_US.UTF-8``).

The same rows, on a server database created with ``LOCALE '<name>'`` and on
``MemoryDatabase(collation='<name>')``: mixed case, accents (precomposed
and combining), punctuation, digits, other scripts, an emoji, unassigned
code points that the locale calls equal (PostgreSQL then orders them by
their bytes). ``order_by`` (both ways), the ordering filters and keyset
pages, on text and on text arrays, give the order PostgreSQL gave;
equality stays bytewise under either collation.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import attrs
import pytest

from repo import (
    ConfigurationError,
    Database,
    DatabaseLike,
    Repository,
    Table,
    between,
    ge,
    gt,
    le,
    lt,
)
from repo.testing import MemoryDatabase
from tests.conftest import _admin
from tests.locales import LOCALES, locale_database, require_locale

from .conftest import BACKENDS
from .own_schema import create_statements, truncate


@attrs.frozen
class Word:
    """A word, and the word with a fixed tail as an array (text[] orders element by element)."""

    word: str
    letters: list[str]
    word_id: int | None = None


WORDS_TABLE: Table[Word] = Table("collated_word", Word, key="word_id")


class Words(Repository[Word]):
    table = WORDS_TABLE


WORDS = (
    "b", "a", "B", "A", "é", "e", "E", "É", "e\u0301", "ß", "ss", "SS", "a-b", "ab", "a b",
    "a_b", "a.b", "'a", "10", "9", "1", "-1", "Z", "z", "œ", "oe", "Ω", "ω", "ж", "Ж",
    "中", "🙂", "", " ", "co-op", "coop", "Co-op", "résumé", "resume", "Résumé", "ÅB",
    "Ab", "\u0379", "\u0378", "x\u0379", "x\u0378", "\u0131", "I", "i", "İ", "\ufb01", "fi",
    "\uff11",
)  # fmt: skip

# The order PostgreSQL 15 on glibc 2.36 gives WORDS under each collation.
ORDERED = {
    "C": (
        "", " ", "'a", "-1", "1", "10", "9", "A", "Ab", "B", "Co-op", "E", "I", "Résumé",
        "SS", "Z", "a", "a b", "a-b", "a.b", "a_b", "ab", "b", "co-op", "coop", "e",
        "e\u0301", "fi", "i", "oe", "resume", "résumé", "ss", "x\u0378", "x\u0379", "z", "ÅB",
        "É", "ß", "é", "İ", "\u0131", "œ", "\u0378", "\u0379", "Ω", "ω", "Ж", "ж", "中", "\ufb01",
        "\uff11", "🙂",
    ),
    "en_US.UTF-8": (
        "", "\u0378", "\u0379", " ", "🙂", "-1", "1", "\uff11", "10", "9", "'a", "a", "A",
        "a b", "a-b", "a.b", "a_b", "ab", "Ab", "ÅB", "b", "B", "co-op", "coop", "Co-op",
        "e", "E", "e\u0301", "é", "É", "fi", "\ufb01", "i", "I", "İ", "\u0131", "oe", "œ", "resume",
        "résumé", "Résumé", "ss", "SS", "ß", "x\u0378", "x\u0379", "z", "Z", "ω", "Ω", "ж",
        "Ж", "中",
    ),
}  # fmt: skip


@pytest.fixture(scope="module", params=LOCALES)
def locale(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def locale_dsn(server_dsn: str, locale: str) -> Iterator[str]:
    """A server database created with `locale`, holding the words' table."""
    with locale_database(server_dsn, locale) as dsn:
        asyncio.run(_admin(dsn, *create_statements([WORDS_TABLE])))
        yield dsn


@pytest.fixture(params=BACKENDS)
def collated_dsn(request: pytest.FixtureRequest) -> str | None:
    """None for the memory backend; the `locale` database's DSN for PostgreSQL."""
    if request.param == "memory":
        return None
    dsn: str = request.getfixturevalue("locale_dsn")
    return dsn


@pytest.fixture
async def collated(collated_dsn: str | None, locale: str) -> AsyncIterator[DatabaseLike]:
    """The words, once in memory with `locale`'s collation, once on a `locale` database."""
    dsn = collated_dsn
    if dsn is None:
        require_locale(locale)
        database: Any = MemoryDatabase(collation=locale)
    else:
        await truncate(dsn, [WORDS_TABLE])
        database = await Database.connect(dsn, min_size=1, max_size=2, acquire_timeout=5)
    async with database as db:
        await db.repository(Words).add_many([Word(w, [w, "tail"]) for w in WORDS])
        yield db


def words(found: list[Word]) -> list[str]:
    return [w.word for w in found]


async def test_order_by_follows_the_collation(collated: DatabaseLike, locale: str) -> None:
    """order_by on text sorts as the collation says, ties between distinct strings by bytes."""
    repo = collated.repository(Words)
    expected = list(ORDERED[locale])
    assert words(await repo.find(order_by="word")) == expected
    assert words(await repo.find(order_by="-word")) == expected[::-1]
    assert words(await repo.find(order_by=["letters", "word_id"])) == expected


@pytest.mark.parametrize("pivot", ["a", "é", "Z", "ss", "\u0378", "1"])
async def test_ordering_filters_follow_the_collation(
    collated: DatabaseLike, locale: str, pivot: str
) -> None:
    """lt, le, gt, ge and between on text (and text[]) compare with the collation."""
    repo = collated.repository(Words)
    order = list(ORDERED[locale])
    at = order.index(pivot)
    assert words(await repo.find(word=gt(pivot), order_by="word")) == order[at + 1 :]
    assert words(await repo.find(word=ge(pivot), order_by="word")) == order[at:]
    assert words(await repo.find(word=lt(pivot), order_by="word")) == order[:at]
    assert words(await repo.find(word=le(pivot), order_by="word")) == order[: at + 1]
    low, high = sorted([at, order.index("b")])
    span = between(order[low], order[high])
    assert words(await repo.find(word=span, order_by="word")) == order[low : high + 1]
    assert await repo.count(letters=gt([pivot, "tail"])) == len(order) - at - 1
    assert await repo.count(word=pivot) == 1


async def test_pages_walk_in_collation_order(collated: DatabaseLike, locale: str) -> None:
    """Keyset pages over text walk the collation's order, each way, without gaps or repeats."""
    repo = collated.repository(Words)
    for order_by, expected in (("word", ORDERED[locale]), ("-word", ORDERED[locale][::-1])):
        seen: list[str] = []
        after = None
        while True:
            page = await repo.page(after=after, limit=7, order_by=order_by)
            seen += words(page.items)
            if page.next is None:
                break
            after = page.next
        assert seen == list(expected)


def test_an_unknown_collation_is_refused() -> None:
    """A locale the C library does not know is a ConfigurationError naming it and `locale -a`."""
    with pytest.raises(ConfigurationError, match=r"'xx_NOPE\.UTF-8'.*locale -a"):
        MemoryDatabase(collation="xx_NOPE.UTF-8")
    with pytest.raises(ConfigurationError, match="locale name"):
        MemoryDatabase.connect(collation="")
