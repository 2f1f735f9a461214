"""The service over HTTP, through an ASGI client with the app's lifespan run.

Each test runs on MemoryDatabase and on PostgreSQL ($DATABASE_URL, migrated):
the same requests, the same answers. On PostgreSQL the rows stay (the app
commits, as it does in production): each test makes its own.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from lending.app import create_app, status_for
from repo import (
    CheckViolation,
    Database,
    DeadlockDetected,
    InvalidQuery,
    NotFound,
    PoolTimeout,
    SerializationFailure,
    StaleEntity,
    UniqueViolation,
)
from repo.testing import MemoryDatabase


@pytest.fixture(params=["memory", "postgres"])
async def client(request: pytest.FixtureRequest, locks: bool) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the app, its Database opened by the lifespan (and closed after)."""
    connect = MemoryDatabase if request.param == "memory" else Database.connect
    app = create_app(connect, locks=locks)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://lending"
        ) as client,
    ):
        yield client


def unique() -> str:
    """Ten digits no other test run uses: for emails and ISBNs."""
    return str(uuid.uuid4().int)[:10]


async def a_member(client: httpx.AsyncClient, tier: str = "basic") -> dict[str, Any]:
    made = await client.post(
        "/members", json={"name": "Ada", "email": f"ada{unique()}@example.org", "tier": tier}
    )
    assert made.status_code == 201, made.text
    return dict(made.json())


async def a_book(client: httpx.AsyncClient, copies: int) -> dict[str, Any]:
    made = await client.post(
        "/books", json={"title": "Dune", "isbn": f"978{unique()}", "copies": copies}
    )
    assert made.status_code == 201, made.text
    return dict(made.json())


async def test_lending_over_http(client: httpx.AsyncClient) -> None:
    """Members, books, loans and returns, and each refusal with its status and error name."""
    ada = await a_member(client, "gold")
    assert (ada["tier"], ada["joined_at"] is not None) == ("gold", True)
    taken = await client.post("/members", json={"name": "Ada", "email": ada["email"]})
    assert (taken.status_code, taken.json()["error"]) == (409, "UniqueViolation")
    assert (await client.post("/members", json={"name": "", "email": "x@y"})).status_code == 422

    book = await a_book(client, 2)
    assert len(book["copies"]) == 2
    assert (await client.get(f"/books/{book['book_id']}")).json()["available"] == 2
    lend = {"member_id": ada["member_id"], "book_id": book["book_id"]}
    first, second = [await client.post("/loans", json=lend) for _ in "ab"]
    assert (first.status_code, second.status_code) == (201, 201)
    assert {first.json()["copy_id"], second.json()["copy_id"]} == set(book["copies"])
    assert first.headers["X-Retries"] == "0"
    none_left = await client.post("/loans", json=lend)
    assert (none_left.status_code, none_left.json()["error"]) == (409, "NoCopyAvailable")
    nowhere = await client.post("/loans", json=lend | {"book_id": book["book_id"] + 10**9})
    assert (nowhere.status_code, nowhere.json()["error"]) == (404, "NotFound")

    loan_id = first.json()["loan_id"]
    returned = await client.post(f"/loans/{loan_id}/return")
    assert returned.status_code == 200
    assert (returned.json()["fee"], returned.json()["version"]) == ("0.00", 1)
    again = await client.post(f"/loans/{loan_id}/return")
    assert (again.status_code, again.json()["error"]) == (409, "AlreadyReturned")
    fee = await client.put(f"/loans/{loan_id}/fee", json={"fee": "1.50"})
    assert (fee.status_code, fee.json()["fee"]) == (200, "1.50")
    assert (await client.put(f"/loans/{loan_id}/fee", json={"fee": "1.505"})).status_code == 422
    assert (await client.post(f"/loans/{2**63}/return")).status_code == 422

    loans = f"/members/{ada['member_id']}/loans"
    page = (await client.get(loans, params={"limit": 1})).json()
    assert [loan["loan_id"] for loan in page["items"]] == [second.json()["loan_id"]]
    rest = (await client.get(loans, params={"after": page["next"]})).json()
    assert ([loan["loan_id"] for loan in rest["items"]], rest["next"]) == ([loan_id], None)
    forged = await client.get(loans, params={"after": "bm90IGEgdG9rZW4"})
    assert (forged.status_code, forged.json()["error"]) == (400, "InvalidQuery")
    assert (await client.get(f"/members/{ada['member_id'] + 10**9}/loans")).status_code == 404


async def test_concurrent_loans_over_http(client: httpx.AsyncClient, locks: bool) -> None:
    """Twelve members ask at once for a book with four copies: no copy goes out twice.

    With row locks all four are lent; the naive way may give up on some (a
    503 once its retries ran out), but never lends a copy twice.
    """
    members = [await a_member(client) for _ in range(12)]
    book = await a_book(client, 4)
    answers = await asyncio.gather(
        *(
            client.post("/loans", json={"member_id": m["member_id"], "book_id": book["book_id"]})
            for m in members
        )
    )
    lent = [a.json() for a in answers if a.status_code == 201]
    refused = {(a.status_code, a.json()["error"]) for a in answers if a.status_code != 201}
    assert refused <= {(409, "NoCopyAvailable"), (503, "SerializationFailure")}
    assert len({loan["copy_id"] for loan in lent}) == len(lent)
    if locks:
        assert (len(lent), refused) == (4, {(409, "NoCopyAvailable")})
    shelf = (await client.get(f"/books/{book['book_id']}")).json()
    assert shelf["available"] == 4 - len(lent)


async def test_rules_over_http(client: httpx.AsyncClient) -> None:
    """A negative fee is refused by the table's CHECK constraint: 422."""
    ada = await a_member(client)
    book = await a_book(client, 1)
    loan = await client.post(
        "/loans", json={"member_id": ada["member_id"], "book_id": book["book_id"]}
    )
    refused = await client.put(f"/loans/{loan.json()['loan_id']}/fee", json={"fee": "-0.01"})
    assert (refused.status_code, refused.json()["error"]) == (422, "CheckViolation")


async def test_siblings_list_overdue_loans_over_http(client: httpx.AsyncClient) -> None:
    """GET /overdue answers on both backends (the fake's join goes through siblings).

    Loans made now are due in two weeks: none of them is overdue yet.
    """
    ada = await a_member(client)
    book = await a_book(client, 1)
    await client.post("/loans", json={"member_id": ada["member_id"], "book_id": book["book_id"]})
    overdue = await client.get("/overdue")
    assert overdue.status_code == 200
    assert ada["email"] not in {loan["email"] for loan in overdue.json()}


async def test_a_busy_pool_answers_503() -> None:
    """When no connection comes free in time, the request gets 503 and Retry-After."""
    app = create_app(functools.partial(Database.connect, max_size=1, acquire_timeout=0.2))
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://lending"
        ) as client,
        app.state.db.acquire(),
    ):
        busy = await client.get("/books/1")
    assert (busy.status_code, busy.json()["error"]) == (503, "PoolTimeout")
    assert busy.headers["Retry-After"] == "1"


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFound("x"), 404),
        (UniqueViolation("x"), 409),
        (StaleEntity("x"), 409),
        (CheckViolation("x"), 422),
        (InvalidQuery("x"), 400),
        (SerializationFailure("x"), 503),
        (DeadlockDetected("x"), 503),
        (PoolTimeout("x"), 503),
        (RuntimeError("x"), 500),
    ],
)
def test_each_error_has_its_status(error: Exception, status: int) -> None:
    """The error table: retries run out or a busy pool is 503, a bug is 500."""
    assert status_for(error) == status
