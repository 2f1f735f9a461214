"""Observability's pure logic: row counts, messages, hooks, and the quiet hot path."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from repo import PoolEvent, StatementEvent
from repo._observe import Observer, one_line, row_count
from repo._postgres.run import call


@pytest.mark.parametrize(
    ("name", "result", "rows"),
    [
        ("fetch", [1, 2, 3], 3),
        ("fetch", [], 0),
        ("fetchrow", None, 0),
        ("fetchrow", (1,), 1),
        ("fetchval", 42, None),  # one value, even a count(*), is not a row count
        ("execute", "UPDATE 3", 3),
        ("execute", "INSERT 0 1", 1),
        ("copy", "COPY 100000", 100000),
        ("execute", "BEGIN", None),
        ("execute", "RELEASE", None),
        ("forward", 7, 7),
    ],
)
def test_row_count(name: str, result: Any, rows: int | None) -> None:
    """Rows come from a fetch's length, a single row, or a command tag's count."""
    assert row_count(name, result) == rows


def test_one_line() -> None:
    """SQL is collapsed onto one line and cut at 500 characters."""
    assert one_line("SELECT\n  a,\n\tb\nFROM t") == "SELECT a, b FROM t"
    long = "SELECT " + "x" * 1000
    assert len(one_line(long)) == 500
    assert one_line(long).endswith("...")


def test_event_values_are_frozen() -> None:
    """Events are frozen values: hooks can keep them."""
    event = StatementEvent(
        sql="BEGIN", duration=0.1, rows=None, slow=False, error=None, parameters=0
    )
    with pytest.raises(AttributeError):
        event.sql = "COMMIT"  # type: ignore[misc]
    assert PoolEvent(kind="acquire_wait", duration=0.5, detail="x").kind == "acquire_wait"


def test_raising_hook_logged_once_at_warning(caplog: pytest.LogCaptureFixture) -> None:
    """A raising hook is a WARNING with its traceback the first time, DEBUG after; others run."""
    caplog.set_level(logging.DEBUG, logger="repo.sql")
    seen: list[StatementEvent | PoolEvent] = []

    def broken(event: StatementEvent | PoolEvent) -> None:
        raise RuntimeError("hook bug")

    obs = Observer(1.0, broken, log_parameters=False)
    obs.add_hook(seen.append)
    for _ in range(3):
        obs.statement("execute", "BEGIN", (), 0.001, result="BEGIN")
    failures = [r for r in caplog.records if "event hook" in r.getMessage()]
    assert [r.levelno for r in failures] == [logging.WARNING, logging.DEBUG, logging.DEBUG]
    assert "RuntimeError: hook bug" in (failures[0].exc_text or "")
    assert len(seen) == 3


class Instant:
    """A connection that answers at once: only repo's own cost is left."""

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        return None


INSTANT: Any = Instant()


async def test_quiet_hot_path_does_nothing(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no hook, DEBUG off and a fast statement, call() never reaches the observer."""
    caplog.set_level(logging.INFO, logger="repo.sql")
    reached: list[str] = []
    obs = Observer(1.0, None, log_parameters=False)
    await call(INSTANT, "fetchrow", "SELECT 1", (), obs)  # fills logging's cache
    monkeypatch.setattr(Observer, "statement", lambda *a, **k: reached.append("statement"))
    for _ in range(100):
        await call(INSTANT, "fetchrow", "SELECT $1", ("secret",), obs)
    assert reached == []
    caplog.set_level(logging.DEBUG, logger="repo.sql")
    await call(INSTANT, "fetchrow", "SELECT $1", ("secret",), obs)
    assert reached == ["statement"]
