"""What the library does. Each service takes a unit of work, so that it runs unchanged
on PostgreSQL and on MemoryDatabase; the contended one takes the database, and runs
its own units of work with `run_in_unit`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

import attrs

from repo import Page, RepoError, run_in_unit

from .repositories import LendingUnit, OverdueLoan
from .tables import Book, Copy, Loan, Member, MemberTier, id_of

if TYPE_CHECKING:
    from repo import DatabaseLike

LOAN_LIMIT = {MemberTier.BASIC: 3, MemberTier.GOLD: 10}
LOAN_PERIOD = {MemberTier.BASIC: dt.timedelta(days=14), MemberTier.GOLD: dt.timedelta(days=28)}
DAILY_FEE = Decimal("0.25")
# How many times a loan runs before a conflict is given up on (run_in_unit).
ATTEMPTS = 5


class LendingError(Exception):
    """A request the library's rules refuse."""


class NoCopyAvailable(LendingError):
    """Every copy of the book is on loan."""


class LoanLimitReached(LendingError):
    """The member has as many open loans as their tier allows."""


class AlreadyReturned(LendingError):
    """The loan was returned before."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def join(
    uow: LendingUnit, name: str, email: str, tier: MemberTier = MemberTier.BASIC
) -> Member:
    """A new member; `UniqueViolation` if the email is taken."""
    return await uow.members.add(Member(name, email, tier))


async def add_book(
    uow: LendingUnit, title: str, isbn: str, copies: int = 1
) -> tuple[Book, list[Copy]]:
    """A new book and `copies` copies of it; `UniqueViolation` if the ISBN is known."""
    book = await uow.books.add(Book(title, isbn))
    made = [Copy(id_of(book.book_id)) for _ in range(copies)]
    return book, await uow.copies.add_many(made, returning=True)


async def book_status(uow: LendingUnit, book_id: int) -> tuple[Book, int]:
    """The book and how many of its copies are on the shelf; `NotFound` if unknown."""
    book = await uow.books.get(book_id)
    return book, await uow.copies.count(book_id=book_id, on_loan=False)


async def lend_any_copy(
    db: DatabaseLike,
    member_id: int,
    book_id: int,
    *,
    locks: bool = True,
    now: dt.datetime | None = None,
    on_retry: Callable[[int, RepoError, float], None] | None = None,
) -> Loan:
    """Lend the member any copy of the book that is on the shelf; committed on return.

    Many requests lend copies of the few popular books at once. With `locks`
    (the default) each claims a copy with ``FOR UPDATE SKIP LOCKED`` at READ
    COMMITTED, so that they take different copies instead of queueing for the
    first one, and locks the member's row, so that two loans at once cannot
    both pass the loan limit. Without (the naive version, kept to compare),
    nothing is locked and SERIALIZABLE keeps the rules: concurrent loans of
    one copy conflict, and `run_in_unit` runs the losers again, up to
    `ATTEMPTS` times in all (`on_retry` hears of each).

    `NotFound` (no such member or book), `LoanLimitReached`,
    `NoCopyAvailable`, or `SerializationFailure` once the attempts ran out.
    """

    async def work(uow: LendingUnit) -> Loan:
        return await lend(uow, member_id, book_id, now or utcnow(), locks=locks)

    return await run_in_unit(
        LendingUnit,
        db,
        work,
        attempts=ATTEMPTS,
        isolation=None if locks else "serializable",
        on_retry=on_retry,
    )


async def lend(
    uow: LendingUnit, member_id: int, book_id: int, now: dt.datetime, *, locks: bool = True
) -> Loan:
    """One attempt at a loan, in `uow`: see `lend_any_copy`."""
    if locks:
        member = await uow.members.get(member_id, for_update=True)
    else:
        member = await uow.members.get(member_id)
    held = await uow.loans.count(member_id=member_id, returned_at=None)
    if held >= LOAN_LIMIT[member.tier]:
        msg = f"member {member_id} has {held} books out, the most a {member.tier} member may"
        raise LoanLimitReached(msg)
    if locks:
        copy = await uow.copies.claim(book_id)
    else:
        copy = await uow.copies.first_available(book_id)
    if copy is None:
        await uow.books.get(book_id)  # NotFound if there is no such book
        msg = f"every copy of book {book_id} is on loan: try again later"
        raise NoCopyAvailable(msg)
    await uow.copies.update(attrs.evolve(copy, on_loan=True))
    loan = Loan(member_id, id_of(copy.copy_id), lent_at=now, due_at=now + LOAN_PERIOD[member.tier])
    return await uow.loans.add(loan)


async def return_copy(uow: LendingUnit, loan_id: int, *, now: dt.datetime | None = None) -> Loan:
    """Close the loan, charging `DAILY_FEE` per day (begun) past its due date.

    `NotFound`, `AlreadyReturned`; `StaleEntity` if it is being returned at
    this very moment by someone else (the loan's version column says so).
    """
    loan = await uow.loans.get(loan_id)
    if loan.returned_at is not None:
        msg = f"loan {loan_id} was returned at {loan.returned_at:%Y-%m-%d %H:%M}"
        raise AlreadyReturned(msg)
    now = now or utcnow()
    late = max(0, math.ceil((now - loan.due_at) / dt.timedelta(days=1)))
    returned = await uow.loans.update(attrs.evolve(loan, returned_at=now, fee=DAILY_FEE * late))
    await uow.copies.update_where({"on_loan": False}, copy_id=loan.copy_id)
    return returned


async def set_fee(uow: LendingUnit, loan_id: int, fee: Decimal) -> Loan:
    """Change a loan's fee (a waiver, a correction); `CheckViolation` if it is negative."""
    loan = await uow.loans.get(loan_id)
    return await uow.loans.update(attrs.evolve(loan, fee=fee))


async def member_loans(
    uow: LendingUnit, member_id: int, *, after: str | None = None, limit: int = 20
) -> Page[Loan]:
    """One page of the member's loans, newest first; `page.next` reads the next one."""
    await uow.members.get(member_id)  # NotFound if there is no such member
    return await uow.loans.page(member_id=member_id, order_by="-loan_id", after=after, limit=limit)


async def overdue(
    uow: LendingUnit, *, now: dt.datetime | None = None, limit: int = 100
) -> list[OverdueLoan]:
    """Open loans past their due date, the longest overdue first."""
    return await uow.loans.overdue(now or utcnow(), limit=limit)
