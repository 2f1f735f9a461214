"""Migrations on a real PostgreSQL: up and down, offline scripts, drift, locks, the commands.

Every test that migrates gets a fresh scratch database of its own; the drift
tests only read the session's database at head.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import attrs
import pytest

from repo import (
    Column,
    Database,
    DatabaseError,
    LockNotAvailable,
    Repository,
    SchemaMismatch,
    Table,
)
from repo._postgres.dsn import mask_dsn
from repo.catalog import BRANDS, COLORS, SIZES, SKUS, TABLES, Brand, BrandRepository, Product
from repo.migrations import ENV_LOCK_TIMEOUT, describe, drift, engine, metadata, run, upgrade
from tests.conftest import create_database, drop_database

ROOT = Path(__file__).resolve().parents[2]

# The schema as the server's catalog describes it: columns (type, NOT NULL,
# default, identity), constraints, indexes, enum types, sequences and the
# revision. A catalog query rather than pg_dump, whose version must match the
# server's (the embedded server is newer than the Debian client).
SCHEMA_QUERIES = {
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attidentity
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
          AND a.attnum > 0 AND NOT a.attisdropped""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace AND contype IN ('p', 'u', 'f', 'c', 'x')""",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
    "enums": """
        SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)::text
        FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
        WHERE t.typnamespace = 'public'::regnamespace GROUP BY t.typname""",
    "sequences": """
        SELECT sequencename, data_type::text, start_value, increment_by
        FROM pg_sequences WHERE schemaname = 'public'""",
}


async def schema_of(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    """Everything the migrations decide about the database at `dsn`, comparable with ==."""
    conn = await asyncpg.connect(dsn)
    try:
        found = {
            name: sorted(tuple(r) for r in await conn.fetch(sql))
            for name, sql in SCHEMA_QUERIES.items()
        }
        has_version = await conn.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")
        found["revision"] = (
            [tuple(r) for r in await conn.fetch("SELECT version_num FROM alembic_version")]
            if has_version
            else []
        )
    finally:
        await conn.close()
    return found


def schema(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    return asyncio.run(schema_of(dsn))


def tables_of(found: dict[str, list[tuple[Any, ...]]]) -> set[str]:
    return {row[0] for row in found["columns"]}


@pytest.fixture
def fresh_dsn(server_dsn: str) -> Iterator[str]:
    """An empty scratch database of this test's own, dropped afterwards."""
    dsn = create_database(server_dsn, "repo_mig")
    try:
        yield dsn
    finally:
        drop_database(server_dsn, dsn)


def cli_env(dsn: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if dsn is not None:
        env["DATABASE_URL"] = dsn
    env.update(extra)
    return env


def repo_db(*args: str, dsn: str | None, cwd: Path = ROOT, **extra: str) -> Any:
    """Run ``python -m repo db ARGS`` as a user would; the completed process."""
    return subprocess.run(
        [sys.executable, "-m", "repo", "db", *args],
        cwd=cwd,
        env=cli_env(dsn, **extra),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# -- up, down and up again ------------------------------------------------


def test_upgrade_downgrade_upgrade_leaves_the_same_schema(fresh_dsn: str) -> None:
    """head → base → head on a fresh database ends with exactly the schema of the first head."""
    upgrade(fresh_dsn, "head")
    at_head = schema(fresh_dsn)
    assert tables_of(at_head) == {t.name for t in TABLES} | {"alembic_version"}
    assert at_head["revision"] == [("0003",)]
    run("downgrade", fresh_dsn, revision="base")
    at_base = schema(fresh_dsn)
    assert tables_of(at_base) == {"alembic_version"}
    assert at_base["revision"] == []
    upgrade(fresh_dsn, "head")
    assert schema(fresh_dsn) == at_head


def test_downgrading_0002_restores_0001_and_keeps_the_data(fresh_dsn: str) -> None:
    """0002's downgrade undoes exactly its columns and index; rows survive both ways."""
    upgrade(fresh_dsn, "0001")
    at_0001 = schema(fresh_dsn)

    async def seed() -> None:
        conn = await asyncpg.connect(fresh_dsn)
        try:
            await conn.execute(
                "INSERT INTO brand (brand_name) VALUES ('acme');"
                "INSERT INTO product (product_name, brand_id) VALUES ('anvil', 1)"
            )
        finally:
            await conn.close()

    async def product() -> asyncpg.Record | None:
        conn = await asyncpg.connect(fresh_dsn)
        try:
            return await conn.fetchrow("SELECT * FROM product")
        finally:
            await conn.close()

    asyncio.run(seed())
    upgrade(fresh_dsn, "head")
    row = asyncio.run(product())
    assert row is not None
    assert (row["product_name"], row["price"]) == ("anvil", None)
    assert isinstance(row["created_at"], dt.datetime)
    run("downgrade", fresh_dsn, revision="0001")
    assert schema(fresh_dsn) == at_0001
    row = asyncio.run(product())
    assert row is not None
    assert dict(row) == {"product_id": 1, "product_name": "anvil", "brand_id": 1}


# -- offline scripts ------------------------------------------------------


def _apply_script(dsn: str, script: str) -> None:
    psql = shutil.which("psql")
    if psql is not None:
        subprocess.run(
            [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", "-"],
            input=script,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return

    # No psql on this machine: run the whole script as one simple query,
    # which is what psql would send statement by statement.
    async def execute() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(script)
        finally:
            await conn.close()

    asyncio.run(execute())


def test_sql_scripts_applied_by_psql_give_the_same_schema(
    fresh_dsn: str, server_dsn: str, tmp_path: Path
) -> None:
    """`repo db upgrade --sql` (no database touched) applied by psql equals an online upgrade.

    And the offline downgrade script takes it back to no tables.
    """
    never = tmp_path / "embedded-never-started"
    up = repo_db("upgrade", "--sql", dsn=None, REPO_EMBEDDED_DIR=str(never))
    assert up.returncode == 0, up.stderr
    assert not never.exists()
    assert "SET lock_timeout = '5s';" in up.stdout
    assert "CREATE INDEX ix_product_brand_id_product_id" in up.stdout
    _apply_script(fresh_dsn, up.stdout)

    online = create_database(server_dsn, "repo_mig")
    try:
        upgrade(online, "head")
        assert schema(fresh_dsn) == schema(online)
    finally:
        drop_database(server_dsn, online)

    down = repo_db("downgrade", "head:base", "--sql", dsn=None, REPO_EMBEDDED_DIR=str(never))
    assert down.returncode == 0, down.stderr
    _apply_script(fresh_dsn, down.stdout)
    assert tables_of(schema(fresh_dsn)) == {"alembic_version"}


# -- drift between the mappings and the migrated schema -----------------


@attrs.frozen
class ProductPlusColumn:
    product_name: str
    brand_id: int
    product_id: int | None = None
    price: Decimal | None = None
    created_at: dt.datetime | None = None
    discontinued: bool = False


@attrs.frozen
class ProductMaybeNamed:
    product_name: str | None
    brand_id: int
    product_id: int | None = None
    price: Decimal | None = None
    created_at: dt.datetime | None = None


@attrs.frozen
class ProductWithoutPrice:
    product_name: str
    brand_id: int
    product_id: int | None = None
    created_at: dt.datetime | None = None


def _product(entity: type[Any] = Product, **overrides: Any) -> Table[Any]:
    """A temporary product mapping, like the real one but for `overrides`."""
    columns: dict[str, Column] = {"created_at": Column(generated=True, server_default="now()")}
    if "price" in attrs.fields_dict(entity):
        columns["price"] = Column(type="numeric(10,2)")
    columns.update(overrides.pop("columns", {}))
    options: dict[str, Any] = {
        "key": "product_id",
        "columns": columns,
        "foreign_keys": {"brand_id": BRANDS},
        "indexes": [("brand_id", "product_id")],
    }
    options.update(overrides)
    return Table("product", entity, **options)


def test_the_real_mappings_match_the_migrated_schema(migrated_dsn: str) -> None:
    """No drift between repo.catalog's mappings and the database at head."""
    assert drift(migrated_dsn, TABLES) == []


@pytest.mark.parametrize(
    ("planted", "expected"),
    [
        pytest.param(
            lambda: [BRANDS, _product(ProductPlusColumn), COLORS, SIZES, SKUS],
            "column product.discontinued is mapped but missing from the database",
            id="mapped-column-missing-in-database",
        ),
        pytest.param(
            lambda: [BRANDS, _product(ProductWithoutPrice), COLORS, SIZES, SKUS],
            "column product.price is in the database but not mapped",
            id="database-column-missing-in-mapping",
        ),
        pytest.param(
            lambda: [
                BRANDS,
                _product(columns={"price": Column(type="numeric(12,2)")}),
                COLORS,
                SIZES,
                SKUS,
            ],
            "product.price: type is NUMERIC(10, 2) in the database but NUMERIC(12, 2) "
            "in the mapping",
            id="type",
        ),
        pytest.param(
            lambda: [BRANDS, _product(ProductMaybeNamed), COLORS, SIZES, SKUS],
            "product.product_name: nullable is NOT NULL in the database but NULL in the mapping",
            id="nullability",
        ),
        pytest.param(
            lambda: [BRANDS, _product(unique=["product_name"]), COLORS, SIZES, SKUS],
            "constraint uq_product_product_name on product is mapped but missing from the database",
            id="mapped-unique-missing-in-database",
        ),
        pytest.param(
            lambda: [Table("brand", Brand, key="brand_id"), *TABLES[1:]],
            "constraint uq_brand_brand_name on brand is in the database but not mapped",
            id="database-unique-missing-in-mapping",
        ),
    ],
)
def test_drift_catches_each_planted_mismatch(
    migrated_dsn: str, planted: Any, expected: str
) -> None:
    """A temporary mapping that disagrees with the migrated schema is reported, in words."""
    assert [describe(d) for d in drift(migrated_dsn, planted())] == [expected]


def test_repo_db_check_fails_on_a_schema_changed_behind_the_migrations(fresh_dsn: str) -> None:
    """`check` through env.py raises SchemaMismatch describing a hand-made change."""
    upgrade(fresh_dsn, "head")
    run("check", fresh_dsn)

    async def alter() -> None:
        conn = await asyncpg.connect(fresh_dsn)
        try:
            await conn.execute("ALTER TABLE product ALTER COLUMN product_name DROP NOT NULL")
        finally:
            await conn.close()

    asyncio.run(alter())
    with pytest.raises(SchemaMismatch) as got:
        run("check", fresh_dsn)
    assert (
        "product.product_name: nullable is NULL in the database but NOT NULL in the mapping"
        in str(got.value)
    )
    assert "repo db revision --autogenerate" in str(got.value)


class Shade(enum.StrEnum):
    LIGHT = "light"
    DARK = "dark"


@attrs.frozen
class Swatch:
    label: str
    ounces: int
    price: Decimal
    made_at: dt.datetime | None
    code: Any
    doc: dict[str, Any]
    shiny: bool
    shade: Shade
    note: str | None = None
    swatch_id: int | None = None


SWATCH_COLUMNS = {
    "ounces": Column(type="integer"),
    "price": Column(type="numeric(10,2)"),
    "made_at": Column(generated=True, server_default="now()"),
    "code": Column(type="uuid", generated=True, server_default="gen_random_uuid()"),
}


class SwatchRepository(Repository[Swatch]):
    table = Table("swatch", Swatch, key="swatch_id", columns=SWATCH_COLUMNS)


async def test_every_type_round_trips_through_reflection_and_enums_decode(
    fresh_dsn: str,
) -> None:
    """Tables made from the metadata reflect back with no drift; enum labels come back members."""
    eng = engine(fresh_dsn)
    try:
        async with eng.begin() as connection:
            await connection.run_sync(metadata([SwatchRepository.table]).create_all)
    finally:
        await eng.dispose()
    assert await asyncio.to_thread(drift, fresh_dsn, [SwatchRepository.table]) == []
    async with Database.connect(fresh_dsn, min_size=1, max_size=2) as db:
        swatches = db.repository(SwatchRepository)
        stored = await swatches.add(
            Swatch("s", 3, Decimal("1.50"), None, None, {"a": [1]}, True, Shade.DARK)
        )
        assert stored.shade is Shade.DARK
        assert stored.made_at is not None
        assert await swatches.find(shade=Shade.DARK) == [stored]
        assert await swatches.count(shade="light") == 0
        column_types = await swatches.query(
            ColumnType,
            "SELECT column_name AS name, udt_name AS type FROM information_schema.columns "
            "WHERE table_name = 'swatch' ORDER BY ordinal_position",
        )
    assert {c.name: c.type for c in column_types} == {
        "label": "text",
        "ounces": "int4",
        "price": "numeric",
        "made_at": "timestamptz",
        "code": "uuid",
        "doc": "jsonb",
        "shiny": "bool",
        "shade": "shade",
        "note": "text",
        "swatch_id": "int8",
    }


@attrs.frozen
class ColumnType:
    name: str
    type: str


# -- lock_timeout -----------------------------------------------------------


@pytest.mark.parametrize("how", ["option", "environment"])
async def test_a_blocked_migration_fails_within_its_lock_timeout(
    fresh_dsn: str, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lock held elsewhere makes the migration fail in about lock_timeout, changing nothing."""
    await asyncio.to_thread(upgrade, fresh_dsn, "0001")
    options: dict[str, Any] = {}
    if how == "option":
        options["lock_timeout"] = "300ms"
    else:
        monkeypatch.setenv(ENV_LOCK_TIMEOUT, "300ms")
    holder = await asyncpg.connect(fresh_dsn)
    try:
        # A reader in the middle of a transaction: ALTER TABLE must wait for it.
        await holder.execute("BEGIN; SELECT count(*) FROM product")
        started = time.monotonic()
        with pytest.raises(LockNotAvailable) as got:
            await asyncio.to_thread(run, "upgrade", fresh_dsn, **options)
        waited = time.monotonic() - started
    finally:
        await holder.close()
    assert 0.3 <= waited < 5
    assert "lock_timeout=300ms" in str(got.value)
    assert got.value.sqlstate == "55P03"
    assert (await schema_of(fresh_dsn))["revision"] == [("0001",)]
    await asyncio.to_thread(upgrade, fresh_dsn, "head")
    assert (await schema_of(fresh_dsn))["revision"] == [("0003",)]


# -- Database.connect(require_head=True) ----------------------------------


async def test_require_head_refuses_a_database_behind_naming_both_revisions(
    fresh_dsn: str,
) -> None:
    """At 0001 the pool is closed again and SchemaMismatch names 0001 and the head 0003."""
    await asyncio.to_thread(upgrade, fresh_dsn, "0001")
    db = Database.connect(fresh_dsn, require_head=True)
    with pytest.raises(SchemaMismatch) as got:
        await db
    assert (got.value.current, got.value.head) == (("0001",), ("0003",))
    assert "at revision 0001 but the migrations' head is 0003" in str(got.value)
    assert "closed" in repr(db)


async def test_require_head_tells_a_database_migrated_by_newer_code(fresh_dsn: str) -> None:
    """A revision the scripts do not know means newer code ran: deploy that, not upgrade."""
    await asyncio.to_thread(upgrade, fresh_dsn, "head")
    conn = await asyncpg.connect(fresh_dsn)
    try:
        await conn.execute("UPDATE alembic_version SET version_num = '0099'")
    finally:
        await conn.close()
    with pytest.raises(SchemaMismatch, match="0099, which these migrations") as got:
        await Database.connect(fresh_dsn, require_head=True)
    assert (got.value.current, got.value.head) == (("0099",), ("0003",))


async def test_require_head_refuses_a_database_never_migrated(fresh_dsn: str) -> None:
    """With no alembic_version table at all, the error says to run the migrations."""
    with pytest.raises(SchemaMismatch, match="no migration applied") as got:
        async with Database.connect(fresh_dsn, require_head=True):
            pass
    assert got.value.current == ()


async def test_require_head_opens_a_database_at_head(migrated_dsn: str) -> None:
    """At head the pool opens, with the head read from alembic.ini or a versions folder."""
    async with Database.connect(migrated_dsn, require_head=True) as db, db.acquire() as conn:
        assert await conn.fetchval("SELECT 1") == 1
    versions = ROOT / "migrations" / "versions"
    async with Database.connect(migrated_dsn, require_head=True, migrations=versions):
        pass


# -- the commands, as a user runs them ------------------------------------


def test_alembic_check_is_clean_at_head(migrated_dsn: str) -> None:
    """`repo db check` and plain `alembic check` in the project root find nothing to do."""
    ours = repo_db("check", dsn=migrated_dsn)
    assert ours.returncode == 0, ours.stderr
    assert "No new upgrade operations detected." in ours.stdout
    plain = subprocess.run(
        [sys.executable, "-m", "alembic", "check"],
        cwd=ROOT,
        env=cli_env(migrated_dsn),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert plain.returncode == 0, plain.stderr
    assert "No new upgrade operations detected." in plain.stdout


def test_adding_a_column_end_to_end(fresh_dsn: str, tmp_path: Path) -> None:
    """The docs' walk-through: check finds the new mapping, autogenerate writes it, upgrade.

    In a copy of the project that stops at 0001, whose mappings (repo.catalog)
    already have the later revisions' columns: exactly the state after editing an entity.
    """
    project = tmp_path / "project"
    shutil.copytree(ROOT / "migrations", project / "migrations", ignore=_only_0001)
    shutil.copy(ROOT / "alembic.ini", project / "alembic.ini")
    (project / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())

    def step(*args: str) -> Any:
        return repo_db(*args, dsn=fresh_dsn, cwd=project)

    assert step("upgrade").returncode == 0
    behind = step("check")
    assert behind.returncode == 1
    assert "column product.price is mapped but missing from the database" in behind.stderr

    made = step("revision", "--autogenerate", "-m", "product price", "--rev-id", "0002")
    assert made.returncode == 0, made.stderr
    script = project / "migrations" / "versions" / "0002_product_price.py"
    text = script.read_text()
    for expected in (
        'op.add_column("product", sa.Column("price", sa.Numeric(precision=10, scale=2)',
        '"created_at",',
        'op.create_index(\n        "ix_product_brand_id_product_id"',
        'op.drop_column("product", "price")',
    ):
        assert expected in text
    ruff = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--quiet", str(script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ruff.returncode == 0, ruff.stdout

    assert step("upgrade").returncode == 0
    assert step("check").returncode == 0
    current = step("current")
    assert "Rev: 0002 (head)" in current.stdout
    history = step("history")
    assert history.stdout.splitlines() == [
        "0001 -> 0002 (head), product price",
        "<base> -> 0001, The products catalog: brand, product, product_color, product_size, sku.",
    ]
    down = step("downgrade", "0001")
    assert down.returncode == 0, down.stderr
    assert "Rev: 0001" in step("current").stdout


def _only_0001(folder: str, names: list[str]) -> list[str]:
    return [n for n in names if n.startswith(("0002", "0003")) or n == "__pycache__"]


def test_commands_report_errors_in_words(fresh_dsn: str) -> None:
    """A bad revision or lock_timeout exits 1 with a RepoError line, not a traceback."""
    bad_rev = repo_db("upgrade", "nope", dsn=fresh_dsn)
    assert bad_rev.returncode == 1
    assert bad_rev.stderr.splitlines()[-1].startswith("repo: ConfigurationError: alembic upgrade")
    bad_timeout = repo_db("upgrade", "--lock-timeout", "soon", dsn=fresh_dsn)
    assert bad_timeout.returncode == 1
    assert "bad migration lock_timeout 'soon'" in bad_timeout.stderr


# -- a new user's first steps ---------------------------------------------


def test_current_names_the_database_and_says_when_it_is_not_migrated(fresh_dsn: str) -> None:
    """`repo db current` names the (masked) database, and on an empty one says to upgrade."""
    before = repo_db("current", dsn=fresh_dsn)
    assert before.returncode == 0, before.stderr
    assert before.stdout.splitlines() == [
        f"Current revision(s) for {mask_dsn(fresh_dsn)}:",
        "none: the database is not migrated; run `repo db upgrade` to create the schema",
    ]
    up = repo_db("upgrade", dsn=fresh_dsn)
    assert up.returncode == 0, up.stderr
    assert "Running upgrade 0002 -> 0003" in up.stderr
    # Alembic's set-up lines tell a user nothing; the revisions it runs do.
    for noise in ("Context impl", "Will assume"):
        assert noise not in up.stderr + before.stderr
    after = repo_db("current", dsn=fresh_dsn)
    assert after.stdout.splitlines()[0] == f"Current revision(s) for {mask_dsn(fresh_dsn)}:"
    assert "Rev: 0003 (head)" in after.stdout
    assert "not migrated" not in after.stdout


async def test_a_missing_table_says_to_migrate(fresh_dsn: str) -> None:
    """The first look's example on an unmigrated database says what to run, not just 'no brand'."""
    async with Database.connect(fresh_dsn, min_size=1, max_size=1) as db:
        with pytest.raises(DatabaseError, match=r'"brand" does not exist.*repo db upgrade') as got:
            await db.repository(BrandRepository).add(Brand("acme"))
    assert got.value.sqlstate == "42P01"
