"""A wiretap between the client and PostgreSQL that counts round trips.

`Wiretap` listens on a loopback port, relays every byte to the real server,
and reads the client's side of the protocol as it goes through. A round trip
is a message after which the client waits for the server: a simple Query
(``Q``), or a Sync (``S``) closing a batch of the extended protocol (Parse,
Bind, Execute, ...). Each is recorded with the SQL it ran: the Query's text,
or the statement the batch parsed or bound, so that a test can assert that
"a unit of work with one insert" is exactly BEGIN, INSERT, COMMIT.

Every client message is parsed before it is forwarded, so once the client
has its answer, the round trip that produced it is already recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from typing import Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["Wiretap"]

# Requests sent before the startup message, without a type byte.
_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104
_CANCEL_REQUEST = 80877102


class _Client:
    """One client connection's side of the protocol."""

    def __init__(self, tap: Wiretap) -> None:
        self.tap = tap
        self.buffer = bytearray()
        self.started = False
        self.statements: dict[str, str] = {}  # prepared name -> SQL
        self.batch: str | None = None  # the SQL of the batch before its Sync

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if not self.started:
                if len(self.buffer) < 8:
                    return
                length, code = struct.unpack("!ii", self.buffer[:8])
                if len(self.buffer) < length:
                    return
                del self.buffer[:length]
                if code not in (_SSL_REQUEST, _GSSENC_REQUEST, _CANCEL_REQUEST):
                    self.started = True  # the startup message itself
                continue
            if len(self.buffer) < 5:
                return
            kind = chr(self.buffer[0])
            (length,) = struct.unpack("!i", self.buffer[1:5])
            if len(self.buffer) < 1 + length:
                return
            body = bytes(self.buffer[5 : 1 + length])
            del self.buffer[: 1 + length]
            self.message(kind, body)

    def message(self, kind: str, body: bytes) -> None:
        if kind == "Q":
            self.tap.trips.append(_cstring(body, 0)[0])
        elif kind == "P":
            name, at = _cstring(body, 0)
            sql, _ = _cstring(body, at)
            if name:
                self.statements[name] = sql
            self.batch = self.batch or sql
        elif kind == "B":
            _portal, at = _cstring(body, 0)
            name, _ = _cstring(body, at)
            self.batch = self.batch or self.statements.get(name, f"<statement {name}>")
        elif kind == "E":
            self.batch = self.batch or "<fetch from an open portal>"
        elif kind == "S":
            self.tap.trips.append(self.batch or "<sync>")
            self.batch = None


def _cstring(body: bytes, at: int) -> tuple[str, int]:
    end = body.index(b"\0", at)
    return body[at:end].decode(), end + 1


class Wiretap:
    """``async with Wiretap(dsn) as tap``: connect to ``tap.dsn``; read ``tap.trips``."""

    def __init__(self, dsn: str) -> None:
        self._upstream = dsn
        self._server: asyncio.Server | None = None
        self._port = 0
        self._links: set[asyncio.Task[None]] = set()
        self.trips: list[str] = []

    @property
    def dsn(self) -> str:
        """`dsn` leading to the tap: its port in place of the server's, over TCP."""
        parts = urlsplit(self._upstream)
        user = parts.netloc.rpartition("@")[0]
        netloc = f"{user}@127.0.0.1:{self._port}" if user else f"127.0.0.1:{self._port}"
        # A ?host= (the embedded server's socket directory) would bypass the tap.
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "host"])
        return urlunsplit(parts._replace(netloc=netloc, query=query))

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection to the real server: its Unix socket if the DSN names one, else TCP."""
        parts = urlsplit(self._upstream)
        port = parts.port or 5432
        socket_dir = dict(parse_qsl(parts.query)).get("host", "")
        if socket_dir.startswith("/"):
            return await asyncio.open_unix_connection(f"{socket_dir}/.s.PGSQL.{port}")
        return await asyncio.open_connection(parts.hostname or "127.0.0.1", port)

    def clear(self) -> list[str]:
        """The round trips so far, forgetting them."""
        trips, self.trips = self.trips, []
        return trips

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._links):
            task.cancel()
        for task in list(self._links):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._links.add(task)
        try:
            async with self._connection(writer):
                up_reader, up_writer = await self._open_upstream()
                async with self._connection(up_writer):
                    client = _Client(self)
                    await asyncio.gather(
                        self._pump(reader, up_writer, client), self._pump(up_reader, writer, None)
                    )
        finally:
            self._links.discard(task)

    @staticmethod
    @contextlib.asynccontextmanager
    async def _connection(writer: asyncio.StreamWriter) -> AsyncIterator[None]:
        try:
            yield
        finally:
            writer.close()

    @staticmethod
    async def _pump(
        source: asyncio.StreamReader, sink: asyncio.StreamWriter, client: _Client | None
    ) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await source.read(65536):
                if client is not None:
                    client.feed(data)
                sink.write(data)
                await sink.drain()
        sink.close()
