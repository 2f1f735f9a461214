"""The database path this run does not use gets the demo and the smoke subset.

With $DATABASE_URL set, the rest of the suite runs on that server, and this
runs the demo and the ``smoke`` tests on the embedded default (no
DATABASE_URL). Without it, the suite runs on the embedded server, and this
runs them again through DATABASE_URL pointing at that server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    os.environ.get("REPO_OTHER_PATH") == "1", reason="already the other path"
)


def _other_env(server_dsn: str) -> dict[str, str]:
    env = dict(os.environ, REPO_OTHER_PATH="1")
    if env.pop("DATABASE_URL", None) is None:
        env["DATABASE_URL"] = server_dsn
    return env


def test_demo_on_the_other_path(server_dsn: str) -> None:
    """`repo demo --json` succeeds on the other path and reports the core's outcomes."""
    result = subprocess.run(
        [sys.executable, "-m", "repo", "demo", "--json", "--brands", "5", "--products", "50"],
        cwd=ROOT,
        env=_other_env(server_dsn),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["loaded"] == {"brands": 5, "products": 50, "skus": 600}
    assert figures["transactions"] == {
        "committed": True,
        "rolled_back_present": False,
        "savepoint_error": "uq_brand_brand_name",
        "savepoint_outer_kept": True,
        "savepoint_inner_kept": False,
    }


def test_smoke_subset_on_the_other_path(server_dsn: str) -> None:
    """The smoke-marked tests pass on the other path too."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "smoke", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=ROOT,
        env=_other_env(server_dsn),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
