"""What went wrong in a unit's transaction on PostgreSQL, for naming what aborted it."""

from __future__ import annotations

import asyncpg

from repo.errors import TransactionAborted

__all__ = ["Failures"]


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
