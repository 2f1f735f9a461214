#!/usr/bin/env python3
"""The project's two commands, on a fresh machine with only Python 3.11+ and pip.

    python3 tasks.py demo    # run the demo (embedded PostgreSQL unless $DATABASE_URL)
    python3 tasks.py test    # every check: ruff lint + format, mypy --strict, the docs
                             # build (mkdocs --strict), the tests
    python3 tasks.py bench   # the side-by-side benchmarks (--quick for a smoke run;
                             # --help for the options; docs/performance.md)

Each creates (or reuses) the virtualenv .venv and installs the project in it
first; it reinstalls only when pyproject.toml changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("REPO_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"


def run(*cmd: str | Path) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    # NO_MKDOCS_2_WARNING: mkdocs-material prints a banner on every build otherwise.
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    result = subprocess.run([str(c) for c in cmd], cwd=ROOT, check=False, env=env)
    if result.returncode:
        sys.exit(result.returncode)


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - tasks.py may run on an older python3
        sys.exit(f"repo needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    stamp = VENV / ".repo-installed"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest and PY.exists():
        return
    if not PY.exists():
        print(f"creating the virtualenv {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    run(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(PY, "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    stamp.write_text(digest)


def demo(args: list[str]) -> None:
    run(PY, "-m", "repo", "demo", *args)


def test(args: list[str]) -> None:
    run(BIN / "ruff", "check", ".")
    run(BIN / "ruff", "format", "--check", ".")
    run(BIN / "mypy")
    with tempfile.TemporaryDirectory() as site:
        run(BIN / "mkdocs", "build", "--strict", "--quiet", "--site-dir", site)
    run(PY, "-m", "pytest", *workers(args), *args)


def workers(args: list[str]) -> list[str]:
    """pytest-xdist's options: the tests spend most of their time waiting on servers.

    Three workers on the server of $DATABASE_URL (``$REPO_TEST_WORKERS`` to
    change it, 0 for none). Without it, one process: every worker would start
    the embedded server on the same data directory.
    """
    if any(a == "-n" or a.startswith(("-n=", "--numprocesses")) for a in args):
        return []
    default = "3" if os.environ.get("DATABASE_URL") else "0"
    count = os.environ.get("REPO_TEST_WORKERS", default)
    return [] if count == "0" else ["-n", count, "--dist", "loadgroup"]


def bench(args: list[str]) -> None:
    run(PY, "-m", "bench", *args)


COMMANDS = {"bench": bench, "demo": demo, "test": test}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    ensure_venv()
    COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
