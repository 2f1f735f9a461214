"""Every system of the bench, by name, in the order of the table's columns.

Each system's module (and the library it measures) is imported only when the
system is made, so that a stream's child process loads its own system alone.
"""

from __future__ import annotations

import importlib

from ._base import POOL, Peak, System

__all__ = ["PGBENCH", "SYSTEMS", "YARDSTICK", "Peak", "System", "make"]

_CLASSES = {
    "asyncpg": ("_asyncpg", "Asyncpg"),
    "asyncpg+attrs": ("_asyncpg", "AsyncpgAttrs"),
    "repo": ("_repo", "Repo"),
    "sqla-core": ("_sqla", "SqlaCore"),
    "sqla-orm": ("_sqla", "SqlaOrm"),
    "tortoise": ("_tortoise", "TortoiseOrm"),
    "piccolo": ("_piccolo", "Piccolo"),
}
# Not a Python client: the server's ceiling for lookups (bench/_pgbench.py).
PGBENCH = "pgbench"
SYSTEMS = (*_CLASSES, PGBENCH)
YARDSTICK = "asyncpg+attrs"


def make(name: str, dsn: str, size: int = POOL) -> System:
    module, cls = _CLASSES[name]
    system: type[System] = getattr(importlib.import_module(f"bench.{module}"), cls)
    if system.name != name:
        msg = f"bench.{module}.{cls} is named {system.name!r}, not {name!r}"
        raise RuntimeError(msg)
    return system(dsn, size)
