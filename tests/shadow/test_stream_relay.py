"""Streaming through the proxy: production's chunks reach the caller as production sends
them, not after the stream ends. Production here is a real uvicorn server (chunked
transfer encoding) that holds back the rest of its answer until the test has received
the first chunk through the proxy: a proxy that buffered would never show it."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from pathlib import Path

import httpx
import pytest
from shadow_procs import chat_body, rows, wait_rows

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))

PIECES = ["Hel", "lo", " wor", "ld"]


def _event(piece: str | None, finish: str | None = None) -> bytes:
    delta = {"content": piece} if piece is not None else {}
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return b"data: " + json.dumps({"id": "gated", "choices": [choice]}).encode() + b"\n\n"


FIRST = _event(PIECES[0])
REST = (
    b"".join(_event(p) for p in PIECES[1:])
    + b"data: "
    + json.dumps(
        {
            "id": "gated",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4},
        }
    ).encode()
    + b"\n\ndata: [DONE]\n\n"
)


class GatedStream:
    """An OpenAI-style streaming server whose answers pause after the first event until
    ``gate`` is set (or 30 s pass); ``released`` records, per answer, whether the gate
    (and not the fallback) let it finish."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.released: list[bool] = []

    def app(self):
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse, StreamingResponse
        from starlette.routing import Route

        async def chat(request):
            await request.json()

            async def events():
                yield FIRST
                for _ in range(3000):  # the fallback only ends a test that already failed
                    if self.gate.is_set():
                        break
                    await asyncio.sleep(0.01)
                self.released.append(self.gate.is_set())
                yield REST

            return StreamingResponse(
                events(), media_type="text/event-stream", headers={"x-request-id": "gated-1"}
            )

        async def models(request):
            return JSONResponse({"object": "list", "data": [{"id": "gated", "object": "model"}]})

        return Starlette(
            routes=[
                Route("/v1/chat/completions", chat, methods=["POST"]),
                Route("/v1/models", models),
            ]
        )


@pytest.mark.slow
def test_stream_chunks_are_relayed_as_production_sends_them(stubs, proxies, tmp_path) -> None:
    from openai_servers import UvicornThread

    gated = GatedStream()
    cand = stubs("ok")
    with UvicornThread(gated.app()) as prod:
        proxy = proxies(prod.url, cand.url)
        with httpx.Client(timeout=60) as client:
            body = chat_body("hi", stream=True)
            with client.stream("POST", proxy.url + "/chat/completions", json=body) as r:
                assert r.status_code == 200
                assert r.headers["content-type"].startswith("text/event-stream")
                assert r.headers["x-request-id"] == "gated-1"
                chunks = r.iter_raw()
                got = b""
                while b"\n\n" not in got:
                    got += next(chunks)
                # production is still holding back the rest: only the first event is here
                assert got == FIRST and not gated.released
                gated.gate.set()
                got += b"".join(chunks)
            assert got == FIRST + REST
            assert gated.released == [True]
            # the same bytes as calling production directly
            direct = client.post(prod.url + "/chat/completions", json=body)
            assert direct.content == got
        db = tmp_path / "shadow.db"
        assert wait_rows(db, "mirror = 'done'", 1) == 1
        proxy.stop()
    (row,) = rows(db)
    assert row["stream"] == 1 and row["prod_status"] == 200 and row["prod_error"] is None
    assert row["prod_text"] == "Hello world" and row["prod_completion_tokens"] == 4
    assert row["prod_ttfb_ms"] is not None and row["prod_ttfb_ms"] <= row["prod_latency_ms"]
    assert row["cand_text"] == "echo: hi" and row["cand_status"] == 200
