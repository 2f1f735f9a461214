"""The client-side value checks: the inline fast paths agree with the full checks."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from repo import DataError, NotNullViolation
from repo.catalog import PRODUCTS, SKUS, Product, Sku

PARIS = dt.timezone(dt.timedelta(hours=1))
NEW_YEAR_IN_PARIS = dt.datetime(2026, 1, 1, tzinfo=PARIS)


@pytest.mark.parametrize(
    "product",
    [
        Product("anvil", 1),
        Product("ünïcode", 1, 7, Decimal("99999999.99"), dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
        Product(
            "anvil", 1, price=Decimal("-0.01"), created_at=dt.datetime(2026, 1, 1, tzinfo=PARIS)
        ),
        Product("anvil", 1, price=Decimal(0)),
        Product("anvil", 2**63 - 1, price=5),  # type: ignore[arg-type]
    ],
)
def test_good_values_pass(product: Product) -> None:
    """Aware datetimes in any zone, non-ASCII text, ints for numeric and range ends pass."""
    assert PRODUCTS.check_entity(product) is product


@pytest.mark.parametrize(
    ("changes", "error", "words"),
    [
        ({"brand_id": -(2**63) - 1}, DataError, "out of range"),
        ({"brand_id": False}, DataError, "an int"),
        ({"price": Decimal("1e8")}, DataError, "overflows"),
        ({"price": Decimal("-Infinity")}, DataError, "finite"),
        ({"created_at": dt.datetime(2026, 1, 1)}, DataError, "naive"),
        ({"product_name": None}, NotNullViolation, "product.product_name is NOT NULL"),
    ],
)
def test_bad_values_are_refused_by_name(
    changes: dict[str, Any], error: type[Exception], words: str
) -> None:
    """Each bad value raises its error, naming table.field and saying why."""
    fields: dict[str, Any] = {"product_name": "anvil", "brand_id": 1, **changes}
    with pytest.raises(error) as got:
        PRODUCTS.check_entity(Product(**fields))
    assert words in str(got.value)
    assert "the Product given" in str(got.value)


def test_integer_columns_use_their_own_range() -> None:
    """sku.stock is an integer (32-bit): 2**31 is refused there, though fine for bigint."""
    SKUS.check_entity(Sku(1, 1, 1, stock=2**31 - 1))
    with pytest.raises(DataError, match=r"sku\.stock takes an int within \[-2147483648"):
        SKUS.check_entity(Sku(1, 1, 1, stock=2**31))


def test_generated_and_nullable_fields_take_none() -> None:
    """None is fine where the database fills the value, or the column is nullable."""
    PRODUCTS.check_values((" x", 1, None, None, None), "a row")
    with pytest.raises(NotNullViolation, match="a row has None"):
        PRODUCTS.check_values(("x", None, None, None, None), "a row")
