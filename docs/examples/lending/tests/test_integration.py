"""The services on PostgreSQL, through `rollback_db`: each test's work is rolled back.

$DATABASE_URL names a database migrated to head (``repo db upgrade``). These
prove what the fake cannot: the SQL of `overdue`, the constraints as the
server enforces them, and the column types on the way in and out.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import attrs
import pytest

from lending import services
from lending.repositories import LendingUnit
from lending.services import AlreadyReturned, NoCopyAvailable
from lending.tables import Book, MemberTier, id_of
from repo import CheckViolation, UniqueViolation
from repo.testing import RollbackDatabase

NOW = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


async def a_member(db: RollbackDatabase, email: str, tier: MemberTier = MemberTier.BASIC) -> int:
    async with LendingUnit(db) as uow:
        return id_of((await services.join(uow, "Ada", email, tier)).member_id)


async def a_book(db: RollbackDatabase, isbn: str, copies: int) -> Book:
    async with LendingUnit(db) as uow:
        book, _ = await services.add_book(uow, f"Book {isbn}", isbn, copies)
    return book


async def test_a_loan_and_its_return_on_postgres(
    rollback_db: RollbackDatabase, locks: bool
) -> None:
    """Lend every copy, fail on the next, return one late: the rows say so."""
    ada = await a_member(rollback_db, "ada@example.org", MemberTier.GOLD)
    book_id = id_of((await a_book(rollback_db, "9780441013593", 2)).book_id)
    first = await services.lend_any_copy(rollback_db, ada, book_id, locks=locks, now=NOW)
    second = await services.lend_any_copy(rollback_db, ada, book_id, locks=locks, now=NOW)
    assert first.copy_id != second.copy_id
    assert first.due_at == NOW + dt.timedelta(days=28)
    with pytest.raises(NoCopyAvailable):
        await services.lend_any_copy(rollback_db, ada, book_id, locks=locks)

    late = NOW + dt.timedelta(days=30, hours=1)
    async with LendingUnit(rollback_db) as uow:
        returned = await services.return_copy(uow, id_of(first.loan_id), now=late)
    assert (returned.fee, returned.version) == (Decimal("0.75"), 1)
    with pytest.raises(AlreadyReturned):
        async with LendingUnit(rollback_db) as uow:
            await services.return_copy(uow, id_of(first.loan_id))
    async with LendingUnit(rollback_db) as uow:
        assert await uow.loans.get(first.loan_id) == returned
        assert await services.book_status(uow, book_id) == (await uow.books.get(book_id), 1)


async def test_overdue_loans_in_one_join(rollback_db: RollbackDatabase) -> None:
    """The hand-written SQL of `overdue`: who has which title, the longest overdue first."""
    ada = await a_member(rollback_db, "ada@example.org")
    gold = await a_member(rollback_db, "gold@example.org", MemberTier.GOLD)
    book_id = id_of((await a_book(rollback_db, "9780441013593", 3)).book_id)
    async with LendingUnit(rollback_db) as uow:
        later = await services.lend(uow, gold, book_id, NOW, locks=False)
        late = await services.lend(uow, ada, book_id, NOW, locks=False)
        back = await services.lend(uow, ada, book_id, NOW, locks=False)
        await services.return_copy(uow, id_of(back.loan_id), now=NOW)
    async with LendingUnit(rollback_db) as uow:
        found = await services.overdue(uow, now=NOW + dt.timedelta(days=30))
        assert [(o.loan_id, o.name, o.email, o.title, o.due_at) for o in found] == [
            (late.loan_id, "Ada", "ada@example.org", "Book 9780441013593", late.due_at),
            (later.loan_id, "Ada", "gold@example.org", "Book 9780441013593", later.due_at),
        ]
        assert await services.overdue(uow, now=NOW + dt.timedelta(days=30), limit=1) == found[:1]
        assert await services.overdue(uow, now=NOW) == []


async def test_a_members_loans_in_pages_on_postgres(rollback_db: RollbackDatabase) -> None:
    """The keyset pages read the (member_id, loan_id) index: every loan once, newest first."""
    gold = await a_member(rollback_db, "gold@example.org", MemberTier.GOLD)
    book_id = id_of((await a_book(rollback_db, "9780441013593", 10)).book_id)
    async with LendingUnit(rollback_db) as uow:
        made = [await services.lend(uow, gold, book_id, NOW, locks=False) for _ in range(6)]
    async with LendingUnit(rollback_db) as uow:
        first = await services.member_loans(uow, gold, limit=3)
        second = await services.member_loans(uow, gold, after=first.next, limit=3)
        assert [*first, *second] == made[::-1]
        # A full last page knows it is the last: no empty page to fetch.
        assert (first.next is not None, second.next) == (True, None)


async def test_members_and_money_round_trip(rollback_db: RollbackDatabase) -> None:
    """The enum, the server's now() for joined_at, and the fee's exact cents."""
    async with LendingUnit(rollback_db) as uow:
        member = await services.join(uow, "Zoë Ünal", "zoe@example.org", MemberTier.GOLD)
        assert member.tier is MemberTier.GOLD
        assert member.joined_at is not None
        assert member.joined_at.tzinfo is not None
        book_id = id_of((await services.add_book(uow, "Dune", "9780441013593", 1))[0].book_id)
        loan = await services.lend(uow, id_of(member.member_id), book_id, NOW, locks=False)
        loan = await services.set_fee(uow, id_of(loan.loan_id), Decimal("999999.99"))
        assert (await uow.loans.get(loan.loan_id)).fee == Decimal("999999.99")
        assert await uow.members.find(tier=MemberTier.GOLD, email=member.email) == [member]


async def test_an_email_is_taken_once_on_postgres(rollback_db: RollbackDatabase) -> None:
    """The server's unique constraint, named as the mapping names it."""
    await a_member(rollback_db, "ada@example.org")
    with pytest.raises(UniqueViolation) as exc:
        await a_member(rollback_db, "ada@example.org")
    assert (exc.value.constraint, exc.value.columns) == ("uq_member_email", ("email",))


async def test_rules_one_open_loan_per_copy_on_postgres(rollback_db: RollbackDatabase) -> None:
    """The partial unique index on the server: one open loan per copy, closed ones aside."""
    ada = await a_member(rollback_db, "ada@example.org")
    book_id = id_of((await a_book(rollback_db, "9780441013593", 1)).book_id)
    async with LendingUnit(rollback_db) as uow:
        loan = await services.lend(uow, ada, book_id, NOW, locks=False)
    twin = attrs.evolve(loan, loan_id=None, version=0)
    with pytest.raises(UniqueViolation):
        async with LendingUnit(rollback_db) as uow:
            await uow.loans.add(twin)
    async with LendingUnit(rollback_db) as uow:
        await uow.loans.add(attrs.evolve(twin, returned_at=NOW))


async def test_rules_fee_not_negative_on_postgres(rollback_db: RollbackDatabase) -> None:
    """The CHECK constraint on the server, named ck_loan_fee_not_negative."""
    ada = await a_member(rollback_db, "ada@example.org")
    book_id = id_of((await a_book(rollback_db, "9780441013593", 1)).book_id)
    async with LendingUnit(rollback_db) as uow:
        loan = await services.lend(uow, ada, book_id, NOW, locks=False)
    with pytest.raises(CheckViolation) as exc:
        async with LendingUnit(rollback_db) as uow:
            await services.set_fee(uow, id_of(loan.loan_id), Decimal("-0.01"))
    assert (exc.value.table, exc.value.constraint) == ("loan", "ck_loan_fee_not_negative")
