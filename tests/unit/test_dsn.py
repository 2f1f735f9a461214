"""DSN masking, scrubbing and validation: no DSN form ever shows its password."""

from __future__ import annotations

import logging
import re
import traceback
import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from repo import ConfigurationError, Database
from repo._cli import main
from repo._postgres.bouncer import split_dsn
from repo._postgres.dsn import mask_dsn, passwords_of, scrub, validate_dsn

# A password with every character that a URI reserves, and more.
NASTY = "Zq7/pa?ss#wo@rd:50%25&x=1"
# Passwords that each hold one troublesome character; "Zq7" marks them in any text.
PASSWORDS = [
    "Zq7/slash",
    "Zq7#hash",
    "Zq7?question",
    "Zq7@at",
    "Zq7:colon",
    "Zq7%percent",
    "Zq7%41encoded-looking",
    "Zq7 space",
    "Zq7ünïcødé",
    NASTY,
]


def _forms(password: str) -> dict[str, str]:
    """Every way of writing `password` into a DSN (some of them wrong), by name."""
    quoted = urllib.parse.quote(password, safe="")
    return {
        "raw": f"postgresql://u:{password}@h:5432/db",
        "encoded": f"postgresql://u:{quoted}@h:5432/db",
        "query raw": f"postgresql://u@h/db?sslmode=disable&password={password}",
        "query encoded": f"postgresql://u@h/db?password={quoted}&sslmode=disable",
        "multi-host raw": (
            f"postgresql://u:{password}@h1:5432,h2:5433/db?target_session_attrs=read-write"
        ),
        "multi-host encoded": (
            f"postgresql://u:{quoted}@h1:5432,[::1]:5433,h3/db?target_session_attrs=read-write"
        ),
        "postgres scheme": f"postgres://u:{password}@h/db",
        "no host": f"postgresql://u:{password}@/db",
    }


def _refusal(dsn: str) -> ConfigurationError | None:
    """The error `validate_dsn` raises for `dsn`, or None when it accepts it unchanged."""
    try:
        assert validate_dsn(dsn) == dsn
    except ConfigurationError as exc:
        return exc
    return None


def _leaks(text: str, password: str) -> bool:
    """Whether `text` shows `password` or its marked first part, as written or encoded."""
    first = re.split(r"[/?#@&:% ]", password)[0]
    shown = {password, urllib.parse.quote(password, safe=""), urllib.parse.quote(password), first}
    return any(s in text for s in shown)


CASES = [
    pytest.param(dsn, password, id=f"{password}-{form}")
    for password in PASSWORDS
    for form, dsn in _forms(password).items()
]


@pytest.mark.parametrize(
    ("dsn", "masked"),
    [
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgresql://h/db?password=pw&sslmode=off", "postgresql://h/db?password=***&sslmode=off"),
        ("postgres://u:p%40ss@h/db", "postgres://u:***@h/db"),
        ("postgresql://u:p/ss@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:p@ss@h1:5432,h2:5433/db", "postgresql://u:***@h1:5432,h2:5433/db"),
        ("postgresql://h/db?password=a&b&sslmode=x", "postgresql://h/db?password=***&sslmode=x"),
        ("postgresql://:pw@h/db", "postgresql://:***@h/db"),
        ("host=h password='a b' user=u", "host=h password=*** user=u"),
        (
            "postgresql://u:pw@h1:5432,h2:5433/db?target_session_attrs=read-write",
            "postgresql://u:***@h1:5432,h2:5433/db?target_session_attrs=read-write",
        ),
    ],
)
def test_mask_dsn(dsn: str, masked: str) -> None:
    """Passwords in userinfo or the query string are replaced by ***, hosts and the rest kept."""
    assert mask_dsn(dsn) == masked


@pytest.mark.parametrize(("dsn", "password"), CASES)
def test_mask_never_shows_the_password(dsn: str, password: str) -> None:
    """Whatever the password holds and wherever it is written, the masked DSN hides it."""
    assert not _leaks(mask_dsn(dsn), password)
    assert "***" in mask_dsn(dsn)


@pytest.mark.parametrize(("dsn", "password"), CASES)
def test_validation_never_shows_the_password(dsn: str, password: str) -> None:
    """A DSN is accepted, or refused with a message (and traceback) that hides the password."""
    refused = _refusal(dsn)
    if refused is not None:
        assert not _leaks("".join(traceback.format_exception(refused)), password)
        assert "***" in str(refused)


@pytest.mark.parametrize("password", PASSWORDS)
def test_encoded_passwords_are_accepted(password: str) -> None:
    """A percent-encoded password is accepted in every position, multi-host included."""
    for form, dsn in _forms(password).items():
        if "encoded" in form:
            assert validate_dsn(dsn) == dsn


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://u:p/ss@h/db",
        "postgresql://u:p?ss@h/db",
        "postgresql://u:p#ss@h/db",
        "postgresql://u:p@ss@h/db",
        "postgresql://u:p/ss@h1:5432,h2:5433/db",
    ],
)
def test_unescaped_reserved_characters_are_refused_with_the_fix(dsn: str) -> None:
    """An unescaped / ? # @ in the password is refused, saying how to percent-encode it."""
    with pytest.raises(ConfigurationError, match="%2F") as caught:
        validate_dsn(dsn)
    assert "ss" not in str(caught.value).replace("password", "")


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://u:pw@h1:5432,h2:5433/db?target_session_attrs=read-write",
        "postgresql://u:pw@h1,h2,h3/db",
        "postgresql://u@127.0.0.1:1,127.0.0.1:5432/db?target_session_attrs=prefer-standby",
        "postgresql://u@[::1]:5432,[fe80::1]/db",
        "postgresql://u@h/db?host=h1,h2&port=5432,5433",
        "postgresql://u:pw@h:65535/db",
    ],
)
def test_multi_host_dsns_are_accepted(dsn: str) -> None:
    """Host lists as asyncpg and libpq take them pass validation (no confusing port error)."""
    assert validate_dsn(dsn) == dsn


@pytest.mark.parametrize(
    ("dsn", "says"),
    [
        ("postgresql://u:pw@h1:5432,h2:x/db", "port of host 2 of 2 ('h2')"),
        ("postgresql://u:pw@h1:5432,,h2/db", "host 2 of 3 is empty"),
        ("postgresql://u:pw@h:0/db", "from 1 to 65535"),
        ("postgresql://u:pw@h:70000/db", "from 1 to 65535"),
        ("postgresql://u:pw@[::1/db", "[IPv6]:port"),
        ("postgresql://u:pw@h/db?target_session_attrs=master", "read-write"),
        ("postgresql://u:pw@h/db?sslmode", "key=value"),
        ("postgresql://u:pw@h/db?application_name=a@b", "%40"),
    ],
)
def test_bad_host_lists_and_queries_say_what_is_wrong(dsn: str, says: str) -> None:
    """A bad port, empty host, bad attribute or query is named, with the password masked."""
    with pytest.raises(ConfigurationError) as caught:
        validate_dsn(dsn)
    assert says in str(caught.value)
    assert "pw" not in str(caught.value).replace("password", "")


def test_a_misplaced_password_is_not_shown_as_a_port() -> None:
    """A password in the port position (no '@') is not echoed by the port check."""
    with pytest.raises(ConfigurationError) as caught:
        validate_dsn("postgresql://user:Zq7secret/db")
    assert "Zq7secret" not in str(caught.value)


def test_scrub_removes_raw_and_quoted_password() -> None:
    """Text quoting the DSN loses the password in both forms."""
    dsn = "postgresql://u:p%40ss@h/db"
    assert scrub("failed: p@ss and p%40ss", dsn) == "failed: *** and ***"


def test_scrub_covers_misreadings_and_the_query() -> None:
    """What a driver reading a bad DSN could quote (a piece of the password) is scrubbed too."""
    dsn = "postgresql://u:Zq7/ssword@h/db"
    assert scrub("invalid port 'Zq7' or database 'ssword@h/db'", dsn) == (
        "invalid port '***' or database '***@h/db'"
    )
    assert scrub("bad: Zq7&x", "postgresql://h/db?password=Zq7%26x") == "bad: ***"
    assert passwords_of("postgresql://u@h/db") == set()


def test_scrub_uses_pgpassword(monkeypatch: pytest.MonkeyPatch) -> None:
    """A password from $PGPASSWORD is scrubbed as well."""
    monkeypatch.setenv("PGPASSWORD", "Zq7-env")
    assert scrub("auth failed for Zq7-env", "postgresql://u@h/db") == "auth failed for ***"


def test_validate_accepts_postgres_uris() -> None:
    """postgresql:// and postgres:// URIs pass; key=value strings are refused."""
    assert validate_dsn("postgresql://u@h/db") == "postgresql://u@h/db"
    assert validate_dsn("postgres://u@h/db") == "postgres://u@h/db"
    with pytest.raises(ConfigurationError, match="not a URI") as caught:
        validate_dsn("dbname=x password=secret")
    assert "secret" not in str(caught.value)


@given(
    st.text(
        alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="\x7f"),
        min_size=0,
        max_size=24,
    )
)
def test_no_password_ever_shows(tail: str) -> None:
    """For any password, in any DSN form: masked DSNs and refusals never show it."""
    password = "Zq7" + tail
    for dsn in _forms(password).values():
        assert "Zq7" not in mask_dsn(dsn)
        assert "Zq7" not in str(_refusal(dsn))


@pytest.mark.parametrize(("dsn", "password"), CASES[::3])
def test_database_repr_and_errors_hide_the_password(dsn: str, password: str) -> None:
    """Database.connect refuses or keeps the DSN; its error or repr hides the password."""
    refused = _refusal(dsn)
    if refused is not None:
        with pytest.raises(ConfigurationError) as caught:
            Database.connect(dsn)
        assert not _leaks("".join(traceback.format_exception(caught.value)), password)
    else:
        db = Database.connect(dsn)
        assert not _leaks(repr(db), password)
        assert not _leaks(db.dsn, password)


@pytest.mark.parametrize("password", PASSWORDS)
def test_cli_help_hides_the_password(
    password: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``repo --help`` (and each command's help) shows $DATABASE_URL without its password."""
    for dsn in _forms(password).values():
        monkeypatch.setenv("DATABASE_URL", dsn)
        for argv in (["--help"], ["db", "--help"], ["demo", "--help"]):
            with pytest.raises(SystemExit):
                main(argv)
            out = capsys.readouterr()
            assert not _leaks(out.out + out.err, password)
            assert "DATABASE_URL = postgres" in out.out


def test_cli_error_hides_the_password(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A command given a bad DSN fails with a message and logs that hide the password."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://u:{NASTY}@h:5432/db")
    assert main(["db", "current"]) == 1
    err = capsys.readouterr().err
    assert "ConfigurationError" in err
    assert not _leaks(err, NASTY)
    assert all(not _leaks(r.getMessage(), NASTY) for r in caplog.records)


def test_pgbouncer_switch_comes_off_a_multi_host_dsn_intact() -> None:
    """``?pgbouncer=`` is taken off a multi-host DSN; hosts, encoded password and the
    other parameters stay as written."""
    dsn = (
        "postgresql://u:s%2Fcr%40t@h1:5432,h2:5433/db"
        "?pgbouncer=true&target_session_attrs=read-write"
    )
    assert split_dsn(dsn) == (
        "postgresql://u:s%2Fcr%40t@h1:5432,h2:5433/db?target_session_attrs=read-write",
        True,
    )
