"""The PgBouncer switch's parsing: DSN parameter, environment, server settings."""

from __future__ import annotations

import pytest

from repo import ConfigurationError, Database
from repo._postgres.bouncer import check_settings, split_dsn, switch_from_env


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        ("postgresql://u@h/db", ("postgresql://u@h/db", None)),
        ("postgresql://u@h/db?pgbouncer=true", ("postgresql://u@h/db", True)),
        (
            "postgresql://u@h/db?sslmode=disable&pgbouncer=0",
            ("postgresql://u@h/db?sslmode=disable", False),
        ),
        ("postgresql://u@h/db?sslmode=disable", ("postgresql://u@h/db?sslmode=disable", None)),
    ],
)
def test_the_dsn_parameter_is_read_and_removed(dsn: str, expected: tuple[str, bool | None]) -> None:
    """``pgbouncer=`` is taken out of the DSN (asyncpg would send it to the server) and read."""
    assert split_dsn(dsn) == expected


def test_a_value_that_is_not_a_switch_is_refused() -> None:
    """``pgbouncer=maybe`` is a ConfigurationError naming the accepted values."""
    with pytest.raises(ConfigurationError, match="1/true/on"):
        split_dsn("postgresql://u@h/db?pgbouncer=maybe")


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("off", False), ("", None)])
def test_the_environment_switch(
    value: str, expected: bool | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """REPO_PGBOUNCER reads as a switch; empty means not given."""
    monkeypatch.setenv("REPO_PGBOUNCER", value)
    assert switch_from_env() is expected


def test_only_settings_pgbouncer_tracks_are_allowed() -> None:
    """application_name passes; search_path is refused with where to set it instead."""
    check_settings({"application_name": "shop"})
    with pytest.raises(ConfigurationError, match="ALTER ROLE"):
        check_settings({"search_path": "shop"})


def test_replica_options_are_checked() -> None:
    """A lone string for replicas, or a negative lag bound, is refused at once."""
    with pytest.raises(ConfigurationError, match="list of DSNs"):
        Database.connect("postgresql://u@h/db", replicas="postgresql://u@r/db")
    with pytest.raises(ConfigurationError, match="max_replica_lag"):
        Database.connect(
            "postgresql://u@h/db", replicas=["postgresql://u@r/db"], max_replica_lag=-1
        )
