"""How a unit of work ended, said the same way by every backend; and a COMMIT carried to its answer.

- `aborted_at_commit`, `lost_in_unit`, `outcome_unknown`: the errors a unit
  raises when it cannot commit, each saying what happened and what to do;
- `carry`: await something to its end even if the task is cancelled meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from .errors import ABORTED_ADVICE, ConnectionLost, OutcomeUnknown, TransactionAborted

__all__ = ["aborted_at_commit", "carry", "lost_in_unit", "outcome_unknown"]

T = TypeVar("T")


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
        f"{ABORTED_ADVICE}. {what}"
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
        "the connection broke while COMMIT was in flight, so the transaction (a unit of "
        "work, or a bulk load) may or may not have committed: check whether its work is "
        "stored before doing it again "
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
