"""The HTTP service: ``uvicorn lending.app:app``.

The `Database` opens in the app's lifespan and closes with it. Each request
that reads or writes gets a unit of work of its own, committed before the
response is sent; lending, the contended operation, runs its own units with
`run_in_unit`. Errors become HTTP statuses in one table, `STATUS`.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, cast

import attrs
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from repo import (
    CheckViolation,
    Database,
    DataError,
    InvalidQuery,
    LockNotAvailable,
    NotFound,
    PoolTimeout,
    RepoError,
    SerializationFailure,
    StaleEntity,
    UniqueViolation,
)

from . import services
from .repositories import LendingUnit
from .services import AlreadyReturned, LendingError, LoanLimitReached, NoCopyAvailable
from .tables import MemberTier, id_of

if TYPE_CHECKING:
    from repo import DatabaseLike

log = logging.getLogger("lending")

# The first class an error is an instance of gives its status; anything else is a 500.
STATUS: tuple[tuple[type[Exception], int], ...] = (
    (NotFound, 404),
    (UniqueViolation, 409),  # a taken email or ISBN
    (StaleEntity, 409),  # a loan returned twice at the same moment
    (NoCopyAvailable, 409),
    (LoanLimitReached, 409),
    (AlreadyReturned, 409),
    (CheckViolation, 422),  # a negative fee
    (DataError, 422),  # a value the column cannot hold
    (InvalidQuery, 400),  # a page token that is not ours
    # The attempts of run_in_unit ran out (DeadlockDetected is one too), or the
    # pool or a lock could not be had in time: busy, try again shortly.
    (SerializationFailure, 503),
    (PoolTimeout, 503),
    (LockNotAvailable, 503),
)


def status_for(exc: Exception) -> int:
    """The HTTP status that `exc` is answered with."""
    return next((status for cls, status in STATUS if isinstance(exc, cls)), 500)


async def error_response(request: Request, exc: Exception) -> JSONResponse:
    status = status_for(exc)
    if status == 500:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    headers = {"Retry-After": "1"} if status == 503 else None
    body = {"error": type(exc).__name__, "detail": str(exc)}
    return JSONResponse(body, status_code=status, headers=headers)


def create_app(
    connect: Callable[[], AbstractAsyncContextManager[DatabaseLike]] = Database.connect,
    *,
    locks: bool = True,
) -> FastAPI:
    """The service, on the database that `connect()` opens (``Database.connect()``:
    ``$DATABASE_URL``); `locks=False` lends the naive way (see `services.lend_any_copy`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with connect() as db:
            app.state.db = db
            yield

    app = FastAPI(title="lending", lifespan=lifespan)
    app.state.locks = locks
    app.include_router(router)
    app.add_exception_handler(RepoError, error_response)
    app.add_exception_handler(LendingError, error_response)
    return app


def database(request: Request) -> DatabaseLike:
    return cast("DatabaseLike", request.app.state.db)


async def unit_of_work(request: Request) -> AsyncIterator[LendingUnit]:
    async with LendingUnit(database(request)) as uow:
        yield uow


# scope="function": the unit ends (commits, or rolls back on an error) before
# the response is sent, so that a 2xx means the work is stored.
Unit = Annotated[LendingUnit, Depends(unit_of_work, scope="function")]

router = APIRouter()

# A key as PostgreSQL stores it (bigint); anything else is refused with 422.
MAX_ID = 2**63 - 1
Id = Annotated[int, Path(ge=1, le=MAX_ID)]


class NewMember(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=320)
    tier: MemberTier = MemberTier.BASIC


class NewBook(BaseModel):
    title: str = Field(min_length=1, max_length=500)
    isbn: str = Field(min_length=10, max_length=17)
    copies: int = Field(default=1, ge=0, le=1000)


class NewLoan(BaseModel):
    member_id: int = Field(ge=1, le=MAX_ID)
    book_id: int = Field(ge=1, le=MAX_ID)


class NewFee(BaseModel):
    fee: Decimal = Field(max_digits=8, decimal_places=2)


@router.post("/members", status_code=201)
async def join(body: NewMember, uow: Unit) -> dict[str, Any]:
    return to_json(await services.join(uow, body.name, body.email, body.tier))


@router.post("/books", status_code=201)
async def add_book(body: NewBook, uow: Unit) -> dict[str, Any]:
    book, copies = await services.add_book(uow, body.title, body.isbn, body.copies)
    return to_json(book) | {"copies": [id_of(c.copy_id) for c in copies]}


@router.get("/books/{book_id}")
async def book(book_id: Id, uow: Unit) -> dict[str, Any]:
    found, available = await services.book_status(uow, book_id)
    return to_json(found) | {"available": available}


@router.post("/loans", status_code=201)
async def lend(body: NewLoan, request: Request, response: Response) -> dict[str, Any]:
    retries = 0

    def count(attempt: int, error: RepoError, delay: float) -> None:
        nonlocal retries
        retries += 1

    loan = await services.lend_any_copy(
        database(request),
        body.member_id,
        body.book_id,
        locks=request.app.state.locks,
        on_retry=count,
    )
    response.headers["X-Retries"] = str(retries)
    return to_json(loan)


@router.post("/loans/{loan_id}/return")
async def return_copy(loan_id: Id, uow: Unit) -> dict[str, Any]:
    return to_json(await services.return_copy(uow, loan_id))


@router.put("/loans/{loan_id}/fee")
async def set_fee(loan_id: Id, body: NewFee, uow: Unit) -> dict[str, Any]:
    return to_json(await services.set_fee(uow, loan_id, body.fee))


@router.get("/members/{member_id}/loans")
async def member_loans(
    member_id: Id,
    uow: Unit,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    page = await services.member_loans(uow, member_id, after=after, limit=limit)
    return {"items": [to_json(loan) for loan in page], "next": page.next}


@router.get("/overdue")
async def overdue(uow: Unit) -> list[dict[str, Any]]:
    return [to_json(loan) for loan in await services.overdue(uow)]


def to_json(entity: Any) -> dict[str, Any]:
    """An entity as JSON: money as a string (exact), times in ISO 8601, enums by value."""
    return attrs.asdict(entity, value_serializer=_plain)


def _plain(instance: Any, field: Any, value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


app = create_app()
