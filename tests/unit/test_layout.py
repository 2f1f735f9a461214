"""The layout holds: no import circles, each wing apart, and the public names pinned.

The imports are read from the source (every ``import`` statement, those
under ``TYPE_CHECKING`` and inside functions included), so a circle cannot
hide behind a lazy import. docs/contributing.md draws the same map.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import attrs
import pytest

import repo
from repo import Database, DatabaseLike, PoolOptions
from repo._options import PoolSettings
from repo.testing import MemoryDatabase, RollbackDatabase

ROOT = Path(repo.__file__).parent


def _module_of(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_of(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def imports_of(module: str) -> set[str]:
    """The repo modules `module` imports, anywhere in its source."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node)
            # `from pkg import name` imports the module pkg.name if there is one.
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != module)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def test_no_import_circles() -> None:
    """No module reaches itself through imports, TYPE_CHECKING and in-function ones included."""
    circles = []
    for start in GRAPH:
        stack = [(start, [start])]
        seen: set[str] = set()
        while stack:
            here, path = stack.pop()
            for there in GRAPH[here]:
                if there == start:
                    circles.append(" -> ".join([*path, there]))
                elif there not in seen:
                    seen.add(there)
                    stack.append((there, [*path, there]))
    assert circles == []


def _kind(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "face"
    if parts[1] in ("_postgres", "testing", "migrations", "catalog", "_cli"):
        if module in ("repo.testing", "repo.testing.pytest_plugin"):
            return "testing face"
        return parts[1]
    return "face" if parts[1] in ("errors", "__main__") else "core"


# What each part may import. Every part may raise the public errors
# (repo.errors); the catalog and the CLI use repo as a user would.
ALLOWED = {
    "core": {"core"},
    "_postgres": {"core", "_postgres"},
    "testing": {"core", "testing"},
    "testing face": {"core", "testing", "_postgres"},
    "migrations": {"core", "migrations", "_postgres"},
    "catalog": {"face", "testing face", "catalog"},
    "_cli": {"core", "face", "_cli", "_postgres", "catalog", "migrations"},
    "face": {"core", "face", "_postgres", "_cli"},
}


def test_each_part_imports_only_what_the_map_allows() -> None:
    """The core imports no backend; no backend imports another; the catalog only public names."""
    wrong = sorted(
        f"{module} ({_kind(module)}) imports {target} ({_kind(target)})"
        for module, targets in GRAPH.items()
        for target in targets
        if target != "repo.errors" and _kind(target) not in ALLOWED[_kind(module)]
    )
    assert wrong == []


def test_no_module_is_much_over_400_lines() -> None:
    """A module past ~400 lines is asking to be split."""
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > 420}
    assert long == {}


PUBLIC = {
    "repo": {
        "Aggregate", "AggregateRepository",
        "Check", "Index",
        "Backoff", "CheckViolation", "Column", "ConfigurationError", "ConnectionLost", "Cursor",
        "DataError", "Database", "DatabaseError", "DatabaseLike", "DeadlockDetected",
        "ForeignKey", "ForeignKeyViolation", "IntegrityError", "InvalidQuery", "InvalidState",
        "Isolation", "LockNotAvailable", "NotFound", "NotNullViolation", "NotSupportedInMemory",
        "Op", "OutcomeUnknown", "Page", "PoolEvent", "PoolOptions", "PoolTimeout",
        "QueryCanceled", "ReadOnlyViolation", "RepoError", "Repository", "Savepoint",
        "SchemaMismatch", "SerializationFailure", "StaleEntity", "StatementEvent", "Stream",
        "Table", "TransactionAborted", "TransactionOptions", "UniqueViolation", "UnitOfWork",
        "UnitState", "UpsertResult", "__version__", "between", "eq", "ge", "gt", "ilike", "in_",
        "le", "like", "lt", "ne", "not_in", "run_in_unit",
    },
    "repo.errors": {
        "CheckViolation", "ConfigurationError", "ConnectionLost", "DataError", "DatabaseError",
        "DeadlockDetected", "ForeignKeyViolation", "IntegrityError", "InvalidQuery",
        "InvalidState", "LockNotAvailable", "NotFound", "NotNullViolation",
        "NotSupportedInMemory", "OutcomeUnknown", "PoolTimeout", "QueryCanceled",
        "ReadOnlyViolation", "RepoError", "SchemaMismatch", "SerializationFailure",
        "StaleEntity", "TransactionAborted", "UniqueViolation",
    },
    "repo.testing": {"MemoryDatabase", "RollbackDatabase", "memory_override", "rollback_database"},
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_names_are_pinned_sorted_and_importable(name: str) -> None:
    """`__all__` is exactly the pinned names, sorted, each one there to import."""
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported)
    assert set(exported) == PUBLIC[name]
    for attribute in exported:
        assert hasattr(module, attribute), attribute


def test_every_error_is_exported_from_repo_and_repo_errors() -> None:
    """Each RepoError subclass defined in repo.errors is public in both places."""
    errors = importlib.import_module("repo.errors")
    classes = {
        n for n, v in vars(errors).items() if isinstance(v, type) and issubclass(v, repo.RepoError)
    }
    assert classes == PUBLIC["repo.errors"]
    assert classes <= PUBLIC["repo"]


def test_pool_settings_mirror_pool_options() -> None:
    """The keyword arguments type checkers see are exactly the validated options."""
    fields = {a.name for a in attrs.fields(PoolOptions)}
    assert set(PoolSettings.__annotations__) == fields


def every_backend_is_database_like(
    db: Database, memory: MemoryDatabase, rollback: RollbackDatabase
) -> list[DatabaseLike]:
    """Checked by mypy (the suite's type check): each backend satisfies `DatabaseLike`."""
    return [db, memory, rollback]
