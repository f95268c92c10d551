"""Keep-alive HTTP/1.1 connections to one server, and what one request gives back."""

from __future__ import annotations

import contextlib
import json
from typing import Any


class Failure(Exception):
    """One HTTP request that did not succeed; ``status`` is set for HTTP errors.

    ``connect`` marks a failure to reach the server at all (connection refused).
    """

    def __init__(self, message: str, status: int | None = None, connect: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.connect = connect


class Reply:
    """Status, lower-cased headers and body of one HTTP answer."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def server_message(resp: Any) -> str:
    """The ``error.message`` of an OpenAI-style error body, else the start of the body.

    ``resp`` is a :class:`Reply` or an ``httpx.Response``.
    """
    try:
        data = resp.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data.get("message")))
        if isinstance(err, dict):
            err = err.get("message", err)
        if err:
            return str(err)[:300]
    status = getattr(resp, "status", None) or getattr(resp, "status_code", "")
    return resp.text[:300].strip() or f"HTTP {status}"


class Connections:
    """Keep-alive HTTP/1.1 connections to one server, one per request in flight.

    Built on httpcore, the engine under httpx, without httpx's client layer: the
    adaptive limiter already bounds requests in flight, so a free list of
    connections replaces httpx's pool, whose bookkeeping costs grow with the square
    of the pool size and dominated the cost of a request at concurrency 64
    (see bench/bench_openai.py). Proxy environment variables are not consulted.
    """

    def __init__(self, base_url: str, headers: dict[str, str], timeout: float) -> None:
        from urllib.parse import urlsplit

        import httpcore

        parts = urlsplit(base_url)
        scheme = parts.scheme.encode()
        host = (parts.hostname or "").encode()
        port = parts.port or (443 if scheme == b"https" else 80)
        self._origin = httpcore.Origin(scheme, host, port)
        self._prefix = parts.path.rstrip("/")
        self._ssl = httpcore.default_ssl_context() if scheme == b"https" else None
        self._headers = [(k.encode(), v.encode()) for k, v in headers.items()]
        connect = min(timeout, 10.0)
        self._extensions = {
            "timeout": {"connect": connect, "read": timeout, "write": timeout, "pool": timeout}
        }
        self._urls: dict[str, Any] = {}
        self._free: list[Any] = []
        self._open: set[Any] = set()

    def _url(self, path: str) -> Any:
        import httpcore

        url = self._urls.get(path)
        if url is None:
            o = self._origin
            url = httpcore.URL(
                scheme=o.scheme, host=o.host, port=o.port, target=f"{self._prefix}/{path}".encode()
            )
            self._urls[path] = url
        return url

    def _take(self) -> Any:
        import httpcore

        while self._free:
            conn = self._free.pop()
            if not conn.is_closed() and not conn.has_expired():
                return conn
            self._open.discard(conn)  # the server closed it while idle
        conn = httpcore.AsyncHTTPConnection(self._origin, ssl_context=self._ssl)
        self._open.add(conn)
        return conn

    async def post(self, path: str, content: bytes) -> Reply:
        """POST ``content`` to ``BASE_URL/path``; raises httpcore's errors as they come."""
        conn = self._take()
        try:
            resp = await conn.request(
                "POST",
                self._url(path),
                headers=self._headers,
                content=content,
                extensions=self._extensions,
            )
        except BaseException:
            # timed out, cancelled or broken: its state is unknown, never reuse it
            self._open.discard(conn)
            with contextlib.suppress(Exception):
                await conn.aclose()
            raise
        if conn.is_idle():
            self._free.append(conn)
        else:
            self._open.discard(conn)
            await conn.aclose()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in resp.headers}
        return Reply(resp.status, headers, resp.content)

    async def aclose(self) -> None:
        for conn in list(self._open):
            with contextlib.suppress(Exception):
                await conn.aclose()
        self._open.clear()
        self._free.clear()

    async def __aenter__(self) -> Connections:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
