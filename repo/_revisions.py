"""The migrations' head revision(s), read without importing Alembic.

`Database.connect(require_head=True)` compares the database's
``alembic_version`` with the head of the migration scripts. The runtime must
not import Alembic or SQLAlchemy, so the scripts are parsed here (their
module-level ``revision`` and ``down_revision``), not executed.
"""

from __future__ import annotations

import ast
import configparser
import os
from collections.abc import Iterable
from pathlib import Path

from .errors import ConfigurationError, SchemaMismatch

__all__ = ["check_revision", "find_ini", "script_heads", "script_revisions", "versions_dirs"]

_SEPARATORS = {"space": " ", "newline": "\n", "os": os.pathsep, ";": ";", ":": ":"}


def find_ini(given: str | os.PathLike[str] | None = None) -> Path:
    """The project's ``alembic.ini``: `given` (the file or its folder), else the one here.

    Never anything else: a command run outside a project must not pick some
    other project's migrations (the catalog's included). `ConfigurationError`
    when there is none, naming the file and how to make one.
    """
    if given is not None:
        path = Path(given).expanduser()
        candidate = path / "alembic.ini" if path.is_dir() else path
        if not candidate.is_file():
            msg = (
                f"no alembic.ini at {path}: name the project's alembic.ini or the folder holding it"
            )
            raise ConfigurationError(msg)
        return candidate.resolve()
    candidate = Path.cwd() / "alembic.ini"
    if candidate.is_file():
        return candidate.resolve()
    msg = (
        f"no alembic.ini in {Path.cwd()}: run from the project's directory, name it "
        "(repo db --config PATH, Database.connect(migrations=PATH)), or start the "
        "project's migrations with `repo db init --tables MODULE:NAME`"
    )
    raise ConfigurationError(msg)


def versions_dirs(ini: Path) -> list[Path]:
    """The folders holding the revision scripts, as ``alembic.ini`` names them."""
    parser = configparser.ConfigParser(defaults={"here": str(ini.resolve().parent)})
    parser.read(ini)
    if not parser.has_option("alembic", "script_location"):
        msg = f"{ini} has no script_location in its [alembic] section"
        raise ConfigurationError(msg)

    def path(text: str) -> Path:
        # Alembic reads a relative path from the working directory; the ini's
        # folder is the one that does not depend on where the app starts.
        found = Path(text.strip()).expanduser()
        return found if found.is_absolute() else ini.resolve().parent / found

    locations = parser.get("alembic", "version_locations", fallback="").strip()
    if not locations:
        return [path(parser.get("alembic", "script_location")) / "versions"]
    separator = _SEPARATORS.get(parser.get("alembic", "path_separator", fallback="").strip())
    parts = locations.split(separator) if separator else locations.replace(",", " ").split()
    return [path(p) for p in parts if p.strip()]


def _literal(node: ast.expr | None) -> object:
    try:
        return ast.literal_eval(node) if node is not None else None
    except ValueError:
        return None


def _script(path: Path) -> tuple[str, tuple[str, ...]] | None:
    """The (revision, down revisions) of one script, or None if it is not one."""
    values: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
        value: ast.expr | None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
            values[target.id] = _literal(value)
    revision = values.get("revision")
    if not isinstance(revision, str):
        return None
    down = values.get("down_revision")
    if isinstance(down, str):
        return revision, (down,)
    if isinstance(down, tuple | list):
        return revision, tuple(d for d in down if isinstance(d, str))
    return revision, ()


def script_revisions(
    where: str | os.PathLike[str] | None = None,
) -> tuple[frozenset[str], tuple[str, ...]]:
    """Every revision of the migration scripts, and the head revision(s) sorted.

    `where` is an ``alembic.ini``, a folder holding one, or a folder of
    revision scripts; default: the ``alembic.ini`` the ``repo db`` commands use.
    """
    folders: Iterable[Path]
    given = Path(where) if where is not None else None
    if given is None:
        folders = versions_dirs(find_ini())
    elif given.is_file():
        folders = versions_dirs(given)
    elif (given / "alembic.ini").is_file():
        folders = versions_dirs(given / "alembic.ini")
    else:
        folders = [given]
    revisions: set[str] = set()
    parents: set[str] = set()
    for folder in folders:
        if not folder.is_dir():
            msg = f"the migrations folder {folder} does not exist: pass migrations= to name it"
            raise ConfigurationError(msg)
        for path in sorted(folder.glob("*.py")):
            found = _script(path)
            if found is not None:
                revisions.add(found[0])
                parents.update(found[1])
    return frozenset(revisions), tuple(sorted(revisions - parents))


def script_heads(where: str | os.PathLike[str] | None = None) -> tuple[str, ...]:
    """The head revision(s) of the migration scripts at `where` (see `script_revisions`)."""
    return script_revisions(where)[1]


def check_revision(
    current: tuple[str, ...], head: tuple[str, ...], known: Iterable[str] = ()
) -> None:
    """`SchemaMismatch` unless the database's revisions `current` are the scripts' `head`.

    `known` (every revision of the scripts) tells a database behind the
    scripts from one that newer code migrated.
    """
    if set(current) == set(head) and head:
        return
    shown_head = ", ".join(head) or "none"
    shown = ", ".join(current)
    unknown = sorted(set(current) - set(known) - set(head))
    if not head:
        msg = "no migration scripts found to compare the database with: pass migrations="
    elif not current:
        msg = (
            "the database has no migration applied (no alembic_version row); "
            f"the migrations' head is {shown_head}: run `repo db upgrade` first"
        )
    elif unknown and known:
        msg = (
            f"the database is at revision {shown}, which these migrations (head {shown_head}) "
            "do not have: newer code migrated it; deploy the code that matches the database"
        )
    else:
        msg = (
            f"the database is at revision {shown} but the migrations' head is {shown_head}: "
            "run `repo db upgrade`, or deploy the code that matches the database"
        )
    raise SchemaMismatch(msg, current=current, head=head)
