"""The repositories, and the unit of work that binds them to one transaction."""

from __future__ import annotations

import datetime as dt

import attrs

from repo import Repository, UnitOfWork, lt
from repo.testing import memory_override

from .tables import BOOKS, COPIES, LOANS, MEMBERS, Book, Copy, Loan, Member, id_of


class MemberRepository(Repository[Member]):
    table = MEMBERS


class BookRepository(Repository[Book]):
    table = BOOKS


class CopyRepository(Repository[Copy]):
    table = COPIES

    async def claim(self, book_id: int) -> Copy | None:
        """Lock an available copy of the book, or return None if there is none to take.

        Copies that other units of work have locked (they are lending them
        right now) are skipped, not waited for: concurrent loans of one book
        each get a copy of their own. The lock holds until the unit ends.
        """
        return await self.find_one(
            book_id=book_id, on_loan=False, for_update=True, skip_locked=True
        )

    async def first_available(self, book_id: int) -> Copy | None:
        """The naive claim, without a lock: concurrent loans all pick the same copy.

        Correct only under SERIALIZABLE, where all but one of them fail and
        run again (see `lending.services.lend_any_copy`); kept to compare.
        """
        found = await self.find(book_id=book_id, on_loan=False, order_by="copy_id", limit=1)
        return found[0] if found else None


@attrs.frozen
class OverdueLoan:
    """A read model: an open loan past its due date, with who has it and what it is."""

    loan_id: int
    due_at: dt.datetime
    name: str
    email: str
    title: str


class LoanRepository(Repository[Loan]):
    table = LOANS

    async def overdue(self, now: dt.datetime, *, limit: int = 100) -> list[OverdueLoan]:
        """Open loans due before `now`, the longest overdue first: one join."""
        return await self.query(
            OverdueLoan,
            """
            SELECT l.loan_id, l.due_at, m.name, m.email, b.title
            FROM loan l
            JOIN member m ON m.member_id = l.member_id
            JOIN copy c ON c.copy_id = l.copy_id
            JOIN book b ON b.book_id = c.book_id
            WHERE l.returned_at IS NULL AND l.due_at < $1
            ORDER BY l.due_at, l.loan_id
            LIMIT $2
            """,
            now,
            limit,
        )


@memory_override(LoanRepository)
class MemoryLoanRepository(LoanRepository):
    """`overdue` for MemoryDatabase, built on the generic methods of its siblings."""

    async def overdue(self, now: dt.datetime, *, limit: int = 100) -> list[OverdueLoan]:
        loans = await self.find(
            returned_at=None, due_at=lt(now), order_by=["due_at", "loan_id"], limit=limit
        )
        # Sibling repositories on the same unit of work (or pool) as this one.
        members = self.repository(MemberRepository)
        copies = self.repository(CopyRepository)
        books = self.repository(BookRepository)
        who = await members.get_many([loan.member_id for loan in loans])
        what = await copies.get_many([loan.copy_id for loan in loans])
        titles = await books.get_many([copy.book_id for copy in what])
        return [
            OverdueLoan(id_of(loan.loan_id), loan.due_at, member.name, member.email, book.title)
            for loan, member, book in zip(loans, who, titles, strict=True)
        ]


class LendingUnit(UnitOfWork):
    """One transaction of the library, with its four repositories."""

    members: MemberRepository
    books: BookRepository
    copies: CopyRepository
    loans: LoanRepository
