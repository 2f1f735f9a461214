"""DSN masking, scrubbing and validation."""

from __future__ import annotations

import pytest

from repo import ConfigurationError
from repo._dsn import mask_dsn, scrub, validate_dsn


@pytest.mark.parametrize(
    ("dsn", "masked"),
    [
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgresql://h/db?password=pw&sslmode=off", "postgresql://h/db?password=***&sslmode=off"),
        ("postgres://u:p%40ss@h/db", "postgres://u:***@h/db"),
    ],
)
def test_mask_dsn(dsn: str, masked: str) -> None:
    """Passwords in userinfo or the query string are replaced by ***."""
    assert mask_dsn(dsn) == masked


def test_scrub_removes_raw_and_quoted_password() -> None:
    """Text quoting the DSN loses the password in both forms."""
    dsn = "postgresql://u:p%40ss@h/db"
    assert scrub("failed: p@ss and p%40ss", dsn) == "failed: *** and ***"


def test_validate_accepts_postgres_uris() -> None:
    """postgresql:// and postgres:// URIs pass."""
    assert validate_dsn("postgresql://u@h/db") == "postgresql://u@h/db"
    with pytest.raises(ConfigurationError, match="not a URI"):
        validate_dsn("dbname=x password=secret")
