"""The fake's ILIKE folds case exactly as this server's ``lower()`` does, character by character."""

from __future__ import annotations

import asyncpg

from repo.testing._eval import simple_lower


async def test_simple_lower_is_the_servers_lower_for_every_code_point(
    conn: asyncpg.Connection,
) -> None:
    """Every code point (surrogates aside) that PostgreSQL's lower() changes, the fake changes
    the same way, and no other: ILIKE lowers pattern and text with it on both backends."""
    ctype = await conn.fetchval(
        "SELECT datctype FROM pg_database WHERE datname = current_database()"
    )
    rows = await conn.fetch(
        "SELECT i, lower(chr(i)) AS low FROM generate_series(1, 1114111) AS i "
        "WHERE i NOT BETWEEN 55296 AND 57343 AND lower(chr(i)) <> chr(i)"
    )
    server = {row["i"]: row["low"] for row in rows}
    fake = {
        i: simple_lower(chr(i))
        for i in range(1, 0x110000)
        if not 0xD800 <= i <= 0xDFFF and simple_lower(chr(i)) != chr(i)
    }
    assert ctype.lower() not in ("c", "posix"), f"a {ctype} database folds ASCII only"
    assert fake == server
    assert simple_lower("ΟΔΟΣ İ") == "οδοσ i"
