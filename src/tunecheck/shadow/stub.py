"""A canned OpenAI-compatible server: try the proxy without a model, test it, load it.

``python -m tunecheck.shadow.stub --port 8001`` answers ``/v1/chat/completions`` and
``/v1/completions`` instantly (streaming too) with ``"echo: <last user text>"``.
Misbehaviour on purpose, for tests and benchmarks: ``--mode hang`` (never answers),
``error`` (500), ``reset`` (drops the connection), ``leak`` (a 500 quoting the
Authorization header, as some gateways do), ``--delay S`` (slow). ``GET /stats``
reports the requests seen: count, per ``x-test-id`` header, and the distinct
Authorization headers (so tests can prove which key reached which server).

A raw asyncio protocol (HTTP/1.1 keep-alive, Content-Length bodies), so it is never
the bottleneck of a benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import struct
import sys
from collections import Counter
from typing import Any

_REASON = {200: "OK", 404: "Not Found", 500: "Internal Server Error"}


class Stats:
    def __init__(self) -> None:
        self.requests = 0
        self.ids: Counter[str] = Counter()
        self.auth: set[str] = set()
        self.bodies: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"requests": self.requests, "ids": dict(self.ids), "auth": sorted(self.auth)}


def _response(
    status: int, body: bytes, content_type: bytes = b"application/json", extra: bytes = b""
) -> bytes:
    head = b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n" % (
        status,
        _REASON.get(status, "Error").encode(),
        content_type,
        len(body),
        extra,
    )
    return head + body


def answer_text(payload: dict[str, Any], prefix: str = "echo: ") -> str:
    """What the stub answers for a request: ``prefix`` + the last user text."""
    if "messages" in payload:
        msgs = payload.get("messages") or [{}]
        content = msgs[-1].get("content", "") if isinstance(msgs[-1], dict) else ""
    else:
        content = payload.get("prompt", "")
    return f"{prefix}{content}"


def _completion(payload: dict[str, Any], chat: bool, model: str, prefix: str) -> bytes:
    text = answer_text(payload, prefix)
    usage = {
        "prompt_tokens": 5,
        "completion_tokens": len(text.split()),
        "total_tokens": 5 + len(text.split()),
    }
    choice: dict[str, Any] = {"index": 0, "finish_reason": "stop"}
    if chat:
        choice["message"] = {"role": "assistant", "content": text}
    else:
        choice["text"] = text
    obj = {
        "id": "cmpl-stub",
        "object": "chat.completion" if chat else "text_completion",
        "created": 0,
        "model": payload.get("model", model),
        "choices": [choice],
        "usage": usage,
    }
    return json.dumps(obj).encode()


def _sse(payload: dict[str, Any], chat: bool, prefix: str) -> bytes:
    words = answer_text(payload, prefix).split(" ")
    events: list[dict[str, Any]] = []
    for i, w in enumerate(words):
        piece = w if i == 0 else " " + w
        choice: dict[str, Any] = {"index": 0, "finish_reason": None}
        if chat:
            choice["delta"] = {"content": piece}
        else:
            choice["text"] = piece
        events.append({"id": "cmpl-stub", "choices": [choice]})
    last: dict[str, Any] = {"index": 0, "finish_reason": "stop"}
    last["delta" if chat else "text"] = {} if chat else ""
    events.append(
        {
            "id": "cmpl-stub",
            "choices": [last],
            "usage": {
                "prompt_tokens": 5,
                "completion_tokens": len(words),
                "total_tokens": 5 + len(words),
            },
        }
    )
    return (
        b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"
    )


class StubProtocol(asyncio.Protocol):
    def __init__(self, server: StubServer) -> None:
        self.server = server
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._next()

    def _next(self) -> None:
        if self.busy or self.transport is None:
            return
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buf[:end].decode("latin-1").split("\r\n")
        headers = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        length = int(headers.get("content-length", "0"))
        if len(self.buf) < end + 4 + length:
            return
        body = self.buf[end + 4 : end + 4 + length]
        self.buf = self.buf[end + 4 + length :]
        method, path, _ = head[0].split(" ", 2)
        self.busy = True
        task = asyncio.ensure_future(self._handle(method, path, headers, body))
        self.server.tasks.add(task)
        task.add_done_callback(self.server.tasks.discard)

    async def _handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        srv = self.server
        assert self.transport is not None
        if method == "GET" and path == "/stats":
            self._write(_response(200, json.dumps(srv.stats.to_json()).encode()))
            return
        if method == "GET" and path == "/v1/models":
            data = {"object": "list", "data": [{"id": srv.model, "object": "model"}]}
            self._write(_response(200, json.dumps(data).encode()))
            return
        chat = path == "/v1/chat/completions"
        if method != "POST" or path not in ("/v1/chat/completions", "/v1/completions"):
            self._write(_response(404, b'{"error": {"message": "no such route"}}'))
            return
        srv.stats.requests += 1
        srv.stats.ids[headers.get("x-test-id", "")] += 1
        srv.stats.auth.add(headers.get("authorization", ""))
        if srv.mode == "hang":
            return  # never answer; the connection stays open until the client gives up
        if srv.mode == "reset":
            sock = self.transport.get_extra_info("socket")
            if sock is not None:  # RST instead of FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.close()
            return
        if srv.delay:
            await asyncio.sleep(srv.delay)
        if srv.mode == "error" or (srv.fail_every and srv.stats.requests % srv.fail_every == 0):
            self._write(_response(500, b'{"error": {"message": "the engine is overloaded"}}'))
            return
        if srv.mode == "leak":
            msg = f"upstream failed for Authorization: {headers.get('authorization', '')}"
            self._write(_response(500, json.dumps({"error": {"message": msg}}).encode()))
            return
        try:
            payload = json.loads(body)
        except ValueError:
            self._write(_response(400, b'{"error": {"message": "body is not JSON"}}'))
            return
        extra = b"x-request-id: stub-%d\r\nopenai-processing-ms: 1\r\n" % srv.stats.requests
        if payload.get("stream"):
            self._write(
                _response(200, _sse(payload, chat, srv.prefix), b"text/event-stream", extra)
            )
        else:
            self._write(
                _response(200, _completion(payload, chat, srv.model, srv.prefix), extra=extra)
            )

    def _write(self, data: bytes) -> None:
        assert self.transport is not None
        if not self.transport.is_closing():
            self.transport.write(data)
        self.busy = False
        self._next()


class StubServer:
    """The stub's state: its mode, delay, served model name and request statistics."""

    def __init__(
        self,
        mode: str = "ok",
        delay: float = 0.0,
        model: str = "stub",
        prefix: str = "echo: ",
        fail_every: int = 0,
    ) -> None:
        if mode not in ("ok", "hang", "error", "reset", "leak"):
            raise ValueError(f"unknown stub mode {mode!r}")
        self.mode = mode
        self.delay = delay
        self.model = model
        self.prefix = prefix
        self.fail_every = fail_every
        self.stats = Stats()
        self.tasks: set[asyncio.Future[None]] = set()

    async def serve(self, host: str, port: int, lifetime: float | None) -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: StubProtocol(self), host, port, backlog=1024)
        real = server.sockets[0].getsockname()[1]
        print(f"http://{host}:{real}/v1", flush=True)
        async with server:
            if lifetime:
                await asyncio.sleep(lifetime)
            else:
                await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", default="ok", choices=["ok", "hang", "error", "reset", "leak"])
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--model", default="stub")
    parser.add_argument("--prefix", default="echo: ", help="answers are PREFIX + the user text")
    parser.add_argument(
        "--fail-every", type=int, default=0, help="answer 500 to every K-th request"
    )
    parser.add_argument("--lifetime", type=float, default=None, help="exit after this many seconds")
    args = parser.parse_args(argv)
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            StubServer(args.mode, args.delay, args.model, args.prefix, args.fail_every).serve(
                args.host, args.port, args.lifetime
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
