"""Filters, operators, order and the SQL text they compile to, without a server."""

from __future__ import annotations

import pytest

from repo import InvalidQuery, Op, between, eq, gt, ilike, in_, like, ne, not_in
from repo._postgres.sql import arguments, statements
from repo._query import Operator, Order, parse_filters, parse_order
from repo.catalog import BRANDS, SKUS


def test_equality_none_and_operators_parse() -> None:
    """Plain values are equality, None stays None (IS NULL), helpers carry their operator."""
    conditions = parse_filters(BRANDS, {"brand_name": "a", "brand_id": gt(3)}) + parse_filters(
        BRANDS, {"brand_name": None}
    )
    assert [(c.field, c.operator, c.value) for c in conditions] == [
        ("brand_name", Operator.EQ, "a"),
        ("brand_id", Operator.GT, 3),
        ("brand_name", Operator.EQ, None),
    ]


def test_where_clause_and_arguments() -> None:
    """Each operator renders to SQL with numbered parameters; NULLs take none."""
    st = statements(BRANDS)
    conditions = (
        parse_filters(
            BRANDS,
            {"brand_name": ilike("a%"), "brand_id": between(1, 9)},
        )
        + parse_filters(BRANDS, {"brand_name": ne(None)})
        + parse_filters(BRANDS, {"brand_id": in_([1, 2])})
        + parse_filters(BRANDS, {"brand_id": not_in({3})})
    )
    assert st.where(conditions) == (
        ' WHERE "brand_name" ILIKE $1 AND "brand_id" BETWEEN $2 AND $3'
        ' AND "brand_name" IS NOT NULL AND "brand_id" = ANY($4) AND "brand_id" <> ALL($5)'
    )
    assert arguments(conditions) == ["a%", 1, 9, [1, 2], [3]]


def test_select_text_is_cached_per_shape_not_per_value() -> None:
    """Two queries differing only in values share one SQL text (so the statement cache hits)."""
    st = statements(SKUS)
    sql1, args1 = st.select(
        parse_filters(SKUS, {"product_id": 1}), parse_order(SKUS, "-sku_id"), 10
    )
    sql2, args2 = st.select(
        parse_filters(SKUS, {"product_id": 2}), parse_order(SKUS, "-sku_id"), 20
    )
    assert sql1 is sql2
    assert sql1.endswith('WHERE "product_id" = $1 ORDER BY "sku_id" DESC LIMIT $2')
    assert (args1, args2) == ([1, 10], [2, 20])
    sql3, _ = st.select(parse_filters(SKUS, {"product_id": None}), (), None, 5)
    assert sql3.endswith('WHERE "product_id" IS NULL OFFSET $1')


def test_order_by_parsing() -> None:
    """order_by takes a name, '-name', or a sequence of them."""
    assert parse_order(BRANDS, "-brand_name") == (Order("brand_name", descending=True),)
    assert parse_order(BRANDS, ["brand_name", "-brand_id"]) == (
        Order("brand_name"),
        Order("brand_id", descending=True),
    )
    assert parse_order(BRANDS, None) == ()


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"nope": 1}, "no field 'nope'"),
        ({"brand_id": in_(None)}, "collection"),  # type: ignore[arg-type]
        ({"brand_id": in_("abc")}, "collection"),
        ({"brand_id": in_([1, None])}, "None"),
        ({"brand_id": gt(None)}, "None"),
        ({"brand_id": between(1, None)}, "bounds"),
        ({"brand_name": like(5)}, "pattern"),  # type: ignore[arg-type]
    ],
)
def test_bad_filters_raise_invalid_query(filters: dict[str, object], message: str) -> None:
    """Unknown fields and ill-formed operator values are refused with InvalidQuery."""
    with pytest.raises(InvalidQuery, match=message):
        parse_filters(BRANDS, filters)


def test_unknown_operator_and_order_key() -> None:
    """An unknown operator name or order key raises InvalidQuery naming it."""
    with pytest.raises(InvalidQuery, match="'~'"):
        Op("~", 1)
    with pytest.raises(InvalidQuery, match="'colour'"):
        parse_order(BRANDS, "colour")
    with pytest.raises(InvalidQuery):
        parse_order(BRANDS, "-")
    assert Op("GE", 1).operator is Operator.GE
    assert eq(1) == Op(Operator.EQ, 1)


def test_insert_statement_leaves_out_generated_nones() -> None:
    """INSERT omits generated columns holding None and returns every column."""
    sql, positions = statements(BRANDS).insert(("brand_id",))
    assert sql == (
        'INSERT INTO "brand" ("brand_name") VALUES ($1) RETURNING "brand_name", "brand_id"'
    )
    assert positions == (0,)


def test_patterns_only_on_text_fields() -> None:
    """like/ilike on a field that is not text is refused (PostgreSQL has no such operator)."""
    from repo import InvalidQuery, like
    from repo._query import parse_filters
    from repo.catalog import BRANDS

    with pytest.raises(InvalidQuery, match="only text fields"):
        parse_filters(BRANDS, {"brand_id": like("1%")})
