"""What every system of the bench is: a pool of connections, and one method per workload.

Each method is the loop a user of that system would write; the runner only
times it. Inputs that a user would already hold (the ids to get, the rows to
insert, in the shape the system takes them) are made before the clock starts.
"""

from __future__ import annotations

import abc
import resource
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ._model import INSERT_COLUMNS

__all__ = ["EVERY", "PEER_SHARE", "POOL", "UPDATED_COLUMNS", "Peak", "System", "rss"]

POOL = 10  # connections in every system's pool
EVERY = 10_000  # rows between RSS samples while streaming
# The share of a full run's sizes that the slow peers (SQLAlchemy, Tortoise,
# Piccolo) do: their figures are rates, so a tenth of the work measures them
# as well, and a full run stays within 15-20 minutes on 2 shared cores.
PEER_SHARE = 0.1
# What the upsert overwrites on conflict: every column but the key.
UPDATED_COLUMNS = INSERT_COLUMNS

_PAGE = resource.getpagesize()


def rss() -> int:
    """Resident set size now, in bytes (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


class Peak:
    """The highest RSS seen by `sample()`, above the RSS when made; and where a stream stops."""

    def __init__(self, limit: int | None = None) -> None:
        self.start = rss()
        self.peak = self.start
        self.limit = limit

    def sample(self, rows: int = 0) -> bool:
        """Take a sample, `rows` into the stream; whether the stream is to stop there."""
        self.peak = max(self.peak, rss())
        return self.limit is not None and rows >= self.limit

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.start) / 2**20


class System(abc.ABC):
    """One way of talking to PostgreSQL, with a pool of `size` connections."""

    name: ClassVar[str]
    # Workloads this system cannot do, with the reason (shown as "n/a").
    cannot: ClassVar[Mapping[str, str]] = {}
    # The share of each workload's size this system does in a full run: the
    # slow peers do less, so that a full run stays within about 15 minutes.
    share: ClassVar[float] = 1.0

    def __init__(self, dsn: str, size: int = POOL) -> None:
        self.dsn = dsn
        self.size = size

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def held_get(self, ids: Sequence[int]) -> None:
        """Get each product by key, one after the other, on one connection held throughout."""

    @abc.abstractmethod
    async def get(self, ids: Sequence[int]) -> None:
        """Get each product by key, one after the other, each get on the pool."""

    @abc.abstractmethod
    async def fetch(self, start: int, limit: int) -> int:
        """The `limit` products after id `start`, in id order; how many came."""

    @abc.abstractmethod
    def new_rows(self, first: int, count: int) -> Any:
        """Products `first` .. `first + count - 1`, new, as this system's user would hold them."""

    @abc.abstractmethod
    async def insert(self, rows: Any) -> None:
        """Store `rows` (from `new_rows`) in bench_insert, in bulk."""

    @abc.abstractmethod
    def upsert_rows(self, count: int) -> Any:
        """Products 1 .. `count` with new values and their keys, as this system holds them."""

    @abc.abstractmethod
    async def upsert(self, rows: Any) -> None:
        """Insert `rows` (from `upsert_rows`) into bench_upsert, updating those whose id exists."""

    @abc.abstractmethod
    async def savepoints(self, rows: Any) -> None:
        """Per row (from `new_rows`), a transaction: insert it into bench_txn, then
        insert it again in a savepoint, which fails (its SKU is taken) and is rolled back."""

    @abc.abstractmethod
    async def stream(self, prefetch: int, peak: Peak) -> int:
        """Every product through a server-side cursor (stopping early, at a multiple of
        `EVERY`, where ``peak.sample(n)`` says so); how many came."""
