"""`repo demo` on both database paths: this run's, and the other one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import ROOT, other_path_env

pytestmark = pytest.mark.skipif(
    os.environ.get("REPO_OTHER_PATH") == "1", reason="the outer run covers the demo"
)


def run_demo(env: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "repo",
            "demo",
            "--json",
            "--brands",
            "5",
            "--products",
            "50",
            "--skus",
            "600",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    figures: dict[str, Any] = json.loads(result.stdout)
    return figures


def check(figures: dict[str, Any]) -> None:
    assert figures["loaded"]["brands"] == 5
    assert figures["loaded"]["products"] == 50
    assert figures["loaded"]["skus"] == 600
    assert figures["transactions"] == {
        "committed": True,
        "rolled_back_present": False,
        "savepoint_error": "uq_brand_brand_name",
        "savepoint_outer_kept": True,
        "savepoint_inner_kept": False,
    }
    assert figures["concurrency"]["queries"] == 5
    assert figures["stream"]["rows"] == 600
    assert figures["aggregates"]["products"] == 50
    assert figures["aggregates"]["skus"] == 600
    assert "/repo_demo" in figures["database"]


def test_the_demo_tests_run_one_after_another(request: pytest.FixtureRequest) -> None:
    """Under pytest-xdist's --dist loadgroup (tasks.py), this module's tests are one group on
    one worker (they share the demo's database): xdist marks the group in the node id.
    With pytest 9 it did not (the groups were ignored, and two demos collided)."""
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("not under pytest-xdist --dist loadgroup")
    assert request.node.nodeid.endswith("@embedded")


def test_demo_on_this_path() -> None:
    """`repo demo --json` on this run's database reports the core's outcomes."""
    check(run_demo(dict(os.environ)))


def test_demo_on_the_other_path(server_dsn: str) -> None:
    """The same on the other path: embedded if this run has DATABASE_URL, and vice versa."""
    check(run_demo(other_path_env(server_dsn)))


def test_demo_off_a_terminal_prints_whole_lines() -> None:
    """Piped (as in CI or `| tee`), each line of the story is one line, not wrapped at 80."""
    small = ("--brands", "5", "--products", "50", "--skus", "600")
    result = subprocess.run(
        [sys.executable, "-m", "repo", "demo", *small],
        cwd=ROOT,
        env=dict(os.environ, COLUMNS="80"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    reports = [line for line in result.stdout.splitlines() if line.startswith("5 brand reports:")]
    assert len(reports) == 1, result.stdout
    assert len(reports[0]) > 80
    assert reports[0].endswith("x)"), reports[0]
    # It ends by saying where to go next, and what the guide's examples need first.
    assert "docs/index.md" in result.stdout.splitlines()[-1]
    assert "repo db upgrade" in result.stdout.splitlines()[-1]
