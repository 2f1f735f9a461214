"""Alembic's post-write hook for new revision files: ruff, when it is installed.

``alembic.ini`` runs it as ``python -m repo.migrations._format FILE``. A
project without ruff gets its revision files as Alembic wrote them, rather
than a failed ``revision`` command.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _ruff() -> list[str] | None:
    if importlib.util.find_spec("ruff") is not None:
        return [sys.executable, "-m", "ruff"]
    found = shutil.which("ruff")
    return [found] if found else None


def main(paths: Sequence[str]) -> int:
    """Fix and format `paths` with ruff if it is installed; never fail the revision."""
    ruff = _ruff()
    if ruff is None or not paths:
        return 0
    for args in (["check", "--fix", "--exit-zero", "--quiet"], ["format", "--quiet"]):
        subprocess.run([*ruff, *args, *paths], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
