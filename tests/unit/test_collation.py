"""MemoryDatabase's collation: strcoll_l on a locale of its own, PostgreSQL's tie-break.

The orders themselves are pinned against the server in
tests/contract/test_collation.py; these check what only the fake has: the
process's locale is left alone, threads do not disturb each other, and the
option is read by both ways of making a MemoryDatabase.
"""

from __future__ import annotations

import functools
import locale
from concurrent.futures import ThreadPoolExecutor

import attrs
import pytest

from repo import ConfigurationError, Repository, Table
from repo.testing import MemoryDatabase
from repo.testing._collation import collation
from tests.locales import require_locale

EN_US = "en_US.UTF-8"


@attrs.frozen
class Name:
    name: str
    name_id: int | None = None


class Names(Repository[Name]):
    table = Table("collated_name", Name, key="name_id")


WORDS = ["b", "A", "a", "B", "é", "E", "e", "\u0379", "\u0378", "Z", "z", "ß", "ss"]


def test_the_process_locale_is_left_alone() -> None:
    """Comparing under en_US.UTF-8 never changes what setlocale reports."""
    require_locale(EN_US)
    before = locale.setlocale(locale.LC_COLLATE)
    assert collation(EN_US).compare("a", "B") < 0
    assert locale.setlocale(locale.LC_COLLATE) == before
    assert collation("C").compare("a", "B") > 0


def test_strings_the_locale_calls_equal_are_ordered_by_their_bytes() -> None:
    """Two unassigned code points weigh the same in en_US; PostgreSQL then uses strcmp."""
    require_locale(EN_US)
    en_us = collation(EN_US)
    assert en_us.compare("\u0378", "\u0379") < 0
    assert en_us.compare("\u0379", "\u0378") > 0
    assert en_us.compare("same", "same") == 0


def test_threads_sorting_at_once_agree() -> None:
    """Eight threads sorting under en_US and C at once each get their collation's order."""
    require_locale(EN_US)
    en_us, c = collation(EN_US), collation("C")
    expected = {
        how.name: sorted(WORDS, key=functools.cmp_to_key(how.compare)) for how in (en_us, c)
    }

    def sort(i: int) -> bool:
        how = en_us if i % 2 else c
        return all(
            sorted(WORDS, key=functools.cmp_to_key(how.compare)) == expected[how.name]
            for _ in range(200)
        )

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(sort, range(16)))
    assert expected[EN_US][:4] == ["\u0378", "\u0379", "a", "A"]


async def test_connect_takes_the_collation() -> None:
    """MemoryDatabase.connect(collation=...) orders as MemoryDatabase(collation=...) does."""
    require_locale(EN_US)
    async with MemoryDatabase.connect(collation=EN_US) as db:
        names = db.repository(Names)
        await names.add_many([Name(w) for w in ("b", "B", "a", "A")])
        assert [n.name for n in await names.find(order_by="name")] == ["a", "A", "b", "B"]
        assert repr(db) == "<MemoryDatabase open en_US.UTF-8>"
    async with MemoryDatabase.connect() as db:
        names = db.repository(Names)
        await names.add_many([Name(w) for w in ("b", "B", "a", "A")])
        assert [n.name for n in await names.find(order_by="name")] == ["A", "B", "a", "b"]


@pytest.mark.parametrize("bad", ["", "no_SUCH.UTF-8", "en_US.UTF-8\x00"])
def test_a_bad_collation_is_a_configuration_error(bad: str) -> None:
    """Empty, unknown or malformed names are refused when the database is made."""
    with pytest.raises(ConfigurationError, match="collation"):
        MemoryDatabase(collation=bad)
