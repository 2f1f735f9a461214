"""The migrations' head read from the scripts without Alembic, and the revision check."""

from __future__ import annotations

from pathlib import Path

import pytest

from repo import ConfigurationError, SchemaMismatch
from repo._revisions import check_revision, script_heads, script_revisions, versions_dirs

ROOT = Path(__file__).resolve().parents[2]


def _script(folder: Path, name: str, body: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(body, encoding="utf-8")


def test_the_project_head_is_read_from_its_scripts() -> None:
    """The project's alembic.ini leads to migrations/versions, whose head is 0003."""
    assert versions_dirs(ROOT / "alembic.ini") == [ROOT / "migrations" / "versions"]
    assert script_heads(ROOT) == ("0003",)
    assert script_heads(ROOT / "alembic.ini") == ("0003",)
    assert script_heads(ROOT / "migrations" / "versions") == ("0003",)
    assert script_revisions(ROOT) == (frozenset({"0001", "0002", "0003"}), ("0003",))


def test_branches_and_merges_are_followed(tmp_path: Path) -> None:
    """Both branch tips are heads until a merge revision names them both as its parents."""
    _script(tmp_path, "a", 'revision = "a"\ndown_revision = None\n')
    _script(tmp_path, "b", 'revision: str = "b"\ndown_revision: str | None = "a"\n')
    _script(tmp_path, "c", "revision = 'c'\ndown_revision = 'a'\n")
    _script(tmp_path, "helper", "x = 1\n")
    assert script_heads(tmp_path) == ("b", "c")
    _script(tmp_path, "m", 'revision = "m"\ndown_revision = ("b", "c")\n')
    assert script_heads(tmp_path) == ("m",)


def test_version_locations_in_the_ini_are_honoured(tmp_path: Path) -> None:
    """version_locations (split by path_separator) replaces script_location/versions."""
    _script(tmp_path / "one", "a", 'revision = "a"\ndown_revision = None\n')
    _script(tmp_path / "two", "b", 'revision = "b"\ndown_revision = "a"\n')
    ini = tmp_path / "alembic.ini"
    ini.write_text(
        "[alembic]\nscript_location = %(here)s/migrations\n"
        "path_separator = space\nversion_locations = %(here)s/one two\n",
        encoding="utf-8",
    )
    assert versions_dirs(ini) == [tmp_path / "one", tmp_path / "two"]
    assert script_heads(ini) == ("b",)


def test_a_database_migrated_by_newer_code_is_told_apart() -> None:
    """A revision the scripts do not have means newer code: upgrading would not help."""
    with pytest.raises(SchemaMismatch) as ahead:
        check_revision(("0003",), ("0002",), {"0001", "0002"})
    assert "at revision 0003, which these migrations (head 0002) do not have" in str(ahead.value)
    assert "upgrade" not in str(ahead.value)


def test_a_missing_migrations_folder_says_so(tmp_path: Path) -> None:
    """A folder that does not exist is a ConfigurationError naming it."""
    with pytest.raises(ConfigurationError, match="does not exist"):
        script_heads(tmp_path / "nowhere")


def test_check_revision_names_current_and_head() -> None:
    """SchemaMismatch names both revisions and says to upgrade; equal revisions pass."""
    check_revision(("0002",), ("0002",))
    with pytest.raises(SchemaMismatch) as behind:
        check_revision(("0001",), ("0002",))
    assert (behind.value.current, behind.value.head) == (("0001",), ("0002",))
    assert "at revision 0001 but the migrations' head is 0002" in str(behind.value)
    assert "repo db upgrade" in str(behind.value)
    with pytest.raises(SchemaMismatch, match="no migration applied"):
        check_revision((), ("0002",))
    check_revision(("0001",), ("0001",), {"0001"})
    with pytest.raises(SchemaMismatch, match="run `repo db upgrade`"):
        check_revision(("0001",), ("0002",), {"0001", "0002"})
    with pytest.raises(SchemaMismatch, match="no migration scripts"):
        check_revision(("0001",), ())
