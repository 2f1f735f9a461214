"""The client-side value checks: the inline fast paths agree with the full checks."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from decimal import Decimal
from typing import Any

import pytest

from repo import DataError, InvalidQuery, NotNullViolation
from repo._checks import check_lines, compile_key_check, plan_of
from repo._columns import ColumnSpec
from repo._types import kind_of
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


@pytest.mark.parametrize(
    ("sql", "fits", "overflows"),
    [
        ("numeric(12,2)", "9999999999.994", "9999999999.995"),
        ("numeric(12,2)", "-9999999999.994", "-9999999999.995"),
        ("numeric(2,2)", "0.994", "0.995"),
        ("numeric(3,0)", "999.4", "999.5"),
        ("numeric(3,-2)", "99949", "99950"),
        ("numeric(2,3)", "0.0994", "0.0995"),
    ],
)
def test_numeric_overflow_is_judged_after_rounding_to_the_scale(
    sql: str, fits: str, overflows: str
) -> None:
    """PostgreSQL rounds half away from zero to the scale, then checks the precision: a
    value that only overflows once rounded is refused, by the inline test and the full one."""
    spec = _spec(Decimal, sql)
    plan = plan_of(spec)
    assert plan is not None
    assert plan.check(Decimal(fits)) is None
    assert "overflows once rounded" in (plan.check(Decimal(overflows)) or "")
    assert not _inline_passes(spec, Decimal(overflows))


def _spec(tp: Any, sql: str, **kw: Any) -> ColumnSpec:
    kind, array = kind_of(sql)
    return ColumnSpec(
        "f", "f", "f", sql, False, False, None, tp, kind=kind, array=array, element_type=tp, **kw
    )


def _inline_passes(spec: ColumnSpec, value: Any) -> bool:
    """Whether the generated inline test lets `value` through without the full check."""
    env: dict[str, Any] = {}
    lines = check_lines([spec], "t", ["v"], env)
    env["_check_v"] = lambda value, where: (_ for _ in ()).throw(AssertionError("checked"))
    exec("def run(v, where):\n" + "\n".join(lines or ["    pass"]), env)
    try:
        env["run"](value, "here")
    except AssertionError:
        return False
    return True


AWKWARD: list[Any] = [
    True,
    0,
    -(2**63) - 1,
    2**63,
    2**31,
    1.5,
    math.nan,
    math.inf,
    1e39,
    Decimal("NaN"),
    Decimal("sNaN"),
    Decimal("1e20"),
    Decimal("9999999999.995"),
    "a\x00",
    "\ud800",
    "text",
    "12345678-9abc-4def-8123-456789abcdef",
    b"x",
    bytearray(b"x"),
    dt.datetime(2026, 1, 1),
    dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    dt.datetime.max.replace(tzinfo=dt.UTC),
    dt.datetime.min.replace(tzinfo=dt.UTC),
    dt.datetime(1, 1, 1, tzinfo=dt.UTC),
    dt.date(2026, 1, 1),
    dt.time(12),
    dt.timedelta(1),
    uuid.UUID(int=1),
    [1],
    {"a": 1},
    {"a": math.nan},
]

SPECS = [
    _spec(str, "text"),
    _spec(int, "bigint"),
    _spec(int, "integer"),
    _spec(int, "smallint"),
    _spec(Decimal, "numeric(12,2)"),
    _spec(Decimal, "numeric"),
    _spec(float, "double precision"),
    _spec(float, "real"),
    _spec(bool, "boolean"),
    _spec(dt.datetime, "timestamptz(3)"),
    _spec(dt.datetime, "timestamp"),
    _spec(dt.date, "date"),
    _spec(dt.time, "time"),
    _spec(dt.timedelta, "interval"),
    _spec(uuid.UUID, "uuid"),
    _spec(bytes, "bytea"),
    _spec(Any, "jsonb"),
    _spec(Any, "json"),
    _spec(str, "text[]", element_nullable=True),
]


@pytest.mark.parametrize("spec", SPECS, ids=[s.sql_type for s in SPECS])
def test_the_inline_tests_pass_nothing_the_full_check_refuses(spec: ColumnSpec) -> None:
    """For every awkward value, the generated inline test lets it through only if the
    column's full check accepts it (the inline test is a shortcut, never a loophole)."""
    plan = plan_of(spec)
    assert plan is not None
    for value in AWKWARD:
        if _inline_passes(spec, value):
            assert plan.check(value) is None, (spec.sql_type, value)


def test_keys_are_checked_and_looked_up_as_one_value() -> None:
    """A key of the wrong type is InvalidQuery naming it; a uuid's str is its UUID, a
    bytearray its bytes, an enum label its member."""
    check = compile_key_check(_spec(uuid.UUID, "uuid"), "t")
    u = uuid.UUID(int=7)
    assert check(u, "get()") is u
    assert check(str(u), "get()") == u
    with pytest.raises(InvalidQuery, match=r"get\(\): t\.f is the key, which takes a UUID"):
        check("nope", "get()")
    with pytest.raises(InvalidQuery, match="never None"):
        check(None, "get()")
    assert compile_key_check(_spec(bytes, "bytea"), "t")(bytearray(b"k"), "get()") == b"k"
    with pytest.raises(InvalidQuery, match="an int"):
        compile_key_check(_spec(int, "bigint"), "t")("1", "delete()")
