"""A throwaway high-availability cluster for tests: etcd and three PostgreSQL nodes under Patroni.

Everything listens on loopback ports only, runs as an unprivileged user when
the tests run as root (PostgreSQL refuses root), keeps its data in a
temporary directory that user owns, and is stopped by PID at the end, also
when the test fails:

    with patroni_cluster() as cluster:          # etcd, then three Patroni nodes
        primary = cluster.primary()              # a Node: name, port, dsn(), postmaster_pid
        cluster.dsn("postgres", target_session_attrs="read-write")   # every node, one DSN
        cluster.kill_postmaster(primary)         # kill -9 of its postmaster
        cluster.switchover(cluster.primary(), cluster.sync_standby())   # patronictl
        cluster.wait_healthy()                   # a leader, a sync standby, all streaming

Synchronous replication is on (Patroni's ``synchronous_mode``), and a primary
whose postmaster dies is failed over at once (``primary_start_timeout: 0``)
rather than restarted in place. The timings (``ttl`` 10s, ``loop_wait`` 1s,
``retry_timeout`` 3s) keep a failover within seconds.

`missing_cluster_binaries()` gives the reason to skip when etcd, Patroni or
PostgreSQL is not installed (``apt-get install patroni etcd-server``).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.servers import UNPRIVILEGED, free_port, throwaway_dir

__all__ = [
    "Cluster",
    "Node",
    "missing_cluster_binaries",
    "patroni_cluster",
]

SCOPE = "repo-ha"
NODES = ("node1", "node2", "node3")
# Every tool Patroni runs from the PostgreSQL bin directory.
PG_TOOLS = ("postgres", "initdb", "pg_ctl", "pg_basebackup", "pg_rewind", "pg_controldata")
# The failover timings (seconds): Patroni requires ttl >= loop_wait + 2 * retry_timeout.
TTL = 10
LOOP_WAIT = 1
RETRY_TIMEOUT = 3


def _binary(name: str) -> Path | None:
    found = shutil.which(name) or next(
        (p for p in (f"/usr/bin/{name}", f"/usr/sbin/{name}") if Path(p).exists()), None
    )
    return Path(found) if found else None


def pg15_bindir() -> Path | None:
    """Debian's PostgreSQL 15 server binaries, with everything Patroni runs."""
    bindir = Path("/usr/lib/postgresql/15/bin")
    return bindir if all((bindir / tool).exists() for tool in PG_TOOLS) else None


def missing_cluster_binaries() -> str | None:
    """Why the cluster cannot run here (a skip reason), or None when it can."""
    missing = [
        package
        for package, present in (
            ("etcd-server", _binary("etcd")),
            ("patroni", _binary("patroni") and _binary("patronictl")),
            ("postgresql-15", pg15_bindir()),
        )
        if not present
    ]
    if missing:
        return (
            f"the Patroni cluster needs Debian's {', '.join(missing)}: "
            f"apt-get install -y {' '.join(missing)} (.ci/run does)"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(UNPRIVILEGED)
        except KeyError:
            return f"running as root with no user {UNPRIVILEGED!r} to run the servers as"
    return None


def _owner() -> tuple[int, int] | None:
    """The uid and gid the servers run as (None: this process's own)."""
    if os.geteuid() != 0:
        return None
    user = pwd.getpwnam(UNPRIVILEGED)
    return user.pw_uid, user.pw_gid


def _own(path: Path) -> Path:
    """`path` (a directory) created and owned by the user the servers run as."""
    path.mkdir(parents=True, exist_ok=True)
    owner = _owner()
    if owner is not None:
        os.chown(path, *owner)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def _stop_pids(pids: list[int], sig: signal.Signals, timeout: float) -> None:
    """Signal every one of `pids`, wait for them to exit, then SIGKILL the rest."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    while any(_alive(p) for p in pids) and time.monotonic() < deadline + 5:
        time.sleep(0.05)


def _spawn(cmd: list[str], log: Path, home: Path) -> subprocess.Popen[bytes]:
    """Start `cmd` as the servers' user, logging to `log`.

    Through ``setpriv --pdeathsig TERM`` (util-linux) when there is one: a
    test run killed outright, with no finally block run, must not leave etcd
    or Patroni behind (Patroni stops its PostgreSQL on SIGTERM).
    """
    setpriv = _binary("setpriv")
    if setpriv is not None:
        cmd = [str(setpriv), "--pdeathsig", "TERM", "--", *cmd]
    owner = _owner()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        # Patroni's own Python (Debian's) must not see the test run's virtualenv.
        "PYTHONNOUSERSITE": "1",
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=home,
            user=owner[0] if owner else None,
            group=owner[1] if owner else None,
            extra_groups=[] if owner else None,
            start_new_session=True,
        )


def _get_json(url: str, timeout: float = 1.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


class Node:
    """One PostgreSQL node under Patroni: its ports, data and processes."""

    def __init__(self, name: str, base: Path) -> None:
        self.name = name
        self.base = base
        self.port = free_port()
        self.api_port = free_port()
        self.datadir = base / "data"
        self.config = base / "patroni.yml"
        self.log = base / "patroni.log"
        self.process: subprocess.Popen[bytes] | None = None

    def dsn(self, database: str = "postgres") -> str:
        """A DSN for `database` on this node alone, as the superuser ``postgres``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def postmaster_pid(self) -> int | None:
        """The postmaster's PID while it runs (from its ``postmaster.pid``)."""
        try:
            first = (self.datadir / "postmaster.pid").read_text().split("\n", 1)[0]
        except (FileNotFoundError, PermissionError, NotADirectoryError):
            return None
        pid = int(first) if first.strip().isdigit() else None
        return pid if pid is not None and _alive(pid) else None

    def api(self, path: str) -> Any:
        """GET `path` from this node's Patroni REST API, as JSON."""
        return _get_json(f"http://127.0.0.1:{self.api_port}{path}")

    def __repr__(self) -> str:
        return f"<Node {self.name} 127.0.0.1:{self.port} postmaster={self.postmaster_pid}>"


class Cluster:
    """etcd and three Patroni nodes in `base` (see the module docstring)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.etcd_port = free_port()
        self.etcd_peer_port = free_port()
        self.etcd: subprocess.Popen[bytes] | None = None
        self.nodes = [Node(name, base / name) for name in NODES]
        self.bindir = pg15_bindir() or Path("/usr/lib/postgresql/15/bin")
        # What `stop` could not stop (PIDs): empty once it has run.
        self.leftovers: list[int] = []

    # -- life ------------------------------------------------------------

    def start(self, *, timeout: float = 60) -> None:
        """Start etcd and the three nodes; return once a primary and its sync standby serve."""
        self._start_etcd()
        for node in self.nodes:
            _own(node.base)
            self._write_config(node)
            node.process = _spawn([str(_binary("patroni")), str(node.config)], node.log, node.base)
        self.wait_healthy(timeout=timeout)

    def _start_etcd(self) -> None:
        data = _own(self.base / "etcd")
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        client = f"http://127.0.0.1:{self.etcd_port}"
        self.etcd = _spawn(
            [
                str(_binary("etcd")),
                "--name=etcd",
                f"--data-dir={data / 'data'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=etcd={peer}",
                "--initial-cluster-state=new",
                "--log-level=warn",
            ],
            self.base / "etcd.log",
            data,
        )
        _wait(lambda: _get_json(f"{client}/health").get("health") == "true", 20, "etcd healthy")

    def _write_config(self, node: Node) -> None:
        # JSON is YAML: no YAML library needed on this side.
        config = {
            "scope": SCOPE,
            "namespace": "/repo-test/",
            "name": node.name,
            "restapi": {
                "listen": f"127.0.0.1:{node.api_port}",
                "connect_address": f"127.0.0.1:{node.api_port}",
            },
            "etcd3": {"hosts": [f"127.0.0.1:{self.etcd_port}"]},
            "bootstrap": {
                "dcs": {
                    "ttl": TTL,
                    "loop_wait": LOOP_WAIT,
                    "retry_timeout": RETRY_TIMEOUT,
                    "maximum_lag_on_failover": 16 * 1024 * 1024,
                    "synchronous_mode": True,
                    # A primary whose postgres died fails over at once instead
                    # of being restarted in place (default: 300s of trying).
                    "primary_start_timeout": 0,
                    "postgresql": {
                        "use_pg_rewind": True,
                        "use_slots": True,
                        "parameters": {
                            "wal_level": "replica",
                            "hot_standby": "on",
                            "wal_log_hints": "on",
                            "max_wal_senders": 10,
                            "max_replication_slots": 10,
                            "wal_keep_size": "128MB",
                            "max_connections": 100,
                            # Throwaway data; full_page_writes stays on for pg_rewind.
                            "fsync": "off",
                        },
                    },
                },
                "initdb": [{"encoding": "UTF8"}, {"locale": "C"}, "no-sync"],
            },
            "postgresql": {
                "listen": f"127.0.0.1:{node.port}",
                "connect_address": f"127.0.0.1:{node.port}",
                "data_dir": str(node.datadir),
                "bin_dir": str(self.bindir),
                "pgpass": str(node.base / "pgpass"),
                "authentication": {
                    "superuser": {"username": "postgres"},
                    "replication": {"username": "postgres"},
                    "rewind": {"username": "postgres"},
                },
                "parameters": {
                    "unix_socket_directories": str(node.base),
                    "shared_buffers": "32MB",
                },
                "pg_hba": [
                    "local all all trust",
                    "host all all 127.0.0.1/32 trust",
                    "host replication all 127.0.0.1/32 trust",
                ],
                "basebackup": [{"checkpoint": "fast"}],
                "remove_data_directory_on_rewind_failure": True,
                "remove_data_directory_on_diverged_timelines": True,
            },
            "watchdog": {"mode": "off"},
        }
        node.config.write_text(json.dumps(config, indent=2))
        owner = _owner()
        if owner is not None:
            os.chown(node.config, *owner)

    def stop(self) -> None:
        """Stop everything by PID: Patroni (which stops its PostgreSQL), any postmaster
        left behind, then etcd; SIGKILL whatever does not stop in time."""
        patronis = [n.process.pid for n in self.nodes if n.process is not None]
        _stop_pids(patronis, signal.SIGTERM, 20)
        for node in self.nodes:
            if node.process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    node.process.wait(timeout=1)
        postmasters = [p for p in (n.postmaster_pid for n in self.nodes) if p is not None]
        # SIGQUIT: immediate shutdown, the postmaster takes its children with it.
        _stop_pids(postmasters, signal.SIGQUIT, 10)
        if self.etcd is not None:
            _stop_pids([self.etcd.pid], signal.SIGTERM, 10)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.etcd.wait(timeout=1)
        self.leftovers = self.processes()

    def processes(self) -> list[int]:
        """The PIDs of every process this cluster started that still runs."""
        pids = [n.process.pid for n in self.nodes if n.process is not None]
        pids += [p for p in (n.postmaster_pid for n in self.nodes) if p is not None]
        if self.etcd is not None:
            pids.append(self.etcd.pid)
        return [p for p in pids if _alive(p)]

    # -- state -------------------------------------------------------------

    def members(self) -> list[dict[str, Any]]:
        """Patroni's view of the members (name, role, state, lag...), from any node that answers."""
        for node in self.nodes:
            try:
                members: list[dict[str, Any]] = node.api("/cluster")["members"]
            except (OSError, ValueError, KeyError):
                continue
            return members
        return []

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def _with_role(self, *roles: str) -> Node | None:
        for member in self.members():
            if member.get("role") in roles and member.get("state") in ("running", "streaming"):
                return self.node(member["name"])
        return None

    def primary(self) -> Node:
        """The node that is primary now (Patroni's leader, running)."""
        node = self._with_role("leader", "master", "primary")
        if node is None:
            msg = f"no running leader: {self.describe()}"
            raise RuntimeError(msg)
        return node

    def sync_standby(self) -> Node:
        """The node that is the synchronous standby now."""
        node = self._with_role("sync_standby")
        if node is None:
            msg = f"no synchronous standby: {self.describe()}"
            raise RuntimeError(msg)
        return node

    def healthy(self) -> bool:
        """A running leader, a sync standby, and every node running and caught up."""
        members = self.members()
        roles = sorted(str(m.get("role")) for m in members)
        running = all(m.get("state") in ("running", "streaming") for m in members)
        # A standby's lag is in bytes of WAL ("unknown" while it does not stream).
        lag_ok = all(
            isinstance(m.get("lag"), int) and m["lag"] <= 1024 * 1024
            for m in members
            if m.get("role") not in ("leader", "master", "primary")
        )
        return (
            len(members) == len(self.nodes)
            and running
            and lag_ok
            and roles.count("sync_standby") == 1
            and any(r in ("leader", "master", "primary") for r in roles)
        )

    def wait_healthy(self, *, timeout: float = 60) -> None:
        """Wait until `healthy()`; RuntimeError with the members' state if not in time."""
        _wait(self.healthy, timeout, "a healthy cluster", self.describe)

    def describe(self) -> str:
        members = self.members()
        return (
            ", ".join(
                f"{m.get('name')}={m.get('role')}/{m.get('state')}/lag {m.get('lag')}"
                for m in members
            )
            or "no member answers"
        )

    def dsn(self, database: str = "postgres", **query: str) -> str:
        """One DSN naming every node (``h1:p1,h2:p2,h3:p3``), with `query` parameters."""
        hosts = ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)
        params = "&".join(f"{k}={v}" for k, v in query.items())
        return f"postgresql://postgres@{hosts}/{database}" + (f"?{params}" if params else "")

    # -- faults ------------------------------------------------------------

    def kill_postmaster(self, node: Node) -> int:
        """``kill -9`` `node`'s postmaster; its PID."""
        pid = node.postmaster_pid
        if pid is None:
            msg = f"{node.name} has no postmaster running"
            raise RuntimeError(msg)
        os.kill(pid, signal.SIGKILL)
        return pid

    def switchover(self, leader: Node, candidate: Node) -> str:
        """``patronictl switchover`` from `leader` to `candidate`, now; its output."""
        owner = _owner()
        result = subprocess.run(
            [
                str(_binary("patronictl")),
                "-c",
                str(leader.config),
                "switchover",
                "--leader",
                leader.name,
                "--candidate",
                candidate.name,
                "--force",
                SCOPE,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(leader.base)},
            user=owner[0] if owner else None,
            group=owner[1] if owner else None,
            extra_groups=[] if owner else None,
        )
        if result.returncode:
            output = result.stdout + result.stderr
            msg = f"patronictl switchover failed ({result.returncode}): {output}"
            raise RuntimeError(msg)
        return result.stdout

    def logs(self, lines: int = 30) -> str:
        """The last `lines` of every node's Patroni log (for a failure message)."""
        out = []
        for node in self.nodes:
            with contextlib.suppress(OSError):
                tail = node.log.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {node.name} ---\n" + "\n".join(tail))
        return "\n".join(out)


def _wait(
    check: Callable[[], bool], timeout: float, what: str, state: Callable[[], str] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, urllib.error.URLError):
            if check():
                return
        time.sleep(0.1)
    msg = f"no {what} within {timeout:g}s" + (f": {state()}" if state else "")
    raise RuntimeError(msg)


@contextlib.contextmanager
def patroni_cluster(*, timeout: float = 60) -> Iterator[Cluster]:
    """A started `Cluster` in a throwaway directory; stopped by PID and removed at the end."""
    with throwaway_dir("repo-cluster-") as base:
        cluster = Cluster(base)
        try:
            cluster.start(timeout=timeout)
            yield cluster
        except BaseException as exc:
            exc.add_note(cluster.logs())
            raise
        finally:
            cluster.stop()
