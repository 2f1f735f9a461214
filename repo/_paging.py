"""Keyset pagination: `Page`, the keyset ordering, and the opaque page tokens.

A page is read with ``WHERE (a, key) > (last a, last key) ORDER BY a, key
LIMIT n``, never with OFFSET, so each page costs the same and rows inserted
between pages are neither skipped nor repeated. The token for the next page
carries the last row's ordering values, signed so that a token altered by a
client, or one made for another table or ordering, is refused.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

from ._query import Order, parse_order
from .errors import InvalidQuery

if TYPE_CHECKING:
    from ._mapping import Table

__all__ = [
    "Page",
    "check_page_limit",
    "decode_token",
    "encode_token",
    "keyset_order",
    "next_token",
    "page_start",
]

T = TypeVar("T")

ENV_SECRET = "REPO_PAGE_SECRET"
_DEFAULT_SECRET = b"repo keyset page token v1"


@attrs.frozen
class Page(Generic[T]):
    """One page of entities, and the token that reads the next one.

    `next` is ``None`` on the last page; pass it as ``page(after=...)``
    otherwise. Iterating a page iterates its items.
    """

    items: list[T]
    next: str | None = None

    @property
    def has_more(self) -> bool:
        """Whether another page follows."""
        return self.next is not None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def keyset_order(table: Table[Any], order_by: str | Sequence[str] | None) -> tuple[Order, ...]:
    """The unique ordering a page walks: `order_by` with the key appended as tie-breaker
    (each part of a composite key that `order_by` does not name, in order).

    All keys go the same direction (so a row comparison applies) and none may
    be nullable (NULLs have no place in a keyset).
    """
    orders = parse_order(table, order_by)
    descending = orders[-1].descending if orders else False
    named = {o.field for o in orders}
    orders = (*orders, *(Order(f, descending) for f in table.key_fields if f not in named))
    if len({o.descending for o in orders}) > 1:
        msg = "page(order_by=...) keys must all go the same direction (all 'x' or all '-x')"
        raise InvalidQuery(msg)
    for o in orders:
        if table.field(o.field).nullable:
            msg = f"page() cannot order by {o.field!r}: it is nullable, and NULLs break a keyset"
            raise InvalidQuery(msg)
    return orders


def _secret() -> bytes:
    given = os.environ.get(ENV_SECRET)
    return given.encode() if given else _DEFAULT_SECRET


def _tag(table: Table[Any], orders: Sequence[Order], payload: bytes) -> str:
    shape = f"{table.name}|{','.join(('-' if o.descending else '') + o.field for o in orders)}|"
    digest = hmac.new(_secret(), shape.encode() + payload, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:12]).decode().rstrip("=")


def _pack(value: Any) -> list[Any]:
    # Tagged so that the token gives back the very types it was made from.
    if value is None:
        return ["n", None]
    if isinstance(value, bool):
        return ["b", value]
    if isinstance(value, int):
        return ["i", value]
    if isinstance(value, float):
        return ["f", value]
    if isinstance(value, str):
        return ["s", value]
    if isinstance(value, decimal.Decimal):
        return ["d", str(value)]
    if isinstance(value, dt.datetime):
        return ["t", value.isoformat()]
    if isinstance(value, dt.date):
        return ["D", value.isoformat()]
    if isinstance(value, dt.time):
        return ["T", value.isoformat()]
    if isinstance(value, dt.timedelta):
        return ["I", [value.days, value.seconds, value.microseconds]]
    if isinstance(value, uuid.UUID):
        return ["u", str(value)]
    if isinstance(value, bytes | bytearray | memoryview):
        return ["B", base64.b64encode(value).decode()]
    if isinstance(value, list | tuple):
        return ["l", [_pack(v) for v in value]]
    msg = f"page() cannot order by a {type(value).__name__} value"
    raise InvalidQuery(msg)


def _unpack(packed: Any) -> Any:
    kind, value = packed
    return _UNPACK[kind](value)


_UNPACK: dict[str, Any] = {
    "n": lambda v: None,
    "b": bool,
    "i": int,
    "f": float,
    "s": str,
    "d": decimal.Decimal,
    "t": dt.datetime.fromisoformat,
    "D": dt.date.fromisoformat,
    "u": uuid.UUID,
    "T": dt.time.fromisoformat,
    "I": lambda v: dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2]),
    "B": lambda v: base64.b64decode(v.encode(), validate=True),
    "l": lambda v: [_unpack(p) for p in v],
}


def encode_token(table: Table[Any], orders: Sequence[Order], values: Sequence[Any]) -> str:
    """The token for the page after the row whose ordering values are `values`."""
    payload = json.dumps([_pack(v) for v in values], separators=(",", ":")).encode()
    body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    return f"{body}.{_tag(table, orders, payload)}"


def decode_token(table: Table[Any], orders: Sequence[Order], token: object) -> tuple[Any, ...]:
    """The ordering values in `token`; `InvalidQuery` if it was altered or is not for this query."""
    bad = InvalidQuery(
        f"page(after=...) got a token that is not one this {table.name} page query issued "
        "(altered, truncated, or made for another table or ordering): start from after=None"
    )
    if not isinstance(token, str) or token.count(".") != 1:
        raise bad
    body, tag = token.split(".")
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (ValueError, TypeError):
        raise bad from None
    if not hmac.compare_digest(tag, _tag(table, orders, payload)):
        raise bad
    try:
        packed = json.loads(payload)
        values = tuple(_unpack(p) for p in packed)
    except (ValueError, KeyError, TypeError):
        raise bad from None
    if len(values) != len(orders):
        raise bad
    return values


def check_page_limit(limit: object) -> None:
    """Refuse a `page(limit=...)` that is not a positive int."""
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        msg = f"page(limit=...) must be a positive int, got {limit!r}"
        raise InvalidQuery(msg)


def page_start(
    table: Table[Any], order_by: str | Sequence[str] | None, after: str | None
) -> tuple[tuple[Order, ...], tuple[Any, ...] | None]:
    """A page's keyset order, and the values it starts after (None: the first page)."""
    orders = keyset_order(table, order_by)
    return orders, None if after is None else decode_token(table, orders, after)


def next_token(table: Table[Any], orders: Sequence[Order], last: Any, more: bool) -> str | None:
    """The token of the page after the one ending with entity `last` (None if no more)."""
    if not more or last is None:
        return None
    values = table.values(last)
    return encode_token(table, orders, [values[table.field_names.index(o.field)] for o in orders])
