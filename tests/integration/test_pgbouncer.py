"""Through a real PgBouncer 1.18 in ``pool_mode = transaction`` with 4 server connections.

The servers are this module's own (tests/servers.py): a throwaway PostgreSQL
and a PgBouncer in front of it, on loopback ports, run as an unprivileged
user and stopped by PID.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from repo import ConfigurationError, Database, InvalidState, NotFound, StatementEvent, like
from repo.catalog import Brand, BrandRepository, CatalogUnitOfWork
from repo.migrations import upgrade
from tests.servers import (
    PgBouncer,
    Postgres,
    missing_binaries,
    start_pgbouncer,
    start_postgres,
    throwaway_dir,
)

ROOT = Path(__file__).resolve().parents[2]
POOL_SIZE = 4
CLIENTS = 20

pytestmark = pytest.mark.skipif(
    missing_binaries(bouncer=True) is not None, reason=missing_binaries(bouncer=True) or ""
)


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Postgres, PgBouncer]]:
    """A throwaway PostgreSQL with a migrated ``test`` database, and PgBouncer before it."""
    with throwaway_dir() as base:
        server = start_postgres(base / "postgres")
        try:
            bouncer = start_pgbouncer(server, base / "pgbouncer", pool_size=POOL_SIZE)
            try:
                asyncio.run(_admin(server.dsn(), "CREATE DATABASE test"))
                upgrade(server.dsn("test"), "head")
                yield server, bouncer
            finally:
                bouncer.stop()
        finally:
            server.stop()


async def _admin(dsn: str, statement: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture
async def bouncer_dsn(servers: tuple[Postgres, PgBouncer], monkeypatch: pytest.MonkeyPatch) -> str:
    """The ``test`` database through PgBouncer, its brands emptied; no switch in the env."""
    server, bouncer = servers
    monkeypatch.delenv("REPO_PGBOUNCER", raising=False)
    await _admin(server.dsn("test"), "TRUNCATE brand RESTART IDENTITY CASCADE")
    return bouncer.dsn("test")


# The whole contract suite again, through PgBouncer: longer than the default
# per-test bound on a loaded machine.
@pytest.mark.timeout(600)
def test_contract_suites_pass_through_pgbouncer(servers: tuple[Postgres, PgBouncer]) -> None:
    """The contract suite and the Postgres-only suites of repositories, units of work,
    streams, bulk loads and products pass through PgBouncer."""
    server, bouncer = servers
    env = dict(
        os.environ,
        DATABASE_URL=server.dsn("postgres"),
        REPO_TEST_PGBOUNCER_PORT=str(bouncer.port),
        REPO_PGBOUNCER="1",
        REPO_OTHER_PATH="1",
    )
    modules = [
        "tests/contract",
        *(
            f"tests/integration/test_{name}.py"
            for name in ("repository", "unit_of_work", "streaming", "bulk", "product")
        ),
    ]
    # The contract suite's memory backend has nothing to do with PgBouncer.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "not memory",
            *modules,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=560,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " failed" not in result.stdout
    assert " passed" in result.stdout


async def _client(dsn: str, client: int, rounds: int) -> tuple[int, list[str]]:
    """One client's mixed reads and writes, each result checked; (operations, problems)."""
    rng = random.Random(client)
    ops = 0
    wrong: list[str] = []
    mine: dict[int, str] = {}
    async with Database.connect(dsn, min_size=1, max_size=2, pgbouncer=True) as db:
        brands = db.repository(BrandRepository)
        for r in range(rounds):
            name = f"c{client:02}-r{r:04}"
            added = await brands.add(Brand(name))
            ops += 1
            assert added.brand_id is not None
            mine[added.brand_id] = name
            got = await brands.get(added.brand_id)
            ops += 1
            if got != added:
                wrong.append(f"get {added.brand_id}: {got} != {added}")
            if rng.random() < 0.3:
                renamed = f"{name}-x"
                async with CatalogUnitOfWork(db) as uow:
                    updated = await uow.brands.update(Brand(renamed, added.brand_id))
                    seen = await uow.brands.named(renamed)
                ops += 2
                mine[added.brand_id] = renamed
                if seen != updated:
                    wrong.append(f"unit read {seen} != {updated}")
            if rng.random() < 0.2:
                victim = rng.choice(sorted(mine))
                await brands.delete(victim)
                ops += 1
                del mine[victim]
            if r % 10 == 9:
                prefix = f"c{client:02}-%"
                async with CatalogUnitOfWork(db, readonly=True) as uow:
                    streamed = {
                        b.brand_id: b.brand_name
                        async for b in uow.brands.stream(brand_name=like(prefix), prefetch=7)
                    }
                    counted = await uow.brands.count(brand_name=like(prefix))
                pooled = {
                    b.brand_id: b.brand_name
                    async for b in brands.stream(brand_name=like(prefix), prefetch=5)
                }
                ops += 3
                if streamed != mine or pooled != mine or counted != len(mine):
                    wrong.append(f"round {r}: stream/count disagree with what was written")
    return ops, wrong


async def test_mixed_load_of_20_clients_on_4_server_connections(bouncer_dsn: str) -> None:
    """20 clients, thousands of mixed operations on 4 server connections, all right."""
    results = await asyncio.gather(*(_client(bouncer_dsn, c, 100) for c in range(CLIENTS)))
    operations = sum(ops for ops, _ in results)
    problems = [p for _, wrong in results for p in wrong]
    assert problems == []
    assert operations > 5000, operations


async def test_without_the_switch_transaction_pooling_is_refused(bouncer_dsn: str) -> None:
    """Without pgbouncer=True, connecting through transaction pooling says how to fix it."""
    with pytest.raises(ConfigurationError, match=r"pgbouncer=True") as caught:
        await Database.connect(bouncer_dsn)
    assert "REPO_PGBOUNCER=1" in str(caught.value)


async def test_the_switch_in_the_dsn_and_the_environment(
    bouncer_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``?pgbouncer=true`` in the DSN, or REPO_PGBOUNCER=1, turns the switch on."""
    async with Database.connect(bouncer_dsn + "?pgbouncer=true") as db:
        assert db.pgbouncer
        assert "pgbouncer" not in db.dsn
        assert await db.repository(BrandRepository).count() == 0
    monkeypatch.setenv("REPO_PGBOUNCER", "1")
    async with Database.connect(bouncer_dsn) as db:
        assert db.pgbouncer


async def test_session_settings_are_refused_with_the_switch(bouncer_dsn: str) -> None:
    """Server settings PgBouncer does not track per client are refused, saying where to set them."""
    with pytest.raises(ConfigurationError, match="ALTER ROLE"):
        await Database.connect(bouncer_dsn, pgbouncer=True, server_settings={"search_path": "x"})


async def test_streams_need_a_transaction_with_the_switch(bouncer_dsn: str) -> None:
    """A DECLARE'd cursor on a raw connection outside a transaction is a clear InvalidState."""
    async with Database.connect(bouncer_dsn, pgbouncer=True) as db, db.acquire() as conn:
        brands = db.repository(BrandRepository, connection=conn)
        with pytest.raises(InvalidState, match="transaction"):
            await brands.stream().to_list()


async def test_no_prepared_statement_is_left_on_the_server(
    bouncer_dsn: str, servers: tuple[Postgres, PgBouncer]
) -> None:
    """After streams, cursors, COPY and units, no server connection holds a statement."""
    async with Database.connect(bouncer_dsn, pgbouncer=True, max_size=4) as db:
        brands = db.repository(BrandRepository)
        await brands.add_many([Brand(f"b{i}") for i in range(100)])
        async with CatalogUnitOfWork(db, readonly=True) as uow:
            assert len(await uow.brands.stream(prefetch=9).to_list()) == 100
            async with uow.brands.cursor() as cursor:
                assert await cursor.forward(5) == 5
                assert ((await cursor.fetchrow()) or Brand("")).brand_name == "b5"
        assert len(await brands.stream(prefetch=9).to_list()) == 100
        counts = await asyncio.gather(*(brands.count() for _ in range(20)))
        assert counts == [100] * 20
        left = await asyncio.gather(
            *(db.pool.fetchval("SELECT count(*) FROM pg_prepared_statements") for _ in range(8))
        )
    assert left == [0] * 8


async def test_coalesced_lookups_through_the_bouncer(bouncer_dsn: str) -> None:
    """Batches of gets, get_many and find_one go through transaction pooling, each caller
    answered, and leave no prepared statement behind."""
    batches: list[int] = []

    def count(event: object) -> None:
        if isinstance(event, StatementEvent) and "ANY" in event.sql:
            batches.append(event.callers)

    async with Database.connect(bouncer_dsn, pgbouncer=True, max_size=4, on_event=count) as db:
        brands = db.repository(BrandRepository)
        added = await brands.add_many([Brand(f"c{i}") for i in range(40)], returning=True)
        ids = [b.brand_id for b in added]
        for _ in range(3):
            got = await asyncio.gather(
                *(brands.get(i) for i in ids),
                brands.get(10_000),
                brands.get_many(ids[:3]),
                brands.find_one(brand_id=ids[5]),
                return_exceptions=True,
            )
            assert got[:40] == added
            assert isinstance(got[40], NotFound)
            assert got[41] == added[:3]
            assert got[42] == added[5]
        left = await asyncio.gather(
            *(db.pool.fetchval("SELECT count(*) FROM pg_prepared_statements") for _ in range(8))
        )
    assert left == [0] * 8
    assert batches == [43, 43, 43]
