"""The sizes of a run, and how a round's work is cut into parts and shared out.

A full run's slow peers do `PEER_SHARE` of each workload; the cuts here are
the single source of both what they do and what the table says they did.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TypeVar

import attrs

from ._base import EVERY, PEER_SHARE

__all__ = [
    "FULL",
    "QUICK",
    "SLICES",
    "Sizes",
    "chunks",
    "cut",
    "sliced_share",
    "stream_limit",
    "turn",
    "whole_share",
]

T = TypeVar("T")

SLICES = 10  # parts a round of a workload is cut into, for the systems to take turns


@attrs.frozen
class Sizes:
    gets: int
    concurrent: int
    fetches: int
    fetch_rows: int
    inserts: int
    upserts: int
    txns: int
    peers_do_less: bool  # whether systems with a `share` below 1 do only that share

    def fetch_limit(self, rows: int) -> int:
        return min(self.fetch_rows, rows // 2)

    def describe(self, rows: int, peers: Sequence[str]) -> dict[str, str]:
        """Each workload's size; and that of the slow `peers` in the run, where they do less."""
        sliced = functools.partial(sliced_share, share=PEER_SHARE)
        sizes = {
            "get": (self.gets, sliced(self.gets), "{:,} gets"),
            "pool_get": (self.gets, sliced(self.gets), "{:,} gets"),
            "concurrent10": (self.concurrent, sliced(self.concurrent), "{:,} gets"),
            "concurrent100": (self.concurrent, sliced(self.concurrent), "{:,} gets"),
            "fetch10k": (
                self.fetches,
                sliced(self.fetches),
                f"{{}} x {self.fetch_limit(rows):,} rows",
            ),
            "insert100k": (self.inserts, whole_share(self.inserts, PEER_SHARE), "{:,} rows"),
            "upsert100k": (
                self.upserts,
                whole_share(self.upserts, PEER_SHARE),
                "{:,} rows, half new",
            ),
            "stream": (rows, stream_limit(rows, PEER_SHARE) or rows, "{:,} rows"),
            "savepoint": (self.txns, sliced(self.txns), "{:,} txns"),
        }
        out = {}
        names = ", ".join(peers)
        for workload, (full, peers_size, text) in sizes.items():
            out[workload] = text.format(full)
            if self.peers_do_less and names and peers_size < full:
                out[workload] += f"; {names}: " + text.format(peers_size)
        return out


def whole_share(count: int, share: float) -> int:
    """`share` of `count`, at least 1."""
    return max(1, math.ceil(count * share))


def cut(part: Sequence[T], share: float) -> Sequence[T]:
    """The first `share` of `part` (at least one item)."""
    return part if share >= 1 else part[: whole_share(len(part), share)]


def sliced_share(count: int, share: float) -> int:
    """How many of `count` items a system with `share` does, cut into the round's parts."""
    return sum(len(cut(part, share)) for part in chunks(range(count), SLICES))


def stream_limit(rows: int, share: float) -> int | None:
    """Where a system with `share` stops streaming: a multiple of `EVERY`; None: never."""
    if share >= 1:
        return None
    limit = max(EVERY, round(rows * share / EVERY) * EVERY)
    return limit if limit < rows else None


FULL = Sizes(
    gets=3_000,
    concurrent=20_000,
    fetches=20,
    fetch_rows=10_000,
    inserts=100_000,
    upserts=100_000,
    txns=2_000,
    peers_do_less=True,
)
QUICK = Sizes(
    gets=100,
    concurrent=200,
    fetches=2,
    fetch_rows=500,
    inserts=500,
    upserts=500,
    txns=50,
    peers_do_less=False,
)


def chunks(items: Sequence[T], count: int) -> list[Sequence[T]]:
    """`items` cut into `count` consecutive parts (fewer if there are fewer items)."""
    count = max(1, min(count, len(items)))
    return [items[k * len(items) // count : (k + 1) * len(items) // count] for k in range(count)]


def turn(order: Sequence[T], k: int) -> list[T]:
    """`order` rotated by `k`."""
    k %= len(order)
    return [*order[k:], *order[:k]]
