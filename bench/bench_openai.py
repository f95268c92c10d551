"""``openai`` backend throughput against a local server that answers instantly.

The server (a raw asyncio HTTP/1.1 protocol returning a canned chat completion)
runs in a separate process so it is not the bottleneck of the client under test.
Side by side in one run: tunecheck's ``OpenAIModel.generate`` (retries, adaptive
concurrency, per-request timeout, result parsing) and a plain httpx loop with a
semaphore (the floor of what any httpx client can do), both at concurrency 64.

Target: tunecheck >= 300 requests/s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time

TARGET_RPS = 300.0
N_REQUESTS = 2000
CONCURRENCY = 64
ROUNDS = 2

_BODY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": "bench",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "positive"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13},
    }
).encode()
_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(_BODY)).encode()
    + b"\r\n\r\n"
    + _BODY
)


class _InstantHTTP(asyncio.Protocol):
    """Answers every request on a keep-alive connection with the canned completion."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            start = head.find(b"content-length:")
            length = 0
            if start >= 0:
                stop = head.find(b"\r\n", start)
                length = int(head[start + 15 : stop if stop >= 0 else None])
            total = end + 4 + length
            if len(self.buf) < total:
                return
            self.buf = self.buf[total:]
            self.transport.write(_RESPONSE)  # type: ignore[attr-defined]


def _serve() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_InstantHTTP, "127.0.0.1", 0, backlog=1024)
        print(server.sockets[0].getsockname()[1], flush=True)
        # stop when the parent closes our stdin (or after 10 minutes at most)
        await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.read), timeout=600)

    with contextlib.suppress(TimeoutError, KeyboardInterrupt):
        asyncio.run(main())


def _plain_httpx(url: str, n: int) -> float:
    import httpx

    payload = {"model": "bench", "messages": [{"role": "user", "content": "x"}], "max_tokens": 8}

    async def run() -> float:
        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        async with httpx.AsyncClient(base_url=url + "/", limits=limits) as client:
            sem = asyncio.Semaphore(CONCURRENCY)

            async def one(i: int) -> str:
                async with sem:
                    body = {**payload, "messages": [{"role": "user", "content": f"review {i}"}]}
                    resp = await client.post("chat/completions", json=body)
                    return resp.json()["choices"][0]["message"]["content"]

            start = time.perf_counter()
            out = await asyncio.gather(*(one(i) for i in range(n)))
            elapsed = time.perf_counter() - start
            assert out.count("positive") == n
            return n / elapsed

    return asyncio.run(run())


def _tunecheck(url: str, n: int) -> float:
    from tunecheck.models import GenerationParams, GenerationRequest, load_model

    model = load_model(f"openai:bench@{url}", concurrency=CONCURRENCY)
    params = GenerationParams(max_new_tokens=8)
    reqs = [
        GenerationRequest(prompt=({"role": "user", "content": f"review {i}"},), params=params)
        for i in range(n)
    ]
    start = time.perf_counter()
    out = model.generate(reqs)
    elapsed = time.perf_counter() - start
    assert all(g.ok and g.text == "positive" for g in out), "wrong answers"
    assert model.stats.retries == 0
    return n / elapsed


def main() -> bool:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = f"http://127.0.0.1:{proc.stdout.readline().strip()}/v1"
        _plain_httpx(url, 200)  # warm up both paths (imports, first connections)
        _tunecheck(url, 200)
        plain, ours = [], []
        for _ in range(ROUNDS):  # interleaved so machine load hits both alike
            plain.append(_plain_httpx(url, N_REQUESTS))
            ours.append(_tunecheck(url, N_REQUESTS))
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=10)
    best_plain, best_ours = max(plain), max(ours)
    print(f"{N_REQUESTS} chat requests at concurrency {CONCURRENCY}, best of {ROUNDS}:")
    print(f"  plain httpx + semaphore : {best_plain:7.0f} req/s")
    print(
        f"  tunecheck openai backend: {best_ours:7.0f} req/s"
        f"  ({best_ours / best_plain:.2f}x plain httpx; target {TARGET_RPS:.0f}:"
        f" {best_ours / TARGET_RPS:.2f}x)"
    )
    return best_ours >= TARGET_RPS


if __name__ == "__main__":
    if "--serve" in sys.argv:
        _serve()
    else:
        sys.exit(0 if main() else 1)
