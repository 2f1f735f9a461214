"""How a unit of work ended: the failure that aborted it, and a COMMIT carried to its answer.

- `Failures`: what went wrong in a unit's transaction, savepoint by savepoint,
  so that a COMMIT the server answers with ``ROLLBACK`` names the failure
  that aborted the transaction;
- `aborted_at_commit`, `lost_in_unit`, `outcome_unknown`: the errors a unit
  raises when it cannot commit, each saying what happened and what to do;
- `carry`: await something to its end even if the task is cancelled meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import asyncpg

from .errors import _ABORTED_ADVICE, ConnectionLost, OutcomeUnknown, TransactionAborted

__all__ = ["Failures", "aborted_at_commit", "carry", "lost_in_unit", "outcome_unknown"]

T = TypeVar("T")


def _from_server(exc: BaseException) -> bool:
    """Whether `exc` is (or was raised from) an error the server answered with.

    asyncpg also raises some of its server error classes itself (a query
    argument it cannot encode is a ``DataError``); only the server's own
    carry a severity.
    """
    seen = 0
    cause: BaseException | None = exc
    while cause is not None and seen < 8:
        if isinstance(cause, asyncpg.PostgresError):
            return getattr(cause, "severity", None) is not None
        cause = cause.__cause__
        seen += 1
    return False


class Failures:
    """The failures one transaction met, for naming the one that aborted it.

    Inside a transaction block, PostgreSQL aborts the transaction on any
    error it answers with, so such a failure is the culprit unless a
    savepoint around it was rolled back to. A failure raised on the client
    (a cancellation, a value the driver could not encode) may or may not
    have reached the server: it is only a suspect, cleared as soon as a later
    statement succeeds (the transaction was not aborted then). A statement
    refused with 25P02 proves an earlier failure aborted the transaction, so
    it is never itself the culprit.
    """

    __slots__ = ("_depth", "_seen", "suspects")

    def __init__(self) -> None:
        self._depth = 0
        # (savepoint depth, the failure, whether the server answered with it)
        self._seen: list[tuple[int, BaseException, bool]] = []
        #: How many entries are only suspects: the hot path checks this alone.
        self.suspects = 0

    def failed(self, exc: BaseException) -> None:
        """A statement of the transaction raised `exc`."""
        if isinstance(exc, GeneratorExit | TransactionAborted):
            return
        answered = _from_server(exc)
        self._seen.append((self._depth, exc, answered))
        if not answered:
            self.suspects += 1

    def succeeded(self) -> None:
        """A statement succeeded: no suspect before it aborted the transaction."""
        self._seen = [entry for entry in self._seen if entry[2]]
        self.suspects = 0

    def opened(self) -> None:
        """A savepoint was made."""
        self._depth += 1

    def released(self) -> None:
        """The innermost savepoint was released: its failures are its parent's now."""
        self._depth = max(0, self._depth - 1)
        self._seen = [(min(d, self._depth), e, a) for d, e, a in self._seen]

    def rolled_back(self) -> None:
        """The innermost savepoint was rolled back to: its failures are undone."""
        self._seen = [entry for entry in self._seen if entry[0] < self._depth]
        self.suspects = sum(1 for entry in self._seen if not entry[2])
        self._depth = max(0, self._depth - 1)

    def first(self) -> BaseException | None:
        """The failure that aborted the transaction: the first the server answered
        with, else the first suspect; None if repo saw none."""
        for _, exc, answered in self._seen:
            if answered:
                return exc
        return self._seen[0][1] if self._seen else None


def _named(exc: BaseException) -> str:
    """`exc` as ``Class: message``, once (repo's integrity errors start with their class)."""
    name, text = type(exc).__name__, str(exc)
    if text.startswith(f"{name}:"):
        return text
    return f"{name}: {text}" if text else name


def aborted_at_commit(first: BaseException | None) -> TransactionAborted:
    """The error for a COMMIT the server answered by rolling back; raise it ``from first``."""
    if first is None:
        what = "The statement that failed ran on uow.connection, where repo does not see it"
    else:
        what = f"The first failure was {_named(first)}"
    msg = (
        "COMMIT rolled the unit of work back instead, and nothing of it was stored: "
        f"{_ABORTED_ADVICE}. {what}"
    )
    return TransactionAborted(msg)


def lost_in_unit(exc: ConnectionLost) -> ConnectionLost:
    """`exc`, said as a unit of work sees it (nothing of the unit was committed), chained."""
    msg = (
        f"{exc}; the unit of work's work was not committed: run it again in a new unit "
        "(run_in_unit does)"
    )
    err = ConnectionLost(msg)
    err.sqlstate = exc.sqlstate
    # Chained to what `exc` was chained to (the driver's error, if any).
    err.__cause__ = exc.__cause__
    err.__suppress_context__ = True
    return err


def outcome_unknown(exc: BaseException) -> OutcomeUnknown:
    """The error for a COMMIT sent but never answered; raise it ``from exc``."""
    msg = (
        "the connection broke while COMMIT was in flight, so the unit of work may or may "
        "not have committed: check whether its work is stored before doing it again "
        f"(run_in_unit never retries this). The cause: {_named(exc)}"
    )
    return OutcomeUnknown(msg)


async def carry(awaitable: Awaitable[T]) -> tuple[asyncio.Future[T], asyncio.CancelledError | None]:
    """Run `awaitable` to its end, even if the task is cancelled meanwhile.

    Returns its finished future, whose result or exception the caller reads
    (cancelled only if something else cancelled it, such as the event loop
    shutting down), and the cancellation that arrived while waiting, if
    any, for the caller to raise once it has acted on the outcome.
    """
    inner = asyncio.ensure_future(awaitable)
    cancelled: asyncio.CancelledError | None = None
    while not inner.done():
        try:
            await asyncio.shield(inner)
        except asyncio.CancelledError as exc:
            cancelled = cancelled or exc
        except BaseException:
            # Finished with an error: the caller reads it from `inner`.
            break
    return inner, cancelled
