"""Testing without a server: `MemoryDatabase`, in-memory overrides, and pytest fixtures.

``MemoryDatabase()`` has the surface of `Database` and behaves like
PostgreSQL for everything the contract suite (``tests/contract/``) covers,
so service code written against a unit of work is unit-tested in
milliseconds. The fixtures (``memory_db``, ``rollback_db``) are enabled with
``pytest_plugins = ["repo.testing.pytest_plugin"]``.
"""

from repo._postgres.rollback import RollbackDatabase, rollback_database

from ._memory import MemoryDatabase, memory_override

__all__ = ["MemoryDatabase", "RollbackDatabase", "memory_override", "rollback_database"]
