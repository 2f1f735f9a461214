"""OpenTelemetry: asyncpg's instrumentation sees every statement repo sends, unchanged."""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import pytest

pytest.importorskip("opentelemetry.instrumentation.asyncpg")

from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

from repo import Database, UniqueViolation
from repo.catalog import Brand, BrandRepository, CatalogUnitOfWork

SECRET = "hunter2-secret-brand"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """asyncpg instrumented for this test only, its spans kept in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]
    instrumentor.instrument(tracer_provider=provider)
    try:
        yield exporter
    finally:
        instrumentor.uninstrument()
        provider.shutdown()


def resetting(span: ReadableSpan) -> bool:
    """Whether `span` is the pool resetting a connection it took back (asyncpg's, not repo's)."""
    sql = str((span.attributes or {}).get("db.statement", ""))
    return any(word in sql for word in ("RESET ALL", "DISCARD ALL", "UNLISTEN"))


def statements(spans: tuple[ReadableSpan, ...]) -> list[str]:
    return [str((s.attributes or {}).get("db.statement", "")) for s in spans]


async def test_spans_for_repository_calls_and_units(
    dsn: str, exporter: InMemorySpanExporter
) -> None:
    """get/add/find and a unit of work with a savepoint each leave a span with their SQL."""
    async with Database.connect(dsn) as db:
        brands = db.repository(BrandRepository)
        exporter.clear()
        added = await brands.add(Brand(SECRET))
        assert await brands.get(added.brand_id) == added
        assert await brands.find(brand_name=SECRET) == [added]
        async with CatalogUnitOfWork(db) as uow:
            await uow.brands.add(Brand("acme"))
            with pytest.raises(UniqueViolation):
                async with uow.savepoint():
                    await uow.brands.add(Brand("acme"))
    spans = tuple(s for s in exporter.get_finished_spans() if not resetting(s))
    sql = statements(spans)
    assert [s.name for s in spans] == [
        "INSERT",
        "SELECT",
        "SELECT",
        "BEGIN",
        "INSERT",
        "SAVEPOINT",
        "INSERT",
        "ROLLBACK",
        "COMMIT",
    ]
    assert sql[0].startswith('INSERT INTO "brand"')
    assert sql[1].startswith("SELECT ")
    assert '"brand_id" = $1' in sql[1]
    assert '"brand_name" = $1' in sql[2]
    assert sql[5].startswith("SAVEPOINT ")
    assert sql[7].startswith("ROLLBACK TO SAVEPOINT ")
    assert [s.status.is_ok for s in spans].count(False) == 1
    everything = repr([dict(s.attributes or {}) for s in spans])
    assert SECRET not in everything
    assert all("db.statement.parameters" not in (s.attributes or {}) for s in spans)


def test_uninstrumented_outside_the_fixture() -> None:
    """Outside the fixture asyncpg's methods are its own again: other tests see no spans."""
    for name in ("execute", "fetch", "fetchrow", "fetchval"):
        assert not hasattr(getattr(asyncpg.Connection, name), "__wrapped__")
