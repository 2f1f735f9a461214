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
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from repo._json import json_text, loads

__all__ = ["json_codecs", "prepare_connection"]

InitHook = Callable[[asyncpg.Connection], Awaitable[None]]


def _encode_json(value: Any) -> bytes:
    return json_text(value, jsonb=False).encode("utf-8")


def _encode_jsonb(value: Any) -> bytes:
    return b"\x01" + json_text(value).encode("utf-8")


# The C scanner json.loads ends in, called directly: jsonb's text as the
# server sends it has no whitespace around the value, so the two regular
# expression scans and the checks json.loads makes around it are skipped, a
# good part of a row's decoding. Anything else (json keeps the text as
# given) goes through json.loads, whose result and errors are the same.
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _parse(text: str) -> Any:
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return loads(text)
    if end != len(text):
        return loads(text)
    return value


def _decode_json(data: bytes) -> Any:
    # Decoded here: json.loads would sniff the encoding of bytes, in Python.
    return _parse(data.decode("utf-8"))


def _decode_jsonb(data: bytes) -> Any:
    # The binary format's version byte (1 is the only one there is) decodes
    # to one character, which the scan starts after: no copy of the bytes
    # without it, and no call to _parse, on the path of every jsonb value.
    text = data.decode("utf-8")
    try:
        value, end = _scan(text, 1)
    except (StopIteration, ValueError):
        # Not JSON: json.loads' error, its positions in the value's own text.
        return loads(text[1:])
    if end != len(text):
        return loads(text[1:])
    return value


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
