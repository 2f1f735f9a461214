"""Text ordering as a PostgreSQL database with a libc collation orders it.

``MemoryDatabase(collation="en_US.UTF-8")`` compares text the way a server
database created with ``LOCALE 'en_US.UTF-8'`` (the libc provider) does on
the same machine: with the C library's ``strcoll_l`` on a locale of its own
(``newlocale``), so the process's global locale is never touched and
threads do not interfere. As in PostgreSQL's ``varstr_cmp`` for a
deterministic collation, strings that ``strcoll`` calls equal but that
differ are ordered by their bytes (``strcmp``). ``"C"`` and ``"POSIX"``
compare by code point, which is also what the ``C.UTF-8`` locale does.

Only ordering changes (``order_by``, ``lt``/``le``/``gt``/``ge``/``between``
and keyset pages, on text and on arrays of text): equality stays bytewise,
as it is for a deterministic collation on the server.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import locale
import sys
from collections.abc import Callable, Sequence
from typing import Any

from repo._mapping import Table
from repo._query import Condition, Operator, Order
from repo.errors import ConfigurationError

from ._eval import after, matcher, sorter

__all__ = ["CODE_POINT", "Collation", "collation"]

Row = tuple[Any, ...]

_CODE_POINT = frozenset({"C", "POSIX"})
_ORDERING = (Operator.LT, Operator.LE, Operator.GT, Operator.GE)


def _encode(text: str) -> bytes:
    # Lone surrogates never reach a collation (the checks refuse them), but a
    # comparison must not be the place that fails on one.
    return text.encode("utf-8", "surrogatepass")


@functools.cache
def _libc() -> ctypes.CDLL:
    lib = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    lib.newlocale.restype = ctypes.c_void_p
    lib.newlocale.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p]
    lib.strcoll_l.restype = ctypes.c_int
    lib.strcoll_l.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]
    return lib


def _collate_mask() -> int:
    # glibc's LC_COLLATE_MASK is 1 << LC_COLLATE; the BSDs and macOS number the masks apart.
    return 1 if sys.platform == "darwin" else 1 << locale.LC_COLLATE


class Collation:
    """How text compares: by code point ("C"), or by a libc locale's ``strcoll_l``.

    Made by `collation` (one per name, shared); `compare` is the three-way
    comparison, and `sorter`, `matcher` and `after` are the in-memory
    evaluator's, with text compared this way.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.code_point = name in _CODE_POINT
        self._locale: int | None = None
        if not self.code_point:
            self._locale = self._open(name)

    @staticmethod
    def _open(name: str) -> int:
        try:
            lib = _libc()
            handle: int | None = lib.newlocale(_collate_mask(), _encode(name), None)
        except (OSError, AttributeError) as exc:
            msg = (
                f"collation {name!r} needs the C library's newlocale and strcoll_l, "
                f"which this platform does not offer ({exc}): use collation='C'"
            )
            raise ConfigurationError(msg) from exc
        if not handle:
            msg = (
                f"unknown collation {name!r}: it is not a locale of this machine's C "
                "library (`locale -a` lists them; generate it with locale-gen), or "
                "use 'C'"
            )
            raise ConfigurationError(msg)
        return handle

    def compare_bytes(self, a: bytes, b: bytes) -> int:
        """<0, 0 or >0 as UTF-8 text `a` sorts before, with or after `b`."""
        if a == b:
            return 0
        if self._locale is not None:
            found: int = _libc().strcoll_l(a, b, self._locale)
            if found:
                return found
        # Code point order is UTF-8's byte order: PostgreSQL's strcmp tie-break.
        return -1 if a < b else 1

    def compare(self, a: str, b: str) -> int:
        """<0, 0 or >0 as `a` sorts before, with or after `b` (bytewise equal only)."""
        return self.compare_bytes(_encode(a), _encode(b))

    def key(self, value: Any) -> Any:
        """`value` (a str, a list of them, or anything else) made to compare this way."""
        if self.code_point or value is None:
            return value
        if isinstance(value, str):
            return Text(value, self)
        if isinstance(value, list):
            return [self.key(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.key(v) for v in value)
        return value

    # -- the evaluator, collated --------------------------------------------

    def _texts(self, table: Table[Any], fields: Sequence[str]) -> list[int]:
        """The positions among `fields` of text (or text array) columns, if this is not "C"."""
        if self.code_point:
            return []
        kinds = {c.field: c.kind for c in table.columns}
        return [i for i, f in enumerate(fields) if kinds[f] == "text"]

    def matcher(self, table: Table[Any], conditions: Sequence[Condition]) -> Callable[[Row], bool]:
        """`_eval.matcher`, its ordering filters on text comparing this way."""
        texts = self._texts(table, [c.field for c in conditions])
        if texts:
            conditions = list(conditions)
            for i in texts:
                c = conditions[i]
                if c.operator in _ORDERING or c.operator is Operator.BETWEEN:
                    conditions[i] = Condition(c.field, c.operator, self.key(c.value))
        return matcher(table, conditions)

    def sorter(
        self, table: Table[Any], orders: Sequence[Order]
    ) -> Callable[[list[Row]], list[Row]]:
        """`_eval.sorter`, text ordered this way."""
        sort = sorter(table, orders)
        names = table.field_names
        at = [names.index(orders[i].field) for i in self._texts(table, [o.field for o in orders])]
        if not at:
            return sort

        def collated(rows: list[Row]) -> list[Row]:
            keyed = [_keyed(row, at, self) for row in rows]
            return [_plain(row, at) for row in sort(keyed)]

        return collated

    def after(
        self, table: Table[Any], orders: Sequence[Order], values: Sequence[Any]
    ) -> Callable[[Row], bool]:
        """`_eval.after`, its bound compared this way."""
        return after(table, orders, [self.key(v) for v in values])

    def __repr__(self) -> str:
        return f"<Collation {self.name!r}>"


def _keyed(row: Row, at: list[int], how: Collation) -> Row:
    out = list(row)
    for i in at:
        out[i] = how.key(out[i])
    return tuple(out)


def _unkey(value: Any) -> Any:
    if isinstance(value, Text):
        return value.text
    if isinstance(value, list):
        return [_unkey(v) for v in value]
    return value


def _plain(row: Row, at: list[int]) -> Row:
    out = list(row)
    for i in at:
        out[i] = _unkey(out[i])
    return tuple(out)


class Text:
    """A str that compares by a `Collation` (against another or a plain str)."""

    __slots__ = ("collation", "raw", "text")

    def __init__(self, text: str, how: Collation) -> None:
        self.text = text
        self.raw = _encode(text)
        self.collation = how

    def _against(self, other: object) -> int | None:
        if isinstance(other, Text):
            return self.collation.compare_bytes(self.raw, other.raw)
        if isinstance(other, str):
            return self.collation.compare_bytes(self.raw, _encode(other))
        return None

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Text):
            return self.text == other.text
        if isinstance(other, str):
            return self.text == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.text)

    def __lt__(self, other: object) -> bool:
        c = self._against(other)
        return NotImplemented if c is None else c < 0

    def __le__(self, other: object) -> bool:
        c = self._against(other)
        return NotImplemented if c is None else c <= 0

    def __gt__(self, other: object) -> bool:
        c = self._against(other)
        return NotImplemented if c is None else c > 0

    def __ge__(self, other: object) -> bool:
        c = self._against(other)
        return NotImplemented if c is None else c >= 0

    def __repr__(self) -> str:
        return f"Text({self.text!r}, {self.collation.name!r})"


def collation(name: str = "C") -> Collation:
    """The `Collation` called `name` (one per name); `ConfigurationError` if it is unknown."""
    if not isinstance(name, str) or not name or "\x00" in name:
        msg = f"collation must be a locale name such as 'C' or 'en_US.UTF-8', got {name!r}"
        raise ConfigurationError(msg)
    return _made(name)


@functools.cache
def _made(name: str) -> Collation:
    return Collation(name)


# What a `MemoryDatabase` compares text by unless told otherwise.
CODE_POINT = collation("C")
