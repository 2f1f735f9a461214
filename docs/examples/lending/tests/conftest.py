"""The example's fixtures. repo's plugin gives `memory_db` (a fresh MemoryDatabase)
and `rollback_db` (the migrated database at $DATABASE_URL, each test rolled back).
"""

from __future__ import annotations

import pytest

pytest_plugins = ["repo.testing.pytest_plugin"]


@pytest.fixture(params=[True, False], ids=["skip_locked", "naive"])
def locks(request: pytest.FixtureRequest) -> bool:
    """Lend with row locks, and the naive way (no locks, SERIALIZABLE): both must hold."""
    return bool(request.param)
