"""The mirroring / splitting proxy behind ``tunecheck shadow``.

A plain ASGI application served by uvicorn (httptools + uvloop when installed),
talking to the upstreams through two separate keep-alive clients
(:mod:`tunecheck.shadow.upstream`), so a
candidate that hangs, resets connections or crawls can never take a connection,
a worker or a byte of the production path:

* **production** — the caller's request is forwarded unchanged (headers minus
  hop-by-hop ones, the caller's key included) and its response is relayed as it
  comes: status, headers and body, stream chunks one by one.
* **mirror** — a copy of the request (the candidate's key instead of the caller's,
  ``model`` rewritten when asked) is put on a bounded queue *before* production is
  called; a fixed pool of workers sends it to the candidate. A full queue drops
  the copy (counted in the log as ``dropped``); production is never delayed.
* **split** — with ``--split F`` a sticky share ``F`` of users is served by the
  candidate instead, and the assignment is logged with each request.

Everything that reaches the log goes through :mod:`tunecheck.shadow.log` on a
background thread; keys never do.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import random
import signal
import socket
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tunecheck.errors import TunecheckError
from tunecheck.shadow.config import ShadowConfig, assign_variant
from tunecheck.shadow.log import ShadowLog, SideResult
from tunecheck.shadow.payload import (
    Answer,
    decode_body,
    parse_answer,
    request_fingerprint,
    scrub,
)
from tunecheck.shadow.upstream import Response, Upstream

ENDPOINTS = {"/v1/chat/completions": "chat", "/v1/completions": "completions"}
_HOP = {
    b"connection",
    b"keep-alive",
    b"proxy-authenticate",
    b"proxy-authorization",
    b"te",
    b"trailer",
    b"trailers",
    b"transfer-encoding",
    b"upgrade",
    b"host",
    b"content-length",
}
# credentials of the caller: they go to production only
_CREDENTIALS = {
    b"authorization",
    b"api-key",
    b"x-api-key",
    b"openai-organization",
    b"openai-project",
    b"cookie",
}

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


class ProductionUnreachable(TunecheckError):
    """The production endpoint does not answer at start: the proxy would fail every call."""


@dataclass
class _Job:
    request_id: str
    path: str
    headers: list[tuple[bytes, bytes]]
    body: bytes


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for k, v in headers:
        if k.lower() == name:
            return v.decode("latin-1")
    return None


def _field(payload: dict[str, Any], path: str) -> Any:
    value: Any = payload
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class ShadowApp:
    """The ASGI application. ``log`` receives every request; ``config`` decides routing."""

    def __init__(self, config: ShadowConfig, log: ShadowLog) -> None:
        self.config = config
        self.log = log
        self.prod = Upstream(config.production_url)
        self.cand = Upstream(config.candidate_url)
        self.queue: asyncio.Queue[_Job] | None = None
        self.workers: list[asyncio.Task[None]] = []
        self.rng = random.Random(config.seed)
        self.secrets = tuple(s for s in (config.candidate_api_key,) if s)
        self.counts = {"requests": 0, "mirrored": 0, "dropped": 0}
        self._cand_auth = (
            [(b"authorization", f"Bearer {config.candidate_api_key}".encode())]
            if config.candidate_api_key
            else []
        )

    # ---------------------------------------------------------------- ASGI
    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        path = scope["path"]
        if scope["method"] == "POST" and path in ENDPOINTS:
            await self._completion(scope, body, send)
        else:
            await self._passthrough(scope, body, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.queue = asyncio.Queue(self.config.queue_size)
                self.workers = [
                    asyncio.create_task(self._mirror_worker())
                    for _ in range(self.config.mirror_concurrency)
                ]
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._shutdown(self.config.shutdown_grace)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _shutdown(self, grace: float = 5.0) -> None:
        if self.queue is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.queue.join(), grace)
        for task in self.workers:
            task.cancel()
        await asyncio.gather(*self.workers, return_exceptions=True)
        await self.prod.aclose()
        await self.cand.aclose()

    # ------------------------------------------------------------- routing
    @staticmethod
    def _upstream_path(scope: dict[str, Any]) -> str:
        """The path relative to the upstream base URL (which ends in ``/v1``)."""
        path = scope["path"]
        suffix = path[3:] if path.startswith("/v1/") else path
        qs = scope.get("query_string") or b""
        return suffix + (f"?{qs.decode('latin-1')}" if qs else "")

    def _headers(self, scope: dict[str, Any], *, candidate: bool) -> list[tuple[bytes, bytes]]:
        out = [(k, v) for k, v in scope["headers"] if k not in _HOP]
        if candidate:
            out = [(k, v) for k, v in out if k not in _CREDENTIALS] + self._cand_auth
        return out

    def _candidate_body(self, payload: dict[str, Any] | None, body: bytes) -> bytes:
        if payload is None or not self.config.candidate_model:
            return body
        return json.dumps({**payload, "model": self.config.candidate_model}).encode()

    def _unit(self, scope: dict[str, Any], payload: dict[str, Any] | None) -> str | None:
        value = _header(scope["headers"], self.config.user_header.encode())
        if value is None and payload is not None and self.config.user_field:
            found = _field(payload, self.config.user_field)
            value = None if found is None else str(found)
        return value or None

    async def _completion(self, scope: dict[str, Any], body: bytes, send: Send) -> None:
        cfg = self.config
        request_id = uuid.uuid4().hex
        self.counts["requests"] += 1
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            payload = None
        if not isinstance(payload, dict):
            payload = None
        unit = self._unit(scope, payload)
        variant = "production"
        if cfg.mode == "split" and unit is not None:
            variant = assign_variant(unit, cfg.split or 0.0, cfg.experiment)
        mirror = "off"
        job = None
        if cfg.mode == "mirror":
            if payload is None:
                mirror = "unparsable"
            elif cfg.mirror_fraction < 1.0 and self.rng.random() >= cfg.mirror_fraction:
                mirror = "not_sampled"
            else:
                job = _Job(
                    request_id,
                    self._upstream_path(scope),
                    self._headers(scope, candidate=True),
                    self._candidate_body(payload, body),
                )
                mirror = "pending"
        req_sha, req_chars = request_fingerprint(payload, body)
        self.log.begin(
            {
                "id": request_id,
                "endpoint": ENDPOINTS[scope["path"]],
                "stream": bool(payload and payload.get("stream") is True),
                "model": str(payload.get("model"))[:200] if payload else None,
                "variant": variant,
                "unit_id": unit[:200] if unit else None,
                "mirror": mirror if job is None else "pending",
                "request": payload if (cfg.keep_content and payload is not None) else None,
                "request_sha256": req_sha,
                "request_chars": req_chars,
            }
        )
        if job is not None:
            assert self.queue is not None
            try:
                self.queue.put_nowait(job)
                self.counts["mirrored"] += 1
            except asyncio.QueueFull:
                self.counts["dropped"] += 1
                self.log.mark_mirror(request_id, "dropped")
        if variant == "candidate":
            result = await self._relay(
                self.cand,
                self._upstream_path(scope),
                self._headers(scope, candidate=True),
                self._candidate_body(payload, body),
                send,
            )
            self.log.finish(request_id, "cand", result)
        else:
            result = await self._relay(
                self.prod,
                self._upstream_path(scope),
                self._headers(scope, candidate=False),
                body,
                send,
            )
            self.log.finish(request_id, "prod", result)

    async def _passthrough(self, scope: dict[str, Any], body: bytes, send: Send) -> None:
        """Other routes (``/v1/models``...) go to production unchanged and are not logged."""
        await self._relay(
            self.prod,
            self._upstream_path(scope),
            self._headers(scope, candidate=False),
            body,
            send,
            method=scope["method"],
            parse=False,
        )

    # ------------------------------------------------------------ upstream
    async def _relay(
        self,
        upstream: Upstream,
        path: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        send: Send,
        *,
        method: str = "POST",
        parse: bool = True,
    ) -> SideResult:
        """Send to an upstream and relay its answer to the caller as it arrives."""
        start = time.perf_counter()
        ttfb = None
        started = False
        status: int | None = None
        chunks: list[bytes] = []
        resp = None
        try:
            async with asyncio.timeout(self.config.production_timeout):
                resp = await upstream.send(method, path, headers, body)
                status = resp.status
                out_headers = [(k, v) for k, v in resp.headers if k not in _HOP]
                if "text/event-stream" not in (resp.header(b"content-type") or ""):
                    data = await resp.read()
                    ttfb = (time.perf_counter() - start) * 1000
                    chunks.append(data)
                    out_headers.append((b"content-length", b"%d" % len(data)))
                    await send(
                        {"type": "http.response.start", "status": status, "headers": out_headers}
                    )
                    started = True
                    await send({"type": "http.response.body", "body": data})
                else:
                    await send(
                        {"type": "http.response.start", "status": status, "headers": out_headers}
                    )
                    started = True
                    async for chunk in resp.chunks():
                        if ttfb is None:
                            ttfb = (time.perf_counter() - start) * 1000
                        chunks.append(chunk)
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    await send({"type": "http.response.body", "body": b""})
        except (Exception, asyncio.CancelledError) as err:  # refused / reset / timeout upstream
            if resp is not None:
                Upstream.abandon(resp)
            if isinstance(err, asyncio.CancelledError):
                raise
            latency = (time.perf_counter() - start) * 1000
            what = "timeout" if isinstance(err, TimeoutError) else type(err).__name__
            message = scrub(f"{what}: {err}".rstrip(": "), self.secrets)
            if not started:
                payload = {
                    "error": {
                        "message": f"tunecheck shadow: upstream failed: {message}",
                        "type": "upstream_error",
                        "code": 502,
                    }
                }
                data = json.dumps(payload).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 502,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", b"%d" % len(data)),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": data})
            else:
                with contextlib.suppress(Exception):
                    await send({"type": "http.response.body", "body": b""})
            return SideResult(status, latency, ttfb, Answer(error=f"upstream failed: {message}"))
        latency = (time.perf_counter() - start) * 1000
        if not parse:
            return SideResult(status, latency, ttfb, Answer())
        return SideResult(status, latency, ttfb, self._answer(b"".join(chunks), resp))

    def _answer(self, body: bytes, resp: Response) -> Answer:
        data = decode_body(body, resp.header(b"content-encoding"))
        answer = parse_answer(data, resp.status, resp.header(b"content-type"))
        if answer.error:
            answer.error = scrub(answer.error, self.secrets)
        return answer

    async def _collect(self, job: _Job) -> SideResult:
        """Call the candidate for a mirror copy and read the whole answer (nobody waits)."""
        start = time.perf_counter()
        ttfb = None
        chunks: list[bytes] = []
        resp = await self.cand.send("POST", job.path, job.headers, job.body)
        try:
            async for chunk in resp.chunks():
                if ttfb is None:
                    ttfb = (time.perf_counter() - start) * 1000
                chunks.append(chunk)
        finally:
            Upstream.abandon(resp)
        latency = (time.perf_counter() - start) * 1000
        return SideResult(resp.status, latency, ttfb, self._answer(b"".join(chunks), resp))

    async def _mirror_worker(self) -> None:
        assert self.queue is not None
        while True:
            job = await self.queue.get()
            start = time.perf_counter()
            try:
                try:
                    async with asyncio.timeout(self.config.candidate_timeout):
                        result = await self._collect(job)
                except TimeoutError:
                    result = SideResult(
                        None,
                        (time.perf_counter() - start) * 1000,
                        None,
                        Answer(error=f"timeout after {self.config.candidate_timeout:g} s"),
                    )
                except Exception as err:  # reset, refused, protocol error: all logged, none raised
                    message = scrub(f"{type(err).__name__}: {err}".rstrip(": "), self.secrets)
                    result = SideResult(
                        None,
                        (time.perf_counter() - start) * 1000,
                        None,
                        Answer(error=f"upstream failed: {message}"),
                    )
                self.log.finish(job.request_id, "cand", result)
                self.log.mark_mirror(job.request_id, "done")
            finally:
                self.queue.task_done()


async def _read_body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(parts)


# ------------------------------------------------------------------ serving


class _Stopped(Exception):
    pass


def _stop_signal(_sig: int, _frame: Any) -> None:
    raise _Stopped


def check_reachable(url: str, *, timeout: float = 5.0) -> str | None:
    """None when an HTTP server answers at ``url`` (any status), else why not."""
    import httpx

    try:
        httpx.get(url.rstrip("/") + "/models", timeout=timeout)
    except httpx.HTTPError as err:
        return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    return None


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        # listen now, so connections made as soon as the address is printed wait in the
        # backlog until the server accepts them instead of being refused
        sock.listen(2048)
    except OSError as err:
        sock.close()
        raise TunecheckError(
            f"cannot listen on {host}:{port}: {err}", hint="pick another --port"
        ) from None
    return sock


def serve(
    config: ShadowConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 8400,
    store_url: str | None = None,
    echo: Callable[[str], None] = print,
) -> None:
    """Check production, open the log, then serve until SIGINT/SIGTERM."""
    import uvicorn

    problem = check_reachable(config.production_url)
    if problem:
        raise ProductionUnreachable(
            f"production endpoint {config.production_url} is unreachable ({problem}); "
            "the proxy would fail every request, so it does not start",
            where="--production",
            hint="start the production server first or fix the URL (it must end in /v1)",
        )
    problem = check_reachable(config.candidate_url)
    if problem:
        echo(
            f"warning: candidate {config.candidate_url} is unreachable now ({problem}); "
            "mirrors will be logged as errors until it answers"
        )
    log = ShadowLog(store_url, keep_content=config.keep_content)
    session = log.open_session(
        mode=config.mode,
        production_url=config.production_url,
        candidate_url=config.candidate_url,
        config=config.public(),
    )
    sock = bind(host, port)
    real_port = sock.getsockname()[1]
    app = ShadowApp(config, log)
    kwargs: dict[str, Any] = {}
    with contextlib.suppress(ImportError):
        import uvloop  # noqa: F401

        kwargs["loop"] = "uvloop"
    with contextlib.suppress(ImportError):
        import httptools  # noqa: F401

        kwargs["http"] = "httptools"
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            lifespan="on",
            log_level="warning",
            access_log=False,
            server_header=False,
            date_header=False,
            timeout_keep_alive=30,
            **kwargs,
        )
    )
    what = (
        f"mirroring {config.mirror_fraction:.0%} to {config.candidate_url}"
        if config.mode == "mirror"
        else f"serving {config.split:.0%} of users from {config.candidate_url}"
    )
    echo(
        f"tunecheck shadow: session {session}: listening on http://{host}:{real_port}/v1, "
        f"production {config.production_url}, {what}"
    )
    sys.stdout.flush()
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal to the
    # previous handler: catch it here so the log is flushed and the summary printed
    previous = signal.signal(signal.SIGTERM, _stop_signal)
    # everything imported so far lives as long as the process: keep it out of the
    # garbage collector's full passes, which otherwise show up as latency spikes
    gc.collect()
    gc.freeze()
    try:
        server.run(sockets=[sock])
    except (_Stopped, KeyboardInterrupt):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        log.close()
        sock.close()
        echo(
            f"tunecheck shadow: session {session} stopped: {app.counts['requests']} requests, "
            f"{app.counts['mirrored']} mirrored, {app.counts['dropped']} mirrors dropped "
            "(queue full)" + (f"; the log failed: {log.failed}" if log.failed else "")
        )
