"""Multi-host DSNs on a real server, and the password never shown, whatever it holds."""

from __future__ import annotations

import logging
import traceback
import urllib.parse

import pytest

from repo import Backoff, ConfigurationError, ConnectionLost, Database, run_in_unit
from repo.catalog import Brand, BrandRepository, CatalogUnitOfWork
from tests.servers import free_port

# Every character a URI reserves; percent-encoded in the DSN, as it must be.
PASSWORD = "Zq7/pa?ss#wo@rd:50%&x=1"
QUOTED = urllib.parse.quote(PASSWORD, safe="")


def _hidden(text: str) -> bool:
    return PASSWORD not in text and QUOTED not in text and "Zq7" not in text


def _multi_host(dsn: str, *ports: int, query: str = "") -> str:
    """`dsn` (one host) as a multi-host DSN: 127.0.0.1 on each of `ports`, then its own host."""
    parts = urllib.parse.urlsplit(dsn)
    user = parts.username or "postgres"
    hosts = ",".join([*(f"127.0.0.1:{p}" for p in ports), parts.netloc.rpartition("@")[2]])
    joined = "&".join(q for q in (parts.query, query) if q)
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:{QUOTED}@{hosts}", query=joined))


async def test_multi_host_dsn_skips_a_host_that_is_down(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With the first host down, the pool connects to the next one and works;
    repr, logs and the DSN shown keep the password hidden."""
    caplog.set_level(logging.DEBUG)
    down = free_port()
    multi = _multi_host(dsn, down, query="target_session_attrs=read-write")
    real_port = urllib.parse.urlsplit(dsn).port or 5432
    async with Database.connect(multi, min_size=2, max_size=4, connect_timeout=5) as db:
        async with CatalogUnitOfWork(db) as uow:
            added = await uow.brands.add(Brand("multi-host"))
            port = await uow.connection.fetchval("SELECT inet_server_port()")
        assert port == real_port
        assert await db.repository(BrandRepository).get(added.brand_id) == added
        assert f"127.0.0.1:{down}," in db.dsn
        assert _hidden(repr(db))
        assert _hidden(db.dsn)
    assert caplog.records
    assert all(_hidden(r.getMessage()) for r in caplog.records)


async def test_replicas_take_multi_host_dsns(dsn: str) -> None:
    """A replica given as a multi-host DSN is reached past a host that is down; a server
    that is no standby is skipped with the reason, and reads go to the primary."""
    replica = _multi_host(dsn, free_port(), query="target_session_attrs=prefer-standby")
    async with Database.connect(
        dsn, replicas=[replica], replica_check_interval=0.2, connect_timeout=5
    ) as db:
        assert db._replicas is not None
        (member,) = db._replicas.members
        # It answered (through the second host): it is just not in recovery.
        assert "not in recovery" in member.reason
        assert _hidden(repr(member))
        assert await db.repository(BrandRepository).count() == 0


async def test_every_host_down_is_connection_lost_without_the_password() -> None:
    """No host answering is ConnectionLost naming the hosts; message and traceback hide
    the password."""
    first, second = free_port(), free_port()
    multi = f"postgresql://postgres:{QUOTED}@127.0.0.1:{first},127.0.0.1:{second}/db"
    with pytest.raises(ConnectionLost) as caught:
        await Database.connect(multi, connect_timeout=2)
    text = "".join(traceback.format_exception(caught.value))
    assert f"127.0.0.1:{first},127.0.0.1:{second}" in str(caught.value)
    assert _hidden(text)


async def test_password_in_the_query_is_hidden(dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    """A password given as ``?password=`` (percent-encoded) connects and is never shown."""
    caplog.set_level(logging.DEBUG)
    parts = urllib.parse.urlsplit(dsn)
    joined = "&".join(q for q in (parts.query, f"password={QUOTED}") if q)
    secret = urllib.parse.urlunsplit(parts._replace(query=joined))
    async with Database.connect(secret) as db:
        assert await db.repository(BrandRepository).count() == 0
        assert _hidden(repr(db))
    assert all(_hidden(r.getMessage()) for r in caplog.records)


def test_unescaped_password_is_refused_without_showing_it(dsn: str) -> None:
    """The same password left unescaped is refused before connecting, saying how to encode it."""
    parts = urllib.parse.urlsplit(dsn)
    raw = f"postgresql://postgres:{PASSWORD}@{parts.netloc.rpartition('@')[2]}{parts.path}"
    with pytest.raises(ConfigurationError, match="%2F") as caught:
        Database.connect(raw)
    assert _hidden("".join(traceback.format_exception(caught.value)))


async def test_no_host_matching_target_session_attrs_is_connection_lost(dsn: str) -> None:
    """When no host of the DSN matches target_session_attrs (during a failover, every node
    a standby for a moment), opening and acquiring raise ConnectionLost, which run_in_unit
    retries, never the driver's bare error."""
    parts = urllib.parse.urlsplit(dsn)
    # The only server is a primary: no host is a standby.
    joined = "&".join(q for q in (parts.query, "target_session_attrs=standby") if q)
    standby_only = urllib.parse.urlunsplit(parts._replace(query=joined))
    with pytest.raises(ConnectionLost, match="target attribute"):
        await Database.connect(standby_only, min_size=1, pgbouncer=False)
    async with Database.connect(standby_only, min_size=0, pgbouncer=False) as db:
        with pytest.raises(ConnectionLost, match="target attribute"):
            await db.repository(BrandRepository).count()
        retried: list[str] = []

        async def work(uow: CatalogUnitOfWork) -> int:
            return await uow.brands.count()

        with pytest.raises(ConnectionLost):
            await run_in_unit(
                CatalogUnitOfWork,
                db,
                work,
                attempts=3,
                backoff=Backoff(first=0.001, cap=0.001),
                on_retry=lambda attempt, error, delay: retried.append(type(error).__name__),
            )
        assert retried == ["ConnectionLost", "ConnectionLost"]
