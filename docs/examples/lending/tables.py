"""The entities and their mappings: the one source of truth for the schema.

``repo db init --tables lending.tables:TABLES`` points the migrations here;
autogenerate and ``repo db check`` compare the database with `TABLES`.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal

import attrs

from repo import Check, Column, Index, Table, ge


class MemberTier(enum.StrEnum):
    """How much a member may borrow, and for how long (a PostgreSQL enum, member_tier)."""

    BASIC = "basic"
    GOLD = "gold"


@attrs.frozen
class Member:
    name: str
    email: str
    tier: MemberTier = MemberTier.BASIC
    joined_at: dt.datetime | None = None  # filled in by the database: now()
    member_id: int | None = None


@attrs.frozen
class Book:
    title: str
    isbn: str
    book_id: int | None = None


@attrs.frozen
class Copy:
    book_id: int
    on_loan: bool = False
    copy_id: int | None = None


@attrs.frozen
class Loan:
    member_id: int
    copy_id: int
    lent_at: dt.datetime
    due_at: dt.datetime
    returned_at: dt.datetime | None = None
    fee: Decimal = Decimal("0.00")
    version: int = 0
    loan_id: int | None = None


MEMBERS = Table(
    "member",
    Member,
    key="member_id",
    unique=["email"],
    columns={"joined_at": Column(generated=True, server_default="now()")},
)
BOOKS = Table("book", Book, key="book_id", unique=["isbn"])
COPIES = Table(
    "copy",
    Copy,
    key="copy_id",
    foreign_keys={"book_id": BOOKS},
    # "Any available copy of this book" reads this index.
    indexes=[("book_id", "on_loan")],
)

LOANS = Table(
    "loan",
    Loan,
    key="loan_id",
    version="version",
    columns={"fee": Column(type="numeric(8,2)")},
    foreign_keys={"member_id": MEMBERS, "copy_id": COPIES},
    # The loan's two rules, kept by PostgreSQL and by MemoryDatabase alike: a
    # fee is never negative (a CHECK constraint), and a copy has at most one
    # open loan (a partial unique index).
    checks=[Check("fee_not_negative", fee=ge(0))],
    indexes=[
        Index("copy_id", unique=True, where={"returned_at": None}),
        # A member's loans, page by page.
        ("member_id", "loan_id"),
    ],
)

TABLES = (MEMBERS, BOOKS, COPIES, LOANS)


def id_of(key: int | None) -> int:
    """The key of a stored entity, as an int (only an entity not yet added has None)."""
    if key is None:
        msg = "this entity has no key yet: use the one that add() returned"
        raise ValueError(msg)
    return key
