"""A user's own project, as a new user starts it: ``repo db init`` to head and back.

Each test writes a scratch project (a package of mappings of its own, not the
catalog) in a temporary directory and runs the ``repo`` command there, in a
subprocess, against a fresh database.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from repo import ConfigurationError, Database
from repo.migrations import init_project
from repo.migrations._format import main as format_revision
from tests.conftest import create_database, drop_database

# A lending library's schema: every column type the mappings infer, an enum,
# nullable and not.
TABLES_MODULE = """
from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any

import attrs

from repo import Column, Table


class MemberTier(enum.StrEnum):
    BASIC = "basic"
    GOLD = "gold"


@attrs.frozen
class Member:
    name: str
    tier: MemberTier
    joined: dt.datetime
    born: dt.date | None = None
    card: uuid.UUID | None = None
    fee: Decimal | None = None
    score: float | None = None
    active: bool = True
    photo: bytes | None = None
    prefs: dict[str, Any] | None = None
    opens_at: dt.time | None = None
    grace: dt.timedelta | None = None
    visits: int = 0
    shelf: int = 0
    member_id: int | None = None


MEMBERS = Table(
    "member",
    Member,
    key="member_id",
    unique=["card"],
    columns={
        "fee": Column(type="numeric(12,2)"),
        "visits": Column(type="integer"),
        "shelf": Column(type="smallint"),
    },
)

TABLES = (MEMBERS,)
"""


@pytest.fixture
def fresh_dsn(server_dsn: str) -> Iterator[str]:
    dsn = create_database(server_dsn, "repo_project")
    try:
        yield dsn
    finally:
        drop_database(server_dsn, dsn)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory holding the package ``lending`` with its mappings."""
    root = tmp_path / "lending_app"
    (root / "lending").mkdir(parents=True)
    (root / "lending" / "__init__.py").write_text("")
    (root / "lending" / "tables.py").write_text(TABLES_MODULE)
    return root


def repo_cmd(*args: str, cwd: Path, dsn: str | None) -> subprocess.CompletedProcess[str]:
    """``python -m repo ARGS`` in `cwd`, as a user runs it."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if dsn is not None:
        env["DATABASE_URL"] = dsn
    return subprocess.run(
        [sys.executable, "-m", "repo", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def _fetch(dsn: str, sql: str) -> list[Any]:
    conn = await asyncpg.connect(dsn)
    try:
        return [tuple(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


def fetch(dsn: str, sql: str) -> list[Any]:
    return asyncio.run(_fetch(dsn, sql))


def user_tables(dsn: str) -> set[str]:
    rows = fetch(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {r[0] for r in rows}


def enum_types(dsn: str) -> set[str]:
    return {r[0] for r in fetch(dsn, "SELECT typname FROM pg_type WHERE typtype = 'e'")}


def test_init_to_head_to_base_to_head(project: Path, fresh_dsn: str) -> None:
    """init → revision --autogenerate → upgrade → check → downgrade base → upgrade works.

    The downgrade drops the enum type its upgrade created, so the second
    upgrade does not fail with "type member_tier already exists".
    """
    made = repo_cmd("db", "init", "--tables", "lending.tables:TABLES", cwd=project, dsn=None)
    assert made.returncode == 0, made.stderr
    env_py = (project / "migrations" / "env.py").read_text()
    imports = [line for line in env_py.splitlines() if line.startswith(("import", "from"))]
    assert imports == ["from alembic import context", "from repo.migrations import run_migrations"]
    assert (project / "migrations" / "script.py.mako").is_file()
    assert (project / "migrations" / "versions").is_dir()

    def step(*args: str) -> subprocess.CompletedProcess[str]:
        done = repo_cmd("db", *args, cwd=project, dsn=fresh_dsn)
        assert done.returncode == 0, done.stderr
        return done

    step("revision", "--autogenerate", "-m", "first tables", "--rev-id", "0001")
    script = (project / "migrations" / "versions" / "0001_first_tables.py").read_text()
    assert 'op.create_table(\n        "member"' in script
    assert 'DROP TYPE IF EXISTS "member_tier"' in script
    step("upgrade")
    assert user_tables(fresh_dsn) == {"member", "alembic_version"}
    assert "member_tier" in enum_types(fresh_dsn)
    step("check")
    step("downgrade", "base")
    assert user_tables(fresh_dsn) == {"alembic_version"}
    assert "member_tier" not in enum_types(fresh_dsn)
    step("upgrade")
    step("check")
    assert fetch(fresh_dsn, "SELECT version_num FROM alembic_version") == [("0001",)]


# Rules a schema needs beyond keys: CHECK constraints (with the filters' helpers,
# and as SQL), a partial unique index, an index, and a composite key.
RULES_MODULE = """
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import attrs

from repo import Check, Column, Index, Table, ge, in_, ne
from lending.tables import MEMBERS

SINCE = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)

@attrs.frozen
class Loan:
    member_id: int
    lent: dt.datetime
    copy_no: int
    kind: str = "book"
    returned: dt.datetime | None = None
    fee: Decimal = Decimal("0")


LOANS = Table(
    "loan",
    Loan,
    key=("member_id", "lent"),
    columns={"fee": Column(type="numeric(8,2)")},
    foreign_keys={"member_id": MEMBERS},
    checks=[
        Check("fee_not_negative", fee=ge(0)),
        Check("kind_known", kind=in_(["book", "dvd", "it's"]), copy_no=ne(0)),
        Check("copy_no_positive", sql="copy_no > 0", test=lambda loan: loan.copy_no > 0),
    ],
    indexes=[
        Index("copy_no", unique=True, where={"returned": None}),
        Index("member_id", "returned"),
    ],
)

TABLES = (MEMBERS, LOANS)
"""


def rules_project(project: Path, fresh_dsn: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    """The project with RULES_MODULE's mappings, initialised; a step runs ``repo db ARGS``."""
    (project / "lending" / "rules.py").write_text(RULES_MODULE)
    made = repo_cmd("db", "init", "--tables", "lending.rules:TABLES", cwd=project, dsn=None)
    assert made.returncode == 0, made.stderr

    def step(*args: str) -> subprocess.CompletedProcess[str]:
        done = repo_cmd("db", *args, cwd=project, dsn=fresh_dsn)
        assert done.returncode == 0, done.stderr
        return done

    return step


@pytest.mark.timeout(300)
def test_checks_partial_indexes_and_composite_keys_from_init_to_head_and_back(
    project: Path, fresh_dsn: str
) -> None:
    """A check, a partial unique index and a composite key: autogenerated, upgraded, no drift.

    The check constraints are named ck_<table>_<name> once (not twice), the
    partial index keeps its WHERE, and head → base → head works.
    """
    step = rules_project(project, fresh_dsn)
    step("revision", "--autogenerate", "-m", "rules", "--rev-id", "0001")
    script = (project / "migrations" / "versions" / "0001_rules.py").read_text()
    assert "ck_loan_fee_not_negative" in script
    assert "ck_loan_ck_loan" not in script
    assert "postgresql_where" in script
    step("upgrade")
    checks = fetch(
        fresh_dsn,
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'loan'::regclass AND contype = 'c' ORDER BY 1",
    )
    assert [name for name, _ in checks] == [
        "ck_loan_copy_no_positive",
        "ck_loan_fee_not_negative",
        "ck_loan_kind_known",
    ]
    assert "'it''s'" in dict(checks)["ck_loan_kind_known"]
    indexes = dict(
        fetch(fresh_dsn, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'loan'")
    )
    assert "UNIQUE" in indexes["uq_loan_copy_no"]
    assert "WHERE (returned IS NULL)" in indexes["uq_loan_copy_no"]
    assert "(member_id, returned)" in indexes["ix_loan_member_id_returned"]
    assert "(member_id, lent)" in indexes["pk_loan"]
    step("check")
    step("downgrade", "base")
    assert user_tables(fresh_dsn) == {"alembic_version"}
    step("upgrade")
    step("check")


@pytest.mark.timeout(300)
def test_a_check_added_to_an_existing_table_is_drift_until_a_revision_adds_it(
    project: Path, fresh_dsn: str
) -> None:
    """`repo db check` names the missing check; autogenerate adds it, its downgrade drops it."""
    step = rules_project(project, fresh_dsn)
    step("revision", "--autogenerate", "-m", "rules", "--rev-id", "0001")
    step("upgrade")
    rules = project / "lending" / "rules.py"
    rules.write_text(
        rules.read_text().replace(
            "checks=[",
            'checks=[\n        Check("lent_this_century", lent=ge(SINCE)),',
        )
    )
    drifted = repo_cmd("db", "check", cwd=project, dsn=fresh_dsn)
    assert drifted.returncode == 1
    assert "ck_loan_lent_this_century" in drifted.stderr
    step("revision", "--autogenerate", "-m", "lent", "--rev-id", "0002")
    second = (project / "migrations" / "versions" / "0002_lent.py").read_text()
    assert "create_check_constraint" in second
    assert "ck_loan_ck_loan" not in second
    step("upgrade")
    step("check")
    assert fetch(
        fresh_dsn, "SELECT count(*) FROM pg_constraint WHERE conname = 'ck_loan_lent_this_century'"
    ) == [(1,)]
    step("downgrade", "-1")
    assert fetch(
        fresh_dsn, "SELECT count(*) FROM pg_constraint WHERE conname = 'ck_loan_lent_this_century'"
    ) == [(0,)]


# The next version of the mappings: a table sharing the existing enum type, and
# a new enum type on a new column of the existing table.
TABLES_V2 = """
from lending.tables import *  # noqa: F403
from lending.tables import Member, MemberTier, MEMBERS


class Shade(enum.StrEnum):
    LIGHT = "light"
    DARK = "dark"


@attrs.frozen
class MemberV2:
    name: str
    tier: MemberTier
    joined: dt.datetime
    born: dt.date | None = None
    card: uuid.UUID | None = None
    fee: Decimal | None = None
    score: float | None = None
    active: bool = True
    photo: bytes | None = None
    prefs: dict[str, Any] | None = None
    opens_at: dt.time | None = None
    grace: dt.timedelta | None = None
    visits: int = 0
    shelf: int = 0
    member_id: int | None = None
    shade: Shade | None = None


@attrs.frozen
class Waitlist:
    member_id: int
    tier: MemberTier
    waitlist_id: int | None = None


MEMBERS_V2 = Table(
    "member",
    MemberV2,
    key="member_id",
    unique=["card"],
    columns={
        "fee": Column(type="numeric(12,2)"),
        "visits": Column(type="integer"),
        "shelf": Column(type="smallint"),
    },
)
WAITLIST = Table("waitlist", Waitlist, key="waitlist_id", foreign_keys={"member_id": MEMBERS_V2})
TABLES = (MEMBERS_V2, WAITLIST)
"""


def test_enum_types_across_revisions(project: Path, fresh_dsn: str) -> None:
    """A later revision reuses an existing enum type and adds one on a new column, up and down."""
    (project / "lending" / "tables_v2.py").write_text(
        "import datetime as dt, enum, uuid\nfrom decimal import Decimal\nfrom typing import Any\n"
        "import attrs\nfrom repo import Column, Table\n" + TABLES_V2
    )
    assert repo_cmd("db", "init", "--tables", "lending.tables:TABLES", cwd=project, dsn=None)

    def step(*args: str) -> subprocess.CompletedProcess[str]:
        done = repo_cmd("db", *args, cwd=project, dsn=fresh_dsn)
        assert done.returncode == 0, done.stderr
        return done

    step("revision", "--autogenerate", "-m", "first", "--rev-id", "0001")
    step("upgrade")
    ini = project / "alembic.ini"
    ini.write_text(ini.read_text().replace("lending.tables:TABLES", "lending.tables_v2:TABLES"))
    step("revision", "--autogenerate", "-m", "waitlist and shade", "--rev-id", "0002")
    script = (project / "migrations" / "versions" / "0002_waitlist_and_shade.py").read_text()
    assert "AS ENUM ('light', 'dark')" in script
    assert "create_type=False" in script
    step("upgrade")
    step("check")
    assert {"member_tier", "shade"} <= enum_types(fresh_dsn)
    step("downgrade", "0001")
    assert "shade" not in enum_types(fresh_dsn)
    assert "member_tier" in enum_types(fresh_dsn)
    step("downgrade", "base")
    assert enum_types(fresh_dsn) == set()
    step("upgrade")
    step("check")


def test_init_refuses_to_overwrite_a_project(project: Path) -> None:
    """A second init, or one where migrations/ exists, changes nothing and says why."""
    first = repo_cmd("db", "init", "--tables", "lending.tables:TABLES", cwd=project, dsn=None)
    assert first.returncode == 0, first.stderr
    ini = (project / "alembic.ini").read_text()
    again = repo_cmd("db", "init", "--tables", "lending.tables:MEMBERS", cwd=project, dsn=None)
    assert again.returncode == 1
    assert "already exists" in again.stderr
    assert (project / "alembic.ini").read_text() == ini


def test_init_refuses_tables_it_cannot_load(project: Path) -> None:
    """A --tables that names no mappings fails at init, and writes nothing."""
    with pytest.raises(ConfigurationError, match="cannot load"):
        init_project(project, tables="lending.tables:NOPE")
    assert not (project / "alembic.ini").exists()
    assert not (project / "migrations").exists()


@pytest.mark.parametrize(
    "command",
    [("db", "upgrade"), ("db", "current"), ("db", "check"), ("db", "downgrade", "base")],
)
def test_repo_db_outside_a_project_changes_nothing(
    tmp_path: Path, fresh_dsn: str, command: tuple[str, ...]
) -> None:
    """With no alembic.ini here, repo db fails naming it and `repo db init`, touching nothing.

    The catalog's migrations, which ship beside the library, are never used
    for someone else's database.
    """
    done = repo_cmd(*command, cwd=tmp_path, dsn=fresh_dsn)
    assert done.returncode == 1
    assert "alembic.ini" in done.stderr
    assert "repo db init" in done.stderr
    assert user_tables(fresh_dsn) == set()


def test_repo_db_outside_a_project_does_not_connect(tmp_path: Path) -> None:
    """The missing project is reported before any connection is tried."""
    # Nothing listens on port 9: a connection attempt would say so instead.
    done = repo_cmd(
        "db", "upgrade", cwd=tmp_path, dsn="postgresql://nobody:secret@127.0.0.1:9/none"
    )
    assert done.returncode == 1
    assert "no alembic.ini" in done.stderr
    assert "cannot connect" not in done.stderr
    assert "refused" not in done.stderr.lower()
    assert "secret" not in done.stderr


async def test_require_head_outside_a_project_fails_before_connecting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`require_head` with no alembic.ini here (and no migrations=) names the file to make."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match=r"alembic\.ini.*repo db init"):
        await Database.connect("postgresql://nobody@127.0.0.1:9/none", require_head=True)


async def test_require_head_finds_the_project_it_is_given(
    project: Path, fresh_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`migrations=` names the project's alembic.ini from anywhere; at head, the pool opens."""
    assert repo_cmd("db", "init", "--tables", "lending.tables:TABLES", cwd=project, dsn=None)
    for args in (("revision", "--autogenerate", "-m", "first", "--rev-id", "0001"), ("upgrade",)):
        done = repo_cmd("db", *args, cwd=project, dsn=fresh_dsn)
        assert done.returncode == 0, done.stderr
    monkeypatch.chdir(tmp_path)
    async with Database.connect(fresh_dsn, require_head=True, migrations=project) as db:
        assert await db.pool.fetchval("SELECT version_num FROM alembic_version") == "0001"


def test_config_names_the_project_from_elsewhere(
    project: Path, fresh_dsn: str, tmp_path: Path
) -> None:
    """`repo db --config PATH` (before or after the command) works from any directory."""
    assert repo_cmd("db", "init", "--tables", "lending.tables:TABLES", cwd=project, dsn=None)
    ini = str(project / "alembic.ini")
    made = repo_cmd(
        "db", "revision", "--autogenerate", "-m", "first", "--rev-id", "0001", "--config", ini,
        cwd=tmp_path, dsn=fresh_dsn,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    done = repo_cmd("db", "--config", str(project), "upgrade", cwd=tmp_path, dsn=fresh_dsn)
    assert done.returncode == 0, done.stderr
    assert "member" in user_tables(fresh_dsn)


def test_hand_made_objects_are_excluded_from_check_by_name(project: Path, fresh_dsn: str) -> None:
    """An index a revision makes by hand is drift, until alembic.ini's `exclude` names it."""
    assert repo_cmd("db", "init", "--tables", "lending.tables:TABLES", cwd=project, dsn=None)
    first = repo_cmd(
        "db", "revision", "--autogenerate", "-m", "first", "--rev-id", "0001",
        cwd=project, dsn=fresh_dsn,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    manual = project / "migrations" / "versions" / "0002_manual.py"
    manual.write_text(
        textwrap.dedent(
            """
            from alembic import op

            revision = "0002"
            down_revision = "0001"


            def upgrade() -> None:
                op.execute(
                    "CREATE INDEX ix_member_active_name ON member (name) WHERE active"
                )
                op.create_check_constraint("visits_not_negative", "member", "visits >= 0")
                op.create_check_constraint("ck_member_shelf_small", "member", "shelf < 100")


            def downgrade() -> None:
                op.drop_constraint("ck_member_shelf_small", "member")
                op.drop_constraint("ck_member_visits_not_negative", "member")
                op.execute("DROP INDEX ix_member_active_name")
            """
        )
    )
    assert repo_cmd("db", "upgrade", cwd=project, dsn=fresh_dsn).returncode == 0
    checks = fetch(
        fresh_dsn,
        "SELECT conname FROM pg_constraint "
        "WHERE conrelid = 'member'::regclass AND contype = 'c' ORDER BY 1",
    )
    # The naming convention adds its prefix once, whether or not it was given.
    assert checks == [("ck_member_shelf_small",), ("ck_member_visits_not_negative",)]
    drifted = repo_cmd("db", "check", cwd=project, dsn=fresh_dsn)
    assert drifted.returncode == 1
    assert "ix_member_active_name" in drifted.stderr
    ini = project / "alembic.ini"
    ini.write_text(
        ini.read_text().replace(
            "exclude =",
            "exclude = ix_member_active_name, ck_member_shelf_small ck_member_visits_not_negative",
        )
    )
    clean = repo_cmd("db", "check", cwd=project, dsn=fresh_dsn)
    assert clean.returncode == 0, clean.stderr
    assert repo_cmd("db", "downgrade", "base", cwd=project, dsn=fresh_dsn).returncode == 0


def test_new_revisions_are_left_alone_without_ruff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The post-write hook formats with ruff only when ruff is installed, and never fails."""
    script = tmp_path / "0001_x.py"
    script.write_text("x  =  1\n")
    monkeypatch.setattr("repo.migrations._format._ruff", lambda: None)
    assert format_revision([str(script)]) == 0
    assert script.read_text() == "x  =  1\n"
    monkeypatch.undo()
    assert format_revision([str(script)]) == 0
    assert script.read_text() == "x = 1\n"
