"""Alembic's command API, with the DSN resolved like `Database.connect()`.

Imported only by the ``repo db`` commands, the demo and tests: never by the
runtime modules, which must not import SQLAlchemy.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from ._dsn import resolve_dsn
from .errors import ConfigurationError

__all__ = ["alembic_config", "find_ini", "run", "upgrade"]


def find_ini(start: Path | None = None) -> Path:
    """The project's ``alembic.ini``: in the working directory or a parent, else the package's."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents, Path(__file__).resolve().parent.parent):
        candidate = folder / "alembic.ini"
        if candidate.exists():
            return candidate
    msg = "no alembic.ini found: run from the project directory"
    raise ConfigurationError(msg)


def alembic_config(dsn: str | None = None, *, ini: Path | None = None) -> Config:
    """An Alembic `Config` for the project, bound to the resolved DSN."""
    cfg = Config(str(ini or find_ini()))
    cfg.attributes["dsn"] = resolve_dsn(dsn)
    return cfg


def upgrade(dsn: str | None = None, revision: str = "head") -> None:
    """Migrate the database at `dsn` (resolved) to `revision`. Blocking."""
    command.upgrade(alembic_config(dsn), revision)


def run(name: str, dsn: str | None = None, **options: object) -> None:
    """Run the Alembic command `name` (upgrade, downgrade, current, history, check, revision).

    Offline (``sql=True``) and history need no database; the others resolve it.
    """
    offline = bool(options.get("sql"))
    needs_db = (
        not offline
        and (name != "history")
        and not (name == "revision" and not options.get("autogenerate"))
    )
    cfg = alembic_config(dsn) if needs_db else Config(str(find_ini()))
    if name == "upgrade":
        command.upgrade(cfg, str(options.get("revision", "head")), sql=offline)
    elif name == "downgrade":
        command.downgrade(cfg, str(options["revision"]), sql=offline)
    elif name == "current":
        command.current(cfg, verbose=True)
    elif name == "history":
        command.history(cfg)
    elif name == "check":
        command.check(cfg)
    elif name == "revision":
        command.revision(
            cfg, message=str(options["message"]), autogenerate=bool(options.get("autogenerate"))
        )
    else:
        msg = f"unknown migration command {name!r}"
        raise ConfigurationError(msg)
