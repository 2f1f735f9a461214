"""`run_in_unit`: run a whole unit of work again when the database asks for it.

Under SERIALIZABLE (and, more rarely, under any isolation) PostgreSQL aborts
one of two conflicting transactions with 40001 (serialization failure) or
40P01 (deadlock) and expects the application to run it again from the start.
`run_in_unit` does exactly that: a fresh unit of work per attempt, jittered
exponential backoff between attempts, a bound on attempts, and the last
error raised when they run out. It also runs again a unit whose connection
was lost before COMMIT, and a read-write unit whose write a server demoted
to a standby refused (after a failover); never one whose COMMIT outcome is
unknown, and nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import attrs

from ._contract import DatabaseLike
from ._options import Isolation
from ._uow import UnitOfWork, UnitState
from .errors import (
    ConnectionLost,
    InvalidQuery,
    OutcomeUnknown,
    ReadOnlyViolation,
    RepoError,
    SerializationFailure,
)

__all__ = ["Backoff", "run_in_unit"]

log = logging.getLogger("repo")

U = TypeVar("U", bound=UnitOfWork)
R = TypeVar("R")


@attrs.frozen
class Backoff:
    """How long to wait before attempt n+1: "full jitter" exponential backoff.

    A random delay between 0 and ``min(cap, first * 2 ** (n - 1))`` seconds,
    so that the transactions that just collided do not collide again in
    lockstep.
    """

    first: float = 0.005
    cap: float = 0.5

    def delay(self, attempt: int) -> float:
        """The pause after failed attempt `attempt` (1-based)."""
        return random.uniform(0, min(self.cap, self.first * 2 ** (attempt - 1)))


def _retryable(exc: RepoError, uow: UnitOfWork, committing: bool) -> bool:
    """Whether running the unit again is safe and may succeed."""
    if uow.state is UnitState.COMMITTED:
        # `work` committed the unit itself and failed afterwards: its work is
        # stored, and running it again would do it twice.
        return False
    if isinstance(exc, SerializationFailure):
        # DeadlockDetected included. The server rolled the transaction back,
        # even when it said so in answer to COMMIT: running it again is safe.
        return True
    if isinstance(exc, OutcomeUnknown) or uow.state is UnitState.UNKNOWN:
        # The COMMIT may have taken effect: running it again could do it twice.
        return False
    if isinstance(exc, ConnectionLost):
        # Lost before COMMIT was sent (or before the server could have
        # received it): nothing was committed.
        return True
    # A read-write unit's write refused as read-only: after a failover the
    # old primary is a standby. Its connection was discarded, and a fresh
    # one reaches the new primary. Not at COMMIT, and not in a unit that
    # asked to be read-only (that is the caller's mistake, not a failover).
    return isinstance(exc, ReadOnlyViolation) and not uow.readonly and not committing


async def run_in_unit(
    unit: type[U],
    db: DatabaseLike,
    work: Callable[[U], Awaitable[R]],
    *,
    attempts: int = 5,
    backoff: Backoff = Backoff(),
    on_retry: Callable[[int, RepoError, float], None] | None = None,
    isolation: Isolation | str | None = None,
    readonly: bool = False,
    deferrable: bool = False,
    statement_timeout: float | None = None,
    lock_timeout: float | None = None,
) -> R:
    """Run ``await work(uow)`` in a fresh `unit` on `db`, committed; retry on conflict.

    ``work`` gets the active unit of work (``uow.attempt`` says which attempt
    this is, from 1) and returns a result; `run_in_unit` commits and returns
    that result. When the unit fails with `SerializationFailure` or
    `DeadlockDetected` (from any statement, COMMIT included), with
    `ConnectionLost` before COMMIT was sent, or (in a read-write unit,
    before COMMIT) with `ReadOnlyViolation`, the whole `work` runs again in
    a new unit after a `backoff` pause, at most `attempts` times in all;
    then the last error is raised. Any other error is raised at once:
    `TransactionAborted` from a COMMIT the server rolled back, and
    `OutcomeUnknown` (a connection lost during COMMIT) included.

    `on_retry(attempt, error, delay)` is called before each pause (for
    metrics or logs). The unit options (`isolation`, ...) are `UnitOfWork`'s.

    Since `work` may run several times, it should have no effects outside
    the unit of work (or only idempotent ones).
    """
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        msg = f"attempts must be a positive int, got {attempts!r}"
        raise InvalidQuery(msg)
    attempt = 0
    while True:
        attempt += 1
        uow = unit(
            db,
            isolation=isolation,
            readonly=readonly,
            deferrable=deferrable,
            statement_timeout=statement_timeout,
            lock_timeout=lock_timeout,
        )
        uow.attempt = attempt
        committing = False
        try:
            async with uow:
                result = await work(uow)
                if uow.state is UnitState.ACTIVE:
                    committing = True
                    await uow.commit()
        except RepoError as exc:
            if attempt >= attempts or not _retryable(exc, uow, committing):
                raise
            delay = backoff.delay(attempt)
            if on_retry is not None:
                on_retry(attempt, exc, delay)
            log.debug("attempt %d of %s failed (%s); retrying in %.3fs", attempt, work, exc, delay)
            await asyncio.sleep(delay)
            continue
        return result
