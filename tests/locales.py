"""Server databases created with a locale, for the collation tests.

``CREATE DATABASE ... TEMPLATE template0 LOCALE '<name>'`` (the libc
provider) on the server under test, beside a ``MemoryDatabase(collation=...)``
of the same name. A locale the machine lacks skips the test with the reason
and the fix, except under CI (``REPO_CI=1``, set by ``.ci/run``, which
generates ``en_US.UTF-8`` first), where it fails.
"""

from __future__ import annotations

import asyncio
import os
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
import pytest

from repo._postgres.dsn import with_database
from repo.errors import ConfigurationError
from repo.testing import MemoryDatabase
from tests.conftest import _admin

__all__ = ["LOCALES", "locale_database", "require_locale"]

LOCALES = ("C", "en_US.UTF-8")

_FIX = "generate it (.ci/run does: locale-gen, or localedef -i en_US -f UTF-8 en_US.UTF-8)"


def _missing(reason: str) -> None:
    if os.environ.get("REPO_CI") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def require_locale(name: str) -> None:
    """Skip (fail under CI) unless the C library knows the locale `name`."""
    try:
        MemoryDatabase(collation=name)
    except ConfigurationError as exc:
        _missing(f"the locale {name!r} is missing on this machine: {_FIX} ({exc})")


@contextmanager
def locale_database(server_dsn: str, name: str) -> Iterator[str]:
    """A new database whose collation (and ctype) is the locale `name`; dropped at exit."""
    require_locale(name)
    database = f"repo_locale_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(
            _admin(
                server_dsn,
                f"CREATE DATABASE \"{database}\" TEMPLATE template0 ENCODING 'UTF8' "
                f"LOCALE '{name}'",
            )
        )
    except asyncpg.InvalidParameterValueError as exc:
        _missing(f"the server does not know the locale {name!r}: {_FIX} ({exc})")
    dsn = with_database(server_dsn, database)
    try:
        yield dsn
    finally:
        name_only = urllib.parse.urlsplit(dsn).path.lstrip("/")
        asyncio.run(_admin(server_dsn, f'DROP DATABASE IF EXISTS "{name_only}" WITH (FORCE)'))
