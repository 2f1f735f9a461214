"""The migration commands' own logic, without a server: lock_timeout and drift in words."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from repo import ConfigurationError
from repo.migrations import DEFAULT_LOCK_TIMEOUT, ENV_LOCK_TIMEOUT, describe, lock_timeout


def test_lock_timeout_prefers_the_option_then_the_environment_then_the_ini(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--lock-timeout / -x beat $REPO_MIGRATION_LOCK_TIMEOUT, which beats alembic.ini and 5s."""
    monkeypatch.delenv(ENV_LOCK_TIMEOUT, raising=False)
    assert lock_timeout() == DEFAULT_LOCK_TIMEOUT == "5s"
    assert lock_timeout(None, fallback="7s") == "7s"
    monkeypatch.setenv(ENV_LOCK_TIMEOUT, "250ms")
    assert lock_timeout(None, "", fallback="7s") == "250ms"
    assert lock_timeout(None, "2min", fallback="7s") == "2min"
    assert lock_timeout("0") == "0"


@pytest.mark.parametrize("value", ["5 seconds", "5s; DROP TABLE brand", "-1", "1.5s", "s"])
def test_a_lock_timeout_postgres_would_not_take_is_refused(value: str) -> None:
    """Anything but a whole number with an optional unit is refused before reaching SET."""
    with pytest.raises(ConfigurationError, match="such as 5s"):
        lock_timeout(value)


def test_drift_is_described_in_words() -> None:
    """Each kind of autogenerate difference reads as what is mapped and what the database has."""
    meta = sa.MetaData()
    table = sa.Table(
        "product",
        meta,
        sa.Column("product_name", sa.Text()),
        sa.UniqueConstraint("product_name", name="uq_product_product_name"),
        sa.Index("ix_product_product_name", "product_name"),
    )
    unique = next(c for c in table.constraints if isinstance(c, sa.UniqueConstraint))
    index = next(iter(table.indexes))
    diffs: list[object] = [
        ("add_table", table),
        ("remove_column", None, "product", sa.Column("price", sa.Numeric())),
        ("add_column", "shop", "product", sa.Column("colour", sa.Text())),
        [("modify_nullable", None, "product", "product_name", {}, False, True)],
        [("modify_type", None, "product", "price", {}, "NUMERIC(10, 2)", "TEXT")],
        [
            (
                "modify_default",
                None,
                "product",
                "created_at",
                {},
                "now()",
                sa.DefaultClause(sa.text("clock_timestamp()")),
            )
        ],
        ("add_constraint", unique),
        ("remove_index", index),
    ]
    assert [describe(d) for d in diffs] == [
        "table product is mapped but missing from the database",
        "column product.price is in the database but not mapped",
        "column shop.product.colour is mapped but missing from the database",
        "product.product_name: nullable is NOT NULL in the database but NULL in the mapping",
        "product.price: type is NUMERIC(10, 2) in the database but TEXT in the mapping",
        "product.created_at: default is now() in the database but clock_timestamp() in the mapping",
        "constraint uq_product_product_name on product is mapped but missing from the database",
        "index ix_product_product_name on product is in the database but not mapped",
    ]
