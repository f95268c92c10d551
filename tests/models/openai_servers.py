"""OpenAI-compatible servers for the ``openai`` backend tests (test support only).

* :func:`real_model_app` serves a real transformers model (the embedded SmolLM2)
  through FastAPI: ``/v1/models``, ``/v1/chat/completions``, ``/v1/completions``
  (with vLLM-style prompt logprobs for ``echo`` + ``logprobs`` + ``max_tokens=0``).
  Run it with :class:`UvicornThread`.
* :class:`FaultServer` is a raw asyncio HTTP/1.1 server that answers canned text per
  request id and injects faults on a plan: 429 with Retry-After, 500/503, a hang, a
  connection dropped before or in the middle of a response, 400, and an always
  failing answer that echoes the Authorization header back (to prove it is scrubbed).
  It counts attempts and successes per id.

Both listen on 127.0.0.1 with a free port, run in a daemon thread and stop
themselves after ``lifetime`` seconds if a test forgets to.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

_ID = re.compile(r"id=(\S+)")
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _loopback_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def closed_port_url() -> str:
    """A base URL where nothing listens (the port was bound and released)."""
    sock = _loopback_socket()
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/v1"


# --------------------------------------------------------------------------- uvicorn


class UvicornThread:
    """Serve an ASGI app on 127.0.0.1 in a daemon thread (a context manager)."""

    def __init__(self, app: Any, lifetime: float = 600.0) -> None:
        import uvicorn

        self._sock = _loopback_socket()
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        config = uvicorn.Config(app, log_level="error", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True

    def start(self) -> UvicornThread:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        self._timer.start()
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=10)
        self._timer.cancel()
        self._sock.close()

    def __enter__(self) -> UvicornThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def real_model_app(
    model: Any,
    tokenizer: Any,
    *,
    served_name: str = "smollm2",
    root: str = "",
    prompt_logprobs: bool = True,
) -> Any:
    """A FastAPI app serving ``model`` like vLLM does (greedy when temperature is 0).

    With ``prompt_logprobs=False`` it behaves like servers that ignore ``echo`` and
    ``logprobs`` (Ollama, llama.cpp server): completions come back with ``logprobs: null``.
    """
    import torch
    from fastapi import Body, FastAPI
    from fastapi.responses import JSONResponse

    tok = tokenizer
    lock = threading.Lock()  # one forward pass at a time: the model is shared with the tests
    app = FastAPI()
    eos = tok.eos_token_id

    def not_found(name: Any) -> JSONResponse:
        message = f"The model `{name}` does not exist."
        return JSONResponse(
            {"error": {"message": message, "type": "NotFoundError", "code": 404}}, status_code=404
        )

    def generate(ids: list[int], body: dict[str, Any], seed: int) -> tuple[str, int, str]:
        max_tokens = max(1, int(body.get("max_tokens") or 16))
        temperature = float(body.get("temperature") or 0.0)
        kwargs: dict[str, Any] = {"do_sample": False}
        if temperature > 0:
            torch.manual_seed(seed)
            kwargs = {
                "do_sample": True,
                "temperature": temperature,
                "top_p": body.get("top_p", 1.0),
            }
        input_ids = torch.tensor([ids])
        with lock, torch.no_grad():
            out = model.generate(
                input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_new_tokens=max_tokens,
                pad_token_id=eos,
                **kwargs,
            )
        new = out[0, len(ids) :].tolist()
        finish = "stop" if new and new[-1] == eos else "length"
        text = tok.decode(new, skip_special_tokens=True)
        stops = body.get("stop") or []
        for s in [stops] if isinstance(stops, str) else stops:
            if s in text:
                text, finish = text[: text.index(s)], "stop"
        return text, len(new), finish

    def answer(kind: str, body: dict[str, Any], ids: list[int]) -> dict[str, Any]:
        seed = int(body.get("seed") or 0)
        choices, completion = [], 0
        for i in range(int(body.get("n") or 1)):
            text, used, finish = generate(ids, body, seed + i)
            completion += used
            content = {"message": {"role": "assistant", "content": text}}
            if kind == "text_completion":
                content = {"text": text, "logprobs": None}
            choices.append({"index": i, **content, "finish_reason": finish})
        return {
            "id": f"cmpl-{time.monotonic_ns()}",
            "object": kind,
            "created": int(time.time()),
            "model": served_name,
            "choices": choices,
            "usage": {
                "prompt_tokens": len(ids),
                "completion_tokens": completion,
                "total_tokens": len(ids) + completion,
            },
        }

    def echo_logprobs(prompt: str) -> dict[str, Any]:
        ids = tok(prompt).input_ids
        with lock, torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)
        tokens = [tok.decode([i]) for i in ids]
        values: list[float | None] = [None]
        top: list[dict[str, float] | None] = [None]
        for pos in range(1, len(ids)):
            row = logp[pos - 1]
            best = int(row.argmax())
            values.append(float(row[ids[pos]]))
            # like vLLM: the top-1 alternative plus the prompt token itself
            top.append({tok.decode([best]): float(row[best]), tokens[pos]: float(row[ids[pos]])})
        offsets = [len(tok.decode(ids[:pos])) for pos in range(len(ids))]
        return {
            "id": f"cmpl-{time.monotonic_ns()}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": served_name,
            "choices": [
                {
                    "index": 0,
                    "text": prompt,
                    "logprobs": {
                        "tokens": tokens,
                        "token_logprobs": values,
                        "top_logprobs": top,
                        "text_offset": offsets,
                    },
                    "finish_reason": "length",
                }
            ],
            "usage": {"prompt_tokens": len(ids), "completion_tokens": 0, "total_tokens": len(ids)},
        }

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        entry = {"id": served_name, "object": "model", "owned_by": "tunecheck-tests", "root": root}
        return {"object": "list", "data": [entry]}

    @app.post("/v1/chat/completions")
    def chat(body: dict = Body(...)) -> Any:
        if body.get("model") != served_name:
            return not_found(body.get("model"))
        text = tok.apply_chat_template(body["messages"], tokenize=False, add_generation_prompt=True)
        ids = tok(text, add_special_tokens=False).input_ids
        return answer("chat.completion", body, ids)

    @app.post("/v1/completions")
    def completions(body: dict = Body(...)) -> Any:
        if body.get("model") != served_name:
            return not_found(body.get("model"))
        prompt = body["prompt"]
        if prompt_logprobs and body.get("echo") and body.get("logprobs") is not None:
            if int(body.get("max_tokens", 16)) != 0:
                message = "this test server scores prompts only with max_tokens=0"
                return JSONResponse({"error": {"message": message}}, status_code=400)
            return echo_logprobs(prompt)
        return answer("text_completion", body, tok(prompt).input_ids)

    return app


# --------------------------------------------------------------------------- faults

Plan = Callable[[str, int], str]
"""(request id, attempt number starting at 1) -> action: ok, 429, 500, 503, hang, drop,
drop_mid, 400, leak, error200, notjson, leak200 (a successful answer quoting the
Authorization header), or ``json:BODY`` (a 200 whose body is BODY verbatim)."""


def canned_answer(rid: str, seed: int = 0, index: int = 0) -> str:
    """What :class:`FaultServer` answers for a request id (and sample seed / choice index)."""
    return f"answer-{rid}" if (seed, index) == (0, 0) else f"answer-{rid}/seed{seed}/choice{index}"


def canned_tokens(prompt: str) -> list[str]:
    """The fake tokenizer of :class:`FaultServer`: words with their leading whitespace."""
    return re.findall(r"\s*\S+", prompt)


def canned_logprob(index: int) -> float:
    """The fake log-probability of token ``index`` (index 0 has none)."""
    return -(index + 1) / 10


class FaultServer:
    """A canned OpenAI-compatible server that injects faults on a plan (see :data:`Plan`).

    ``capacity`` makes it answer 429 (with ``Retry-After``) while that many requests
    are already in flight; ``delay`` is how long a successful answer takes.
    ``logprobs``: ``ok`` (vLLM style), ``needs_tokens`` (400 on max_tokens=0, like
    OpenAI), ``refuse`` (400 on echo), ``none`` (ignores echo/logprobs, like Ollama).
    """

    def __init__(
        self,
        plan: Plan | None = None,
        *,
        served_model: str = "fault-model",
        root: str = "/weights/fault-model",
        models_route: bool = True,
        models_errors: int = 0,
        models_retry_after: str | None = None,
        api_key: str | None = None,
        capacity: int | None = None,
        delay: float = 0.0,
        retry_after: str = "0.05",
        n_supported: bool = True,
        logprobs: str = "ok",
        lifetime: float = 300.0,
    ) -> None:
        self.plan: Plan = plan or (lambda rid, attempt: "ok")
        self.served_model = served_model
        self.root = root
        self.models_route = models_route
        self.models_errors = models_errors  # answer GET /models with 503 this many times first
        self.models_retry_after = models_retry_after  # Retry-After sent with those 503s
        self.models_calls = 0
        self.api_key = api_key
        self.capacity = capacity
        self.delay = delay
        self.retry_after = retry_after
        self.n_supported = n_supported
        self.logprobs = logprobs
        self.lifetime = lifetime
        self.attempts: Counter[str] = Counter()  # every arrival, throttled ones included
        self.planned: Counter[str] = Counter()  # arrivals that reached the plan
        self.successes: Counter[str] = Counter()  # 200 answers fully written
        self.attempt_times: defaultdict[str, list[float]] = defaultdict(list)
        self.seeds: defaultdict[str, list[int]] = defaultdict(list)
        # per distinct request body (sha256): the same request from another process or run
        self.body_attempts: Counter[str] = Counter()
        self.body_successes: Counter[str] = Counter()
        self.bodies: list[dict[str, Any]] = []
        self.throttled = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> FaultServer:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fault server did not start")
        return self

    def _main(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        server = loop.run_until_complete(asyncio.start_server(self._connection, "127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
        ready.set()
        loop.call_later(self.lifetime, loop.stop)
        try:
            loop.run_forever()
        finally:
            server.close()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- HTTP

    @staticmethod
    def _response(status: int, payload: Any, headers: dict[str, str] | None = None) -> bytes:
        body = json.dumps(payload).encode()
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}"]
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body

    @staticmethod
    def _error(status: int, message: str, headers: dict[str, str] | None = None) -> bytes:
        return FaultServer._response(status, {"error": {"message": message}}, headers)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                try:
                    raw = await reader.readexactly(length) if length else b""
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                if not await self._dispatch(method, path, headers, raw, reader, writer):
                    return
        finally:
            writer.close()

    async def _dispatch(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        raw: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Answer one request; False closes the connection."""
        if self.api_key and headers.get("authorization") != f"Bearer {self.api_key}":
            writer.write(self._error(401, "Incorrect API key provided."))
            await writer.drain()
            return True
        if method == "GET" and path == "/v1/models" and self.models_route:
            self.models_calls += 1
            if self.models_calls <= self.models_errors:
                extra = {"Retry-After": self.models_retry_after} if self.models_retry_after else {}
                writer.write(self._error(503, "warming up", extra))
                await writer.drain()
                return True
            entry = {"id": self.served_model, "object": "model", "root": self.root}
            writer.write(self._response(200, {"object": "list", "data": [entry]}))
            await writer.drain()
            return True
        if method != "POST" or path not in ("/v1/chat/completions", "/v1/completions"):
            writer.write(self._error(404, f"no route {method} {path}"))
            await writer.drain()
            return True
        body = json.loads(raw)
        self.bodies.append(body)
        body_key = hashlib.sha256(raw).hexdigest()
        if body.get("model") != self.served_model:
            message = f"The model `{body.get('model')}` does not exist"
            writer.write(self._error(404, message))
            await writer.drain()
            return True
        chat = path.endswith("chat/completions")
        prompt = body["messages"][-1]["content"] if chat else body["prompt"]
        m = _ID.search(prompt)
        rid = m.group(1) if m else ""
        self.attempts[rid] += 1
        self.attempt_times[rid].append(time.monotonic())
        if self.capacity is not None and self.in_flight >= self.capacity:
            self.throttled += 1
            headers_429 = {"Retry-After": self.retry_after}
            writer.write(self._error(429, "Rate limit reached, slow down", headers_429))
            await writer.drain()
            return True
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            self.planned[rid] += 1
            try:
                action = self.plan(rid, self.planned[rid])
            except Exception as err:  # a broken plan is a test bug: say so instead of dropping
                writer.write(self._error(500, f"test server plan failed: {err!r}"))
                await writer.drain()
                return True
            self.body_attempts[body_key] += 1
            before = self.successes[rid]
            answered = await self._act(action, rid, chat, body, headers, reader, writer)
            if self.successes[rid] > before:
                self.body_successes[body_key] += 1
            return answered
        finally:
            self.in_flight -= 1

    async def _act(
        self,
        action: str,
        rid: str,
        chat: bool,
        body: dict[str, Any],
        headers: dict[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        if action == "429":
            self.throttled += 1
            writer.write(self._error(429, "Rate limit reached", {"Retry-After": self.retry_after}))
        elif action in ("500", "503"):
            writer.write(self._error(int(action), "the engine is overloaded"))
        elif action == "400":
            writer.write(self._error(400, "This model's maximum context length is 2048 tokens"))
        elif action == "leak":
            # a badly behaved proxy that quotes the request headers in its error
            message = f"upstream failed for Authorization: {headers.get('authorization', '')}"
            writer.write(self._error(500, message))
        elif action == "leak400":  # the same, refusing the request
            message = f"bad request from Authorization: {headers.get('authorization', '')}"
            writer.write(self._error(400, message))
        elif action == "error200":  # some proxies wrap failures in a 200
            writer.write(self._response(200, {"error": {"message": "engine crashed"}}))
        elif action.startswith("json:"):  # any body at all, sent as a success
            raw = action.removeprefix("json:").encode()
            head = (
                f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(raw)}"
            )
            writer.write(head.encode() + b"\r\n\r\n" + raw)
        elif action == "leak200":  # a model that repeats its request headers in the answer
            text = f"my headers said Authorization: {headers.get('authorization', '')}"
            part = {"message": {"role": "assistant", "content": text}} if chat else {"text": text}
            payload = {"choices": [{"index": 0, **part}], "usage": {"prompt_tokens": 1}}
            writer.write(self._response(200, payload))
        elif action == "notjson":
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 10\r\n\r\n<html>oops"
            )
        elif action == "hang":
            # say nothing until the client gives up and closes the connection
            with contextlib.suppress(TimeoutError, ConnectionError):
                await asyncio.wait_for(reader.read(), timeout=30)
            return False
        elif action == "drop":
            return False
        elif action == "drop_mid":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
            writer.write(b'Content-Length: 400\r\n\r\n{"choices": [{"index": 0, "mess')
            await writer.drain()
            return False
        elif action == "ok":
            if self.delay:
                await asyncio.sleep(self.delay)
            payload = self._completion(rid, chat, body)
            if isinstance(payload, bytes):
                writer.write(payload)
                await writer.drain()
                return True
            writer.write(self._response(200, payload))
            await writer.drain()
            self.successes[rid] += 1
            return True
        else:
            raise ValueError(f"unknown fault action {action!r}")
        await writer.drain()
        return True

    def _completion(self, rid: str, chat: bool, body: dict[str, Any]) -> dict[str, Any] | bytes:
        seed = int(body.get("seed") or 0)
        self.seeds[rid].append(seed)
        if not chat and body.get("echo") and self.logprobs != "none":
            return self._echo(body)
        n = int(body.get("n") or 1) if self.n_supported else 1
        choices = []
        for i in range(n):
            text = canned_answer(rid, seed, i)
            part = {"message": {"role": "assistant", "content": text}} if chat else {"text": text}
            choices.append({"index": i, **part, "finish_reason": "stop"})
        return {
            "object": "chat.completion" if chat else "text_completion",
            "model": self.served_model,
            "choices": choices,
            "usage": {"prompt_tokens": 7, "completion_tokens": 3 * n, "total_tokens": 7 + 3 * n},
        }

    def _echo(self, body: dict[str, Any]) -> dict[str, Any] | bytes:
        if self.logprobs == "refuse":
            return self._error(400, "echo is not supported for this model")
        max_tokens = int(body.get("max_tokens", 16))
        if self.logprobs == "needs_tokens" and max_tokens < 1:
            return self._error(400, "max_tokens must be at least 1")
        prompt = body["prompt"]
        tokens = canned_tokens(prompt)
        values: list[float | None] = [None] + [canned_logprob(i) for i in range(1, len(tokens))]
        top: list[dict[str, float] | None] = [None]
        for i in range(1, len(tokens)):
            top.append({tokens[i]: canned_logprob(i)})
            if "wrong" in tokens[i]:  # not the greedy choice: something else was likelier
                top[-1][" right"] = canned_logprob(i) + 0.5
        text = prompt
        if max_tokens >= 1:
            tokens.append(" X")
            values.append(-0.05)
            top.append({" X": -0.05})
            text += " X"
        offsets, pos = [], 0
        for t in tokens:
            offsets.append(pos)
            pos += len(t)
        logprobs = {
            "tokens": tokens,
            "token_logprobs": values,
            "top_logprobs": top,
            "text_offset": offsets,
        }
        return {
            "object": "text_completion",
            "model": self.served_model,
            "choices": [
                {"index": 0, "text": text, "logprobs": logprobs, "finish_reason": "length"}
            ],
        }
