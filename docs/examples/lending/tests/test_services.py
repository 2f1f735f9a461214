"""Unit tests of the services on MemoryDatabase: no server, a few milliseconds each."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal

import attrs
import pytest

from lending import services
from lending.repositories import LendingUnit
from lending.services import AlreadyReturned, LoanLimitReached, NoCopyAvailable
from lending.tables import Book, Copy, Loan, MemberTier, id_of
from repo import CheckViolation, NotFound, StaleEntity, UniqueViolation
from repo.testing import MemoryDatabase

NOW = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


async def a_member(db: MemoryDatabase, email: str, tier: MemberTier = MemberTier.BASIC) -> int:
    async with LendingUnit(db) as uow:
        return id_of((await services.join(uow, "Ada", email, tier)).member_id)


async def a_book(db: MemoryDatabase, isbn: str, copies: int) -> tuple[Book, list[Copy]]:
    async with LendingUnit(db) as uow:
        return await services.add_book(uow, f"Book {isbn}", isbn, copies)


async def test_a_loan_takes_a_copy_off_the_shelf_until_it_is_returned(
    memory_db: MemoryDatabase, locks: bool
) -> None:
    """Lending marks the copy on loan and stores the loan; returning puts it back."""
    member = await a_member(memory_db, "ada@example.org")
    book, copies = await a_book(memory_db, "9780441013593", 2)
    book_id = id_of(book.book_id)

    loan = await services.lend_any_copy(memory_db, member, book_id, locks=locks, now=NOW)
    assert loan.copy_id in {c.copy_id for c in copies}
    assert (loan.lent_at, loan.due_at) == (NOW, NOW + dt.timedelta(days=14))
    async with LendingUnit(memory_db) as uow:
        assert await services.book_status(uow, book_id) == (book, 1)
        assert (await uow.copies.get(loan.copy_id)).on_loan

    async with LendingUnit(memory_db) as uow:
        returned = await services.return_copy(uow, id_of(loan.loan_id), now=NOW)
    assert (returned.returned_at, returned.fee) == (NOW, Decimal("0.00"))
    async with LendingUnit(memory_db) as uow:
        assert await services.book_status(uow, book_id) == (book, 2)


async def test_the_last_copy_goes_to_one_member_only(
    memory_db: MemoryDatabase, locks: bool
) -> None:
    """With every copy out, a loan fails with NoCopyAvailable and stores nothing."""
    ada = await a_member(memory_db, "ada@example.org")
    bob = await a_member(memory_db, "bob@example.org")
    book, _ = await a_book(memory_db, "9780441013593", 1)
    await services.lend_any_copy(memory_db, ada, id_of(book.book_id), locks=locks)
    with pytest.raises(NoCopyAvailable):
        await services.lend_any_copy(memory_db, bob, id_of(book.book_id), locks=locks)
    async with LendingUnit(memory_db) as uow:
        assert await uow.loans.count() == 1


async def test_unknown_members_and_books_are_not_found(
    memory_db: MemoryDatabase, locks: bool
) -> None:
    """A loan for a member or a book that does not exist raises NotFound."""
    member = await a_member(memory_db, "ada@example.org")
    book, _ = await a_book(memory_db, "9780441013593", 0)
    with pytest.raises(NotFound):
        await services.lend_any_copy(memory_db, member + 1, id_of(book.book_id), locks=locks)
    with pytest.raises(NotFound):
        await services.lend_any_copy(memory_db, member, id_of(book.book_id) + 1, locks=locks)
    # A book with no copies at all is known, and has none available.
    with pytest.raises(NoCopyAvailable):
        await services.lend_any_copy(memory_db, member, id_of(book.book_id), locks=locks)


async def test_a_member_borrows_up_to_the_limit_of_their_tier(
    memory_db: MemoryDatabase, locks: bool
) -> None:
    """Basic members hold 3 loans at most, gold members 10; a return makes room."""
    basic = await a_member(memory_db, "basic@example.org")
    gold = await a_member(memory_db, "gold@example.org", MemberTier.GOLD)
    book, _ = await a_book(memory_db, "9780441013593", 20)
    book_id = id_of(book.book_id)
    loans = [await services.lend_any_copy(memory_db, basic, book_id, locks=locks) for _ in "abc"]
    with pytest.raises(LoanLimitReached):
        await services.lend_any_copy(memory_db, basic, book_id, locks=locks)
    async with LendingUnit(memory_db) as uow:
        await services.return_copy(uow, id_of(loans[0].loan_id))
    await services.lend_any_copy(memory_db, basic, book_id, locks=locks)
    for _ in range(10):
        await services.lend_any_copy(memory_db, gold, book_id, locks=locks, now=NOW)
    with pytest.raises(LoanLimitReached):
        await services.lend_any_copy(memory_db, gold, book_id, locks=locks)


@pytest.mark.parametrize(
    ("returned_after", "fee"),
    [
        (dt.timedelta(days=14), "0.00"),  # on the due date, to the microsecond
        (dt.timedelta(days=14, microseconds=1), "0.25"),  # a day begun
        (dt.timedelta(days=16), "0.50"),
        (dt.timedelta(days=14 + 365), "91.25"),
        (dt.timedelta(seconds=-1), "0.00"),  # a clock that went back
    ],
)
async def test_a_late_return_costs_a_fee_per_day_begun(
    memory_db: MemoryDatabase, returned_after: dt.timedelta, fee: str
) -> None:
    """The fee is DAILY_FEE for each day, or part of one, past the due date; exact money."""
    member = await a_member(memory_db, "ada@example.org")
    book, _ = await a_book(memory_db, "9780441013593", 1)
    async with LendingUnit(memory_db) as uow:
        loan = await services.lend(uow, member, id_of(book.book_id), NOW, locks=False)
    async with LendingUnit(memory_db) as uow:
        returned = await services.return_copy(uow, id_of(loan.loan_id), now=NOW + returned_after)
    assert returned.fee == Decimal(fee)
    async with LendingUnit(memory_db) as uow:
        assert (await uow.loans.get(loan.loan_id)).fee == Decimal(fee)


async def test_a_loan_is_returned_once(memory_db: MemoryDatabase) -> None:
    """A second return raises AlreadyReturned; one racing the first raises StaleEntity."""
    member = await a_member(memory_db, "ada@example.org")
    book, _ = await a_book(memory_db, "9780441013593", 1)
    async with LendingUnit(memory_db) as uow:
        loan = await services.lend(uow, member, id_of(book.book_id), NOW, locks=False)
    loan_id = id_of(loan.loan_id)
    async with LendingUnit(memory_db) as uow:
        await services.return_copy(uow, loan_id)
    with pytest.raises(AlreadyReturned):
        async with LendingUnit(memory_db) as uow:
            await services.return_copy(uow, loan_id)
    # Two returns that both read the loan open: the loan's version lets one win.
    async with LendingUnit(memory_db) as uow:
        await uow.loans.update(attrs.evolve(await uow.loans.get(loan_id), returned_at=None))
    async with LendingUnit(memory_db) as uow:
        stale = await uow.loans.get(loan_id)
        await services.return_copy(uow, loan_id)
        with pytest.raises(StaleEntity):
            await uow.loans.update(attrs.evolve(stale, returned_at=NOW))


async def test_a_members_loans_come_in_keyset_pages(memory_db: MemoryDatabase) -> None:
    """Every loan once, newest first, `limit` a page; no next token after the last page."""
    gold = await a_member(memory_db, "gold@example.org", MemberTier.GOLD)
    other = await a_member(memory_db, "other@example.org")
    book, _ = await a_book(memory_db, "9780441013593", 10)
    made = []
    for _ in range(7):
        async with LendingUnit(memory_db) as uow:
            made.append(await services.lend(uow, gold, id_of(book.book_id), NOW, locks=False))
    async with LendingUnit(memory_db) as uow:
        await services.lend(uow, other, id_of(book.book_id), NOW, locks=False)

    seen: list[Loan] = []
    sizes = []
    after = None
    async with LendingUnit(memory_db, readonly=True) as uow:
        while True:
            page = await services.member_loans(uow, gold, after=after, limit=3)
            seen.extend(page)
            sizes.append(len(page))
            if page.next is None:
                break
            after = page.next
        assert sizes == [3, 3, 1]
        assert seen == sorted(made, key=lambda loan: -id_of(loan.loan_id))
        # Exactly one page's worth: the last full page says there is no more.
        only = await services.member_loans(uow, other, limit=1)
        assert (len(only), only.next) == (1, None)
        with pytest.raises(NotFound):
            await services.member_loans(uow, gold + other)


async def test_an_email_and_an_isbn_are_taken_once(memory_db: MemoryDatabase) -> None:
    """Joining with a taken email, or adding a known ISBN, raises UniqueViolation."""
    await a_member(memory_db, "ada@example.org")
    await a_book(memory_db, "9780441013593", 1)
    with pytest.raises(UniqueViolation) as exc:
        await a_member(memory_db, "ada@example.org")
    assert exc.value.constraint == "uq_member_email"
    with pytest.raises(UniqueViolation) as exc:
        await a_book(memory_db, "9780441013593", 1)
    assert exc.value.constraint == "uq_book_isbn"
    async with LendingUnit(memory_db) as uow:
        assert (await uow.members.count(), await uow.books.count()) == (1, 1)
        assert await uow.copies.count() == 1


async def test_concurrent_loans_never_share_a_copy(memory_db: MemoryDatabase, locks: bool) -> None:
    """Eight members at once for three copies: three loans, each of its own copy."""
    members = [await a_member(memory_db, f"m{i}@example.org") for i in range(8)]
    book, _ = await a_book(memory_db, "9780441013593", 3)
    results = await asyncio.gather(
        *(services.lend_any_copy(memory_db, m, id_of(book.book_id), locks=locks) for m in members),
        return_exceptions=True,
    )
    loans = [r for r in results if isinstance(r, Loan)]
    assert len({loan.copy_id for loan in loans}) == len(loans)
    assert all(isinstance(r, Loan | NoCopyAvailable) for r in results), results
    assert len(loans) == 3


async def test_rules_one_open_loan_per_copy(memory_db: MemoryDatabase) -> None:
    """The partial unique index: a second open loan of a copy is refused, a closed one is not."""
    member = await a_member(memory_db, "ada@example.org")
    book, (copy,) = await a_book(memory_db, "9780441013593", 1)
    async with LendingUnit(memory_db) as uow:
        loan = await services.lend(uow, member, id_of(book.book_id), NOW, locks=False)
    twin = attrs.evolve(loan, loan_id=None, version=0)
    with pytest.raises(UniqueViolation):
        async with LendingUnit(memory_db) as uow:
            await uow.loans.add(twin)
    async with LendingUnit(memory_db) as uow:
        await uow.loans.add(attrs.evolve(twin, returned_at=NOW))
        assert await uow.loans.count(copy_id=copy.copy_id) == 2


async def test_rules_fee_not_negative(memory_db: MemoryDatabase) -> None:
    """The CHECK constraint: a fee may be waived down to zero, never below."""
    member = await a_member(memory_db, "ada@example.org")
    book, _ = await a_book(memory_db, "9780441013593", 1)
    async with LendingUnit(memory_db) as uow:
        loan = await services.lend(uow, member, id_of(book.book_id), NOW, locks=False)
        assert (await services.set_fee(uow, id_of(loan.loan_id), Decimal("0"))).fee == 0
    with pytest.raises(CheckViolation) as exc:
        async with LendingUnit(memory_db) as uow:
            await services.set_fee(uow, id_of(loan.loan_id), Decimal("-0.01"))
    assert exc.value.constraint == "ck_loan_fee_not_negative"


async def test_siblings_give_overdue_loans_in_memory(memory_db: MemoryDatabase) -> None:
    """The in-memory `overdue` joins through the sibling repositories, as the SQL does."""
    ada = await a_member(memory_db, "ada@example.org")
    gold = await a_member(memory_db, "gold@example.org", MemberTier.GOLD)
    book, _ = await a_book(memory_db, "9780441013593", 3)
    async with LendingUnit(memory_db) as uow:
        late = await services.lend(uow, ada, id_of(book.book_id), NOW, locks=False)
        later = await services.lend(uow, gold, id_of(book.book_id), NOW, locks=False)
        back = await services.lend(uow, ada, id_of(book.book_id), NOW, locks=False)
        await services.return_copy(uow, id_of(back.loan_id), now=NOW)
    async with LendingUnit(memory_db, readonly=True) as uow:
        found = await services.overdue(uow, now=NOW + dt.timedelta(days=30))
        assert [(o.loan_id, o.email, o.title) for o in found] == [
            (late.loan_id, "ada@example.org", "Book 9780441013593"),
            (later.loan_id, "gold@example.org", "Book 9780441013593"),
        ]
        assert await services.overdue(uow, now=NOW + dt.timedelta(days=14)) == []


async def test_members_are_stored_with_their_tier_and_join_time(memory_db: MemoryDatabase) -> None:
    """The enum comes back as a member, and the database fills in joined_at."""
    async with LendingUnit(memory_db) as uow:
        member = await services.join(uow, "Zoë Ünal", "zoe@example.org", MemberTier.GOLD)
    assert member.tier is MemberTier.GOLD
    assert member.joined_at is not None
    assert member.joined_at.tzinfo is not None
    async with LendingUnit(memory_db) as uow:
        assert await uow.members.get(member.member_id) == member
        assert await uow.members.find(tier=MemberTier.GOLD) == [member]
