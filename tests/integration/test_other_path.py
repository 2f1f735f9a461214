"""The database path this run does not use gets the smoke subset (the demo: test_demo.py).

With $DATABASE_URL set, the rest of the suite runs on that server, and this
runs the demo and the ``smoke`` tests on the embedded default (no
DATABASE_URL). Without it, the suite runs on the embedded server, and this
runs them again through DATABASE_URL pointing at that server.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, other_path_env

pytestmark = pytest.mark.skipif(
    os.environ.get("REPO_OTHER_PATH") == "1", reason="already the other path"
)


def test_smoke_subset_on_the_other_path(server_dsn: str) -> None:
    """The smoke-marked tests pass on the other path too."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "smoke", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=ROOT,
        env=other_path_env(server_dsn),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
