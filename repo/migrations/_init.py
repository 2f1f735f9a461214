"""`repo db init`: a project's own migrations, ready for its first revision."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from repo.errors import ConfigurationError

from ._metadata import load_tables

__all__ = ["init_project"]

_TEMPLATE = Path(__file__).resolve().parent / "template"


def init_project(directory: str | os.PathLike[str] = ".", *, tables: str) -> list[Path]:
    """Write ``alembic.ini`` and ``migrations/`` (env.py, script.py.mako, versions/) in `directory`.

    `tables` names the project's mappings as ``module:NAME`` entries (a
    `Table` or a sequence of them), importable from `directory`; they are
    loaded once here, so that a typo fails now rather than at the first
    revision. Refuses to overwrite an existing ``alembic.ini`` or
    ``migrations/``. Returns the paths written.
    """
    root = Path(directory).expanduser().resolve()
    ini = root / "alembic.ini"
    scripts = root / "migrations"
    taken = [p for p in (ini, scripts) if p.exists()]
    if taken:
        shown = " and ".join(str(p) for p in taken)
        msg = f"{shown} already exists: repo db init starts a project, it never overwrites one"
        raise ConfigurationError(msg)
    _check_tables(root, tables)
    (scripts / "versions").mkdir(parents=True)
    return [
        _write(ini, (_TEMPLATE / "alembic.ini.tmpl").read_text().format(tables=tables)),
        _write(scripts / "env.py", (_TEMPLATE / "env.py.tmpl").read_text()),
        _write(scripts / "script.py.mako", (_TEMPLATE / "script.py.mako").read_text()),
        scripts / "versions",
    ]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _check_tables(root: Path, tables: str) -> None:
    if not tables or not tables.strip():
        msg = "repo db init needs --tables MODULE:NAME: the Table mappings of the schema"
        raise ConfigurationError(msg)
    # As alembic.ini's prepend_sys_path will: the project's modules import from its root.
    sys.path.insert(0, str(root))
    try:
        load_tables(tables)
    finally:
        sys.path.remove(str(root))
