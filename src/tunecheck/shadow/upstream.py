"""A small HTTP/1.1 client for the proxy's two upstreams (production, candidate).

Why not httpx/httpcore: under load their connection pool scans every pooled
connection (and polls its socket) on every request; at a few hundred requests per
second with many connections that was most of the proxy's CPU (profiled). The proxy
needs much less: keep-alive connections to one host, a request with a body, and a
response read as it arrives (Content-Length, chunked, or until close). This does
exactly that, with a LIFO stack of idle connections per upstream.

Idle connections are dropped after ``keepalive`` seconds (4 s: below the 5 s idle
timeout of uvicorn and many other servers) or as soon as the server has closed them,
so a request is never written to a connection the server already gave up on.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

_NO_BODY = {204, 304}


class UpstreamError(Exception):
    """The upstream broke the protocol or the connection."""


@dataclass
class Response:
    """Status and headers of an upstream response; the body is read with :meth:`chunks`."""

    status: int
    headers: list[tuple[bytes, bytes]]
    _conn: _Conn
    _upstream: Upstream
    _method: str
    _done: bool = field(default=False)

    def header(self, name: bytes) -> str | None:
        for k, v in self.headers:
            if k.lower() == name:
                return v.decode("latin-1")
        return None

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (chunked encoding removed)."""
        reader = self._conn.reader
        te = (self.header(b"transfer-encoding") or "").lower()
        length = self.header(b"content-length")
        keep = (self.header(b"connection") or "").lower() != "close"
        if self._method == "HEAD" or self.status in _NO_BODY or 100 <= self.status < 200:
            pass
        elif "chunked" in te:
            while True:
                line = await reader.readuntil(b"\r\n")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                        pass
                    break
                remaining = size
                while remaining:
                    data = await reader.read(min(remaining, 65536))
                    if not data:
                        raise UpstreamError("connection closed inside a chunk")
                    remaining -= len(data)
                    yield data
                await reader.readexactly(2)
        elif length is not None:
            remaining = int(length)
            while remaining:
                data = await reader.read(min(remaining, 65536))
                if not data:
                    raise UpstreamError(f"connection closed with {remaining} body bytes missing")
                remaining -= len(data)
                yield data
        else:  # no framing: the body ends when the server closes
            keep = False
            while data := await reader.read(65536):
                yield data
        self._done = True
        if keep:
            self._upstream._release(self._conn)

    async def read(self) -> bytes:
        return b"".join([c async for c in self.chunks()])


@dataclass
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0

    def usable(self, now: float, keepalive: float) -> bool:
        return (
            now - self.idle_since < keepalive
            and not self.reader.at_eof()
            and not self.writer.is_closing()
            and not self.reader._buffer  # type: ignore[attr-defined]  # unsolicited bytes
        )

    def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()


class Upstream:
    """Keep-alive connections to one OpenAI-compatible base URL."""

    def __init__(self, base_url: str, *, keepalive: float = 4.0, max_idle: int = 512) -> None:
        parts = urlsplit(base_url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        default = (self.https and self.port == 443) or (not self.https and self.port == 80)
        self.host_header = (self.host if default else f"{self.host}:{self.port}").encode()
        self.keepalive = keepalive
        self.max_idle = max_idle
        self._ssl = ssl.create_default_context() if self.https else None
        self._idle: list[_Conn] = []

    async def _connection(self) -> _Conn:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if conn.usable(now, self.keepalive):
                return conn
            conn.close()
        reader, writer = await asyncio.open_connection(
            self.host, self.port, ssl=self._ssl, limit=1 << 20
        )
        return _Conn(reader, writer)

    def _release(self, conn: _Conn) -> None:
        if len(self._idle) < self.max_idle and not conn.writer.is_closing():
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()

    async def send(
        self, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> Response:
        """Send a request (``path`` relative to the base URL) and read the response head.

        The caller must consume :meth:`Response.chunks` (or call :meth:`abandon`) so the
        connection is either reused or closed.
        """
        conn = await self._connection()
        head = [b"%s %s%s HTTP/1.1\r\n" % (method.encode(), self.prefix.encode(), path.encode())]
        head.append(b"host: %s\r\n" % self.host_header)
        for k, v in headers:
            head.append(k + b": " + v + b"\r\n")
        if body or method in ("POST", "PUT", "PATCH"):
            head.append(b"content-length: %d\r\n" % len(body))
        head.append(b"\r\n")
        try:
            conn.writer.write(b"".join(head) + body)
            while True:
                raw = await conn.reader.readuntil(b"\r\n\r\n")
                lines = raw[:-4].split(b"\r\n")
                parts = lines[0].split(b" ", 2)
                if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
                    raise UpstreamError(f"not an HTTP response: {lines[0][:80]!r}")
                status = int(parts[1])
                if status != 100:
                    break
        except asyncio.IncompleteReadError:
            conn.close()
            raise UpstreamError("connection closed before a response") from None
        except BaseException:
            conn.close()
            raise
        out = []
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            out.append((name.strip().lower(), value.strip()))
        return Response(status, out, conn, self, method)

    @staticmethod
    def abandon(response: Response) -> None:
        """Close the connection of a response whose body will not be read to the end."""
        if not response._done:
            response._conn.close()

    async def aclose(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()
