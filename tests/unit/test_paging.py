"""Keyset ordering and page tokens, without a server."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import attrs
import pytest

from repo import InvalidQuery, Table
from repo._paging import decode_token, encode_token, keyset_order
from repo._postgres.sql import statements
from repo._query import Order, parse_filters
from repo.catalog import BRANDS


@attrs.frozen
class Event:
    at: dt.datetime
    note: str | None = None
    event_id: int | None = None


EVENTS = Table("event", Event, key="event_id")


def test_key_is_appended_as_tie_breaker() -> None:
    """The key closes every keyset ordering, in the same direction."""
    assert keyset_order(BRANDS, None) == (Order("brand_id"),)
    assert keyset_order(BRANDS, "-brand_name") == (
        Order("brand_name", True),
        Order("brand_id", True),
    )


def test_nullable_order_is_refused() -> None:
    """NULLs break a keyset, so nullable fields cannot order a page."""
    with pytest.raises(InvalidQuery, match="nullable"):
        keyset_order(EVENTS, "note")


@pytest.mark.parametrize(
    "values",
    [
        (1, "x"),
        (decimal.Decimal("1.50"), 2),
        (dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), 3),
        (dt.date(2026, 1, 2), uuid.UUID(int=7)),
        (True, 1.5),
    ],
)
def test_tokens_round_trip_their_types(values: tuple[object, object]) -> None:
    """A token gives back exactly the values (and types) it was made from."""
    orders = (Order("brand_name"), Order("brand_id"))
    assert decode_token(BRANDS, orders, encode_token(BRANDS, orders, values)) == values


def test_a_token_is_bound_to_its_table_and_ordering() -> None:
    """A token for one table or ordering is refused by another."""
    orders = (Order("brand_id"),)
    token = encode_token(BRANDS, orders, (5,))
    with pytest.raises(InvalidQuery):
        decode_token(BRANDS, (Order("brand_id", True),), token)
    with pytest.raises(InvalidQuery):
        decode_token(EVENTS, (Order("event_id"),), token)


def test_page_sql_uses_a_row_comparison_and_no_offset() -> None:
    """Pages seek with (cols) > (values) and LIMIT: never OFFSET."""
    orders = keyset_order(BRANDS, "brand_name")
    sql, args = statements(BRANDS).page(parse_filters(BRANDS, {"brand_name": "x"}), orders, True)
    assert sql.endswith(
        'WHERE "brand_name" = $1 AND ("brand_name", "brand_id") > ($2, $3) '
        'ORDER BY "brand_name", "brand_id" LIMIT $4'
    )
    assert "OFFSET" not in sql
    assert args == ["x"]
