"""How a connection is set up: json and jsonb as Python objects, then the user's `init`.

`Database.connect()` and `rollback_database()` prepare their connections
here, so that a value travels the same way whichever one carries it.

The codecs use PostgreSQL's binary format (for jsonb, a version byte 1, then
the text), which asyncpg's COPY requires of every column: a text-format codec
makes every bulk load into a table with a json or jsonb column fail. Their
encoder is strict: only what JSON can hold (no NaN or Infinity, no sets,
datetimes or Decimals, no keys that JSON cannot spell as strings, no lone
surrogates) and, for jsonb, no NUL character, which PostgreSQL refuses in
jsonb text. So a value that passes it is one the server stores as given,
which lets screened bulk loads skip the client-side jsonb check.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

__all__ = [
    "JsonRefused",
    "json_codecs",
    "json_text",
    "prepare_connection",
]

InitHook = Callable[[asyncpg.Connection], Awaitable[None]]


def _not_json(value: Any) -> Any:
    msg = f"Object of type {type(value).__name__} is not JSON serializable"
    raise TypeError(msg)


_loads = json.loads
_dumps: Callable[[Any], str]
_make = getattr(json.encoder, "c_make_encoder", None)
if _make is not None:
    # The C encoder made once, rather than per value as JSONEncoder.encode
    # does: a third of the cost. Without markers it finds a circular
    # reference as infinite nesting (RecursionError), which is refused too.
    _chunks = _make(
        None, _not_json, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )

    def _dumps(value: Any) -> str:
        return "".join(_chunks(value, 0))

else:  # pragma: no cover - CPython always has the C encoder
    _dumps = json.JSONEncoder(allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode
# A \u0000 escape that is not itself an escaped backslash followed by "u0000".
_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


class JsonRefused(ValueError):
    """A value JSON (or PostgreSQL's jsonb) cannot hold; the message says why."""


def json_text(value: Any, *, jsonb: bool = True) -> str:
    """`value` as the JSON text PostgreSQL stores; `JsonRefused` if it is not JSON.

    Dict keys that are int, float, bool or None become strings, as JSON has
    them; tuples become arrays. Anything else JSON has no form for is refused
    rather than turned into something else.
    """
    try:
        text = _dumps(value)
    except (TypeError, ValueError) as exc:
        # TypeError: a set, a datetime, a Decimal, a key of another type;
        # ValueError: NaN or Infinity, or a circular reference.
        raise JsonRefused(str(exc)) from None
    except RecursionError:
        msg = "it is nested too deeply to encode (or it contains itself)"
        raise JsonRefused(msg) from None
    if jsonb and "\\u0000" in text and _NUL.search(text):
        msg = "a string or key holds a NUL character (\\x00), which jsonb cannot store"
        raise JsonRefused(msg)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            msg = "a string or key holds a lone surrogate, which is not valid Unicode"
            raise JsonRefused(msg) from None
    return text


def _encode_json(value: Any) -> bytes:
    return json_text(value, jsonb=False).encode("utf-8")


def _encode_jsonb(value: Any) -> bytes:
    return b"\x01" + json_text(value).encode("utf-8")


def _decode_json(data: bytes) -> Any:
    # Decoded here: json.loads would sniff the encoding of bytes, in Python.
    return _loads(data.decode("utf-8"))


def _decode_jsonb(data: bytes) -> Any:
    # The binary format's version byte: 1 is the only one there is.
    return _loads(data[1:].decode("utf-8"))


async def json_codecs(conn: asyncpg.Connection) -> None:
    """json and jsonb to and from Python objects on `conn`, in the binary format."""
    await conn.set_type_codec(
        "json", encoder=_encode_json, decoder=_decode_json, schema="pg_catalog", format="binary"
    )
    await conn.set_type_codec(
        "jsonb", encoder=_encode_jsonb, decoder=_decode_jsonb, schema="pg_catalog", format="binary"
    )


async def prepare_connection(
    conn: asyncpg.Connection, *, json: bool = True, init: InitHook | None = None
) -> None:
    """Set `conn` up as `Database.connect()` does its own: the json codecs, then `init`."""
    if json:
        await json_codecs(conn)
    if init is not None:
        await init(conn)
