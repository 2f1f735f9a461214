"""A primary failover under load, on a real Patroni cluster (etcd, three PostgreSQL 15 nodes).

The cluster is this module's own (tests/cluster.py): loopback ports, an
unprivileged user, synchronous replication, stopped by PID at the end. One
`Database` connects to it with a multi-host DSN (``target_session_attrs=
read-write``) and lists every node as a replica (the health check skips the
one that is primary). While many concurrent units write recorded ids through
`run_in_unit` and pool-level repositories read, the primary fails: (1) its
postmaster is killed with SIGKILL, (2) ``patronictl switchover`` moves it.

Each test asserts that no acknowledged commit is missing on the new primary,
that every failed operation raised a named `RepoError`, that a unit that
failed with anything but `OutcomeUnknown` left nothing behind, and that the
same `Database` resumes writes; it prints the seconds until writes resumed,
the failures by error class and the read availability during the failover.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import itertools
import json
import random
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import attrs
import pytest

import repo.errors
from repo import Backoff, Database, RepoError, Repository, Table, UnitOfWork, run_in_unit
from tests.cluster import Cluster, Node, missing_cluster_binaries, patroni_cluster

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(
        missing_cluster_binaries() is not None, reason=missing_cluster_binaries() or ""
    ),
]

# A unit whose COMMIT was in flight when the connection died: its outcome is
# unknown (issue 13). Looked up by name so that the harness runs without it.
OutcomeUnknown: type[RepoError] | None = getattr(repo.errors, "OutcomeUnknown", None)

WRITERS = 12
READERS = 4
STEADY = 2.0  # seconds of load before the fault and after writes resume
RESUME_WITHIN = 40.0  # seconds: the test fails if writes have not resumed by then


@attrs.frozen
class Entry:
    entry_id: int
    writer: int


ENTRIES = Table("ha_entry", Entry, key="entry_id")


class EntryRepository(Repository[Entry]):
    table = ENTRIES


class EntryUnit(UnitOfWork):
    entries: EntryRepository


async def _execute(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A healthy three-node cluster with a database ``ha`` holding the table ``ha_entry``."""
    with patroni_cluster() as started:
        primary = started.primary()
        asyncio.run(_execute(primary.dsn(), "CREATE DATABASE ha"))
        asyncio.run(
            _execute(
                primary.dsn("ha"),
                "CREATE TABLE ha_entry (entry_id bigint PRIMARY KEY, writer int NOT NULL)",
            )
        )
        asyncio.run(_replicated(started))
        yield started
    assert started.leftovers == [], f"still running after the cluster stopped: {started.leftovers}"


async def _replicated(cluster: Cluster) -> None:
    """Wait until every node has the table (a connection to a standby that has not
    replayed CREATE DATABASE yet fails, and the driver tries no other host then)."""
    deadline = time.monotonic() + 30
    for node in cluster.nodes:
        while True:
            try:
                conn = await asyncpg.connect(node.dsn("ha"))
                try:
                    if await conn.fetchval("SELECT to_regclass('ha_entry') IS NOT NULL"):
                        break
                finally:
                    await conn.close()
            except (OSError, asyncpg.PostgresError):
                pass
            assert time.monotonic() < deadline, f"{node.name} has no ha_entry after 30s"
            await asyncio.sleep(0.1)


_id_blocks = itertools.count(1)


@attrs.define
class Load:
    """Writers and readers on one `Database`, and what each of their operations did."""

    db: Database
    ids: Iterator[int]
    stop: asyncio.Event = attrs.field(factory=asyncio.Event)
    # id -> (monotonic time the unit returned, port of the server that committed it)
    acked: dict[int, tuple[float, int]] = attrs.field(factory=dict)
    # id -> the error class its unit raised
    failed: dict[int, str] = attrs.field(factory=dict)
    # ids whose unit raised OutcomeUnknown
    unknown: set[int] = attrs.field(factory=set)
    write_errors: collections.Counter[str] = attrs.field(factory=collections.Counter)
    # failed units by where they failed: "at commit" or "before commit"
    failed_at: collections.Counter[str] = attrs.field(factory=collections.Counter)
    read_errors: collections.Counter[str] = attrs.field(factory=collections.Counter)
    # (monotonic start, succeeded) of every read
    reads: list[tuple[float, bool]] = attrs.field(factory=list)
    # anything raised that is not a RepoError: must stay empty
    unnamed: list[str] = attrs.field(factory=list)
    retries: collections.Counter[str] = attrs.field(factory=collections.Counter)
    # the first message of each error class, for the report
    samples: dict[str, str] = attrs.field(factory=dict)

    def _on_retry(self, attempt: int, error: RepoError, delay: float) -> None:
        self.retries[type(error).__name__] += 1

    async def writer(self, number: int) -> None:
        while not self.stop.is_set():
            entry_id = next(self.ids)
            # Whether the last attempt's work ran to its end: a failure after
            # that came from the COMMIT (or just before it was sent).
            worked = False

            async def work(uow: EntryUnit, entry: Entry = Entry(entry_id, number)) -> int:
                nonlocal worked
                worked = False
                port = await _write(entry, uow)
                worked = True
                return port

            try:
                port = await run_in_unit(
                    EntryUnit,
                    self.db,
                    work,
                    attempts=10,
                    backoff=Backoff(first=0.05, cap=1.0),
                    on_retry=self._on_retry,
                )
            except RepoError as exc:
                name = type(exc).__name__
                self.write_errors[name] += 1
                self.samples.setdefault(name, str(exc)[:200])
                self.failed[entry_id] = name
                self.failed_at[f"{'at' if worked else 'before'} commit"] += 1
                if OutcomeUnknown is not None and isinstance(exc, OutcomeUnknown):
                    self.unknown.add(entry_id)
                await asyncio.sleep(0.05)
            except Exception as exc:  # recorded: the test fails on it
                self.unnamed.append(f"write: {''.join(traceback.format_exception(exc))}")
                await asyncio.sleep(0.05)
            else:
                self.acked[entry_id] = (time.monotonic(), port)

    async def reader(self) -> None:
        # A repository that never writes: its reads go to a standby when one is healthy.
        entries = self.db.repository(EntryRepository)
        while not self.stop.is_set():
            start = time.monotonic()
            try:
                if random.random() < 0.5:
                    await entries.count()
                else:
                    await entries.exists(entry_id=random.randint(1, 1_000))
            except RepoError as exc:
                self.read_errors[type(exc).__name__] += 1
                self.samples.setdefault(f"read {type(exc).__name__}", str(exc)[:200])
                self.reads.append((start, False))
            except Exception as exc:  # recorded: the test fails on it
                self.unnamed.append(f"read: {''.join(traceback.format_exception(exc))}")
                self.reads.append((start, False))
            else:
                self.reads.append((start, True))
            await asyncio.sleep(0.01)

    def resumed_after(self, since: float, port: int) -> float | None:
        """When the first unit acknowledged by the server on `port` after `since` returned."""
        times = [t for t, p in self.acked.values() if t > since and p == port]
        return min(times) if times else None

    def first_ack_elsewhere(self, since: float, old_port: int) -> tuple[float, int] | None:
        later = [(t, p) for t, p in self.acked.values() if t > since and p != old_port]
        return min(later) if later else None

    def longest_write_gap(self) -> float:
        """The longest time between two consecutive acknowledged commits (seconds)."""
        times = sorted(t for t, _ in self.acked.values())
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)

    def read_availability(self, start: float, end: float) -> tuple[float, int]:
        window = [ok for t, ok in self.reads if start <= t <= end]
        if not window:
            return 1.0, 0
        return sum(window) / len(window), len(window)


async def _stored(node: Node, block: int) -> set[int]:
    """The ids of this test's block (and the write after it) that `node` holds."""
    conn = await asyncpg.connect(node.dsn("ha"))
    try:
        rows = await conn.fetch(
            "SELECT entry_id FROM ha_entry WHERE entry_id >= $1 OR entry_id = $2", block, block - 1
        )
    finally:
        await conn.close()
    return {r[0] for r in rows}


async def _write(entry: Entry, uow: EntryUnit) -> int:
    await uow.entries.add(entry)
    port: int = await uow.entries.scalar("SELECT inet_server_port()")
    return port


@pytest.fixture
async def db(cluster: Cluster) -> AsyncIterator[Database]:
    """A Database on the healthy cluster: multi-host read-write DSN, every node a replica."""
    await asyncio.to_thread(cluster.wait_healthy, timeout=60)
    database = await Database.connect(
        cluster.dsn("ha", target_session_attrs="read-write"),
        min_size=4,
        max_size=WRITERS + 2,
        acquire_timeout=3,
        connect_timeout=2,
        command_timeout=5,
        replicas=[node.dsn("ha") for node in cluster.nodes],
        replica_check_interval=0.2,
        max_replica_lag=5,
        pgbouncer=False,
    )
    try:
        yield database
    finally:
        # Bounded: a connection never given back would hold close() forever.
        state = _pool_state(database)
        try:
            await asyncio.wait_for(database.close(), 20)
        except TimeoutError:
            tasks = "\n".join(
                "".join(traceback.format_stack(t.get_stack()[-1])) if t.get_stack() else repr(t)
                for t in asyncio.all_tasks()
            )
            pytest.fail(f"Database.close() took over 20s; at its start: {state}\n{tasks}")


def _pool_state(db: Database) -> str:
    pool = db.pool
    replicas = db._replicas.members if db._replicas is not None else []
    lent = {r.dsn: r.pool.get_size() - r.pool.get_idle_size() for r in replicas}
    return f"primary pool {pool.get_idle_size()} idle of {pool.get_size()}; replica lent {lent}"


async def _under_load(
    db: Database,
    cluster: Cluster,
    fault: Callable[[Node], Awaitable[Any]],
    *,
    capsys: pytest.CaptureFixture[str],
    record_property: Callable[[str, object], None],
    label: str,
) -> None:
    """Run the load, inject `fault` on the primary, check and report what happened."""
    block = next(_id_blocks) * 10_000_000
    load = Load(db, itertools.count(block))
    old = await asyncio.to_thread(cluster.primary)
    tasks = [asyncio.create_task(load.writer(n)) for n in range(WRITERS)]
    tasks += [asyncio.create_task(load.reader()) for _ in range(READERS)]
    try:
        await asyncio.sleep(STEADY)
        before = len(load.acked)
        assert before > 0, "no unit committed before the fault"
        t_fault = time.monotonic()
        await fault(old)
        deadline = t_fault + RESUME_WITHIN
        while load.first_ack_elsewhere(t_fault, old.port) is None:
            assert time.monotonic() < deadline, (
                f"writes did not resume within {RESUME_WITHIN:g}s: "
                f"{dict(load.write_errors)}; {cluster.describe()}"
            )
            await asyncio.sleep(0.05)
        resumed = load.first_ack_elsewhere(t_fault, old.port)
        assert resumed is not None
        t_resume, new_port = resumed
        await asyncio.sleep(STEADY)
    finally:
        load.stop.set()
        await asyncio.gather(*tasks)
    # Every connection is back in its pool: none was lost track of in the failover. The
    # replicas' health check borrows a primary connection every 0.2 s here (the primary's WAL
    # position), so one may be out for a moment: a lost one never comes back.
    settle = time.monotonic() + 5.0
    while db.pool.get_idle_size() != db.pool.get_size():
        assert time.monotonic() < settle, _pool_state(db)
        await asyncio.sleep(0.02)

    new = await asyncio.to_thread(cluster.primary)
    assert new.name != old.name
    assert new.port == new_port

    # The same Database goes on writing, on the new primary.
    after = Entry(block - 1, -1)
    port = await run_in_unit(EntryUnit, db, functools.partial(_write, after))
    assert port == new.port

    stored = await _stored(new, block)

    missing = sorted(set(load.acked) - stored)
    definite = {i for i in load.failed if i not in load.unknown}
    phantoms = sorted(definite & stored)
    unknown_committed = len(load.unknown & stored)
    availability, window_reads = load.read_availability(t_fault, t_resume)
    overall, _ = load.read_availability(0, time.monotonic())
    figures = {
        "fault": label,
        "old_primary": old.name,
        "new_primary": new.name,
        "writes_resumed_s": round(t_resume - t_fault, 2),
        "longest_write_gap_s": round(load.longest_write_gap(), 2),
        "acknowledged": len(load.acked),
        "failed_writes": dict(load.write_errors),
        "failed_writes_where": dict(load.failed_at),
        "outcome_unknown": len(load.unknown),
        "outcome_unknown_committed": unknown_committed,
        "retried_attempts": dict(load.retries),
        "reads": len(load.reads),
        "failed_reads": dict(load.read_errors),
        "read_availability_during_failover": round(availability, 4),
        "reads_during_failover": window_reads,
        "read_availability_overall": round(overall, 4),
        "missing_acknowledged": len(missing),
        "definitely_failed_but_stored": len(phantoms),
        "error_samples": load.samples,
    }
    record_property("failover", figures)
    with capsys.disabled():
        print(f"\nfailover figures: {json.dumps(figures)}")

    assert load.unnamed == [], "\n".join(load.unnamed[:3])
    assert missing == [], f"{len(missing)} acknowledged commits missing: {missing[:20]}"
    assert after.entry_id in stored
    # Standbys answered reads all along (the health check moves reads off the
    # node being promoted, and a failed replica read falls back to the primary).
    assert window_reads > 0
    assert availability >= 0.8
    # The old primary rejoins as a standby (pg_rewind after a crash) and holds
    # every acknowledged commit: nothing it had diverged on survived.
    await asyncio.to_thread(cluster.wait_healthy, timeout=60)
    assert (await asyncio.to_thread(cluster.primary)).name == new.name
    rejoined = await _stored(old, block)
    deadline = time.monotonic() + 10
    while rejoined != stored and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        rejoined = await _stored(old, block)
    assert rejoined == stored
    with capsys.disabled():
        print(
            f"failover {label}: the old primary rejoined {time.monotonic() - t_fault:.1f}s "
            "after the fault"
        )

    # A unit whose COMMIT was in flight must say its outcome is unknown
    # (OutcomeUnknown, issue 13) rather than fail as if nothing committed.
    # Until that error exists, such a unit is an expected failure, reported
    # as one; once it exists the guard is never taken.
    if phantoms and OutcomeUnknown is None:
        pytest.xfail(
            f"{len(phantoms)} units whose COMMIT was in flight raised ConnectionLost and "
            "committed: repo.errors.OutcomeUnknown (issue 13) is not there yet"
        )
    assert phantoms == [], (
        f"{len(phantoms)} units raised an error other than OutcomeUnknown yet committed: "
        f"{[(i, load.failed[i]) for i in phantoms[:10]]}"
    )


async def test_primary_postmaster_killed_under_load(
    db: Database,
    cluster: Cluster,
    capsys: pytest.CaptureFixture[str],
    record_property: Callable[[str, object], None],
) -> None:
    """kill -9 of the primary's postmaster under load: the sync standby takes over, no
    acknowledged commit is lost, every failure is a named RepoError, the same Database
    resumes writes on the new primary."""

    async def kill(primary: Node) -> None:
        cluster.kill_postmaster(primary)

    await _under_load(
        db, cluster, kill, capsys=capsys, record_property=record_property, label="kill -9"
    )


async def test_planned_switchover_under_load(
    db: Database,
    cluster: Cluster,
    capsys: pytest.CaptureFixture[str],
    record_property: Callable[[str, object], None],
) -> None:
    """patronictl switchover under load: the same guarantees as a crash, and the old
    primary comes back as a standby."""

    async def switchover(primary: Node) -> None:
        candidate = await asyncio.to_thread(cluster.sync_standby)
        await asyncio.to_thread(cluster.switchover, primary, candidate)

    await _under_load(
        db,
        cluster,
        switchover,
        capsys=capsys,
        record_property=record_property,
        label="patronictl switchover",
    )
