"""A scripted OpenAI-compatible server for the judge tests (test support only).

FastAPI app served by ``UvicornThread`` from ``tests/models/openai_servers.py``. It serves
two contenders and several judges, each a model name:

* ``base`` answers briefly; ``tuned`` answers with the marker ``GOOD`` and more words;
* ``judge-fair`` prefers the response with ``GOOD`` (tie when both or neither have it)
  and grades rubric criteria 5 with ``GOOD``, else 2;
* ``judge-first`` always names response A (a position-biased judge);
* ``judge-longer`` always prefers the longer response (a verbosity-biased judge);
* ``judge-prose`` never answers in JSON; ``judge-repair`` answers prose first and valid
  JSON after the repair turn; ``judge-hang`` answers like ``judge-fair`` but blocks
  every request after ``hang_after`` until ``release`` is set (a run to be killed).

It counts requests per model (``calls``) so tests see exactly how many judge calls a
run made, also from a child process.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))

from openai_servers import UvicornThread

PAIR = re.compile(
    r"\[Response A\]\n(.*?)\n\[End of Response A\].*?\[Response B\]\n(.*?)\n\[End of Response B\]",
    re.S,
)
SINGLE = re.compile(r"\[Response\]\n(.*?)\n\[End of response\]", re.S)
CRITERION = re.compile(r"^- (\w+) \((score 1-5|pass or fail)\)", re.M)
USER = re.compile(r"\[User request\]\n(.*?)\n\[End of user request\]", re.S)


def contender_answer(model: str, prompt: str) -> str:
    if model == "base":
        return f"ok {prompt}"
    return f"GOOD answer to {prompt} with some more words"


def _pairwise_fair(a: str, b: str) -> str:
    ga, gb = "GOOD" in a, "GOOD" in b
    winner = "tie" if ga == gb else ("A" if ga else "B")
    return json.dumps({"reason": "scripted", "winner": winner})


def _rubric(text: str, prompt: str) -> str:
    good = "GOOD" in text
    scores: dict[str, Any] = {}
    for name, scale in CRITERION.findall(prompt):
        scores[name] = (5 if good else 2) if scale == "score 1-5" else ("pass" if good else "fail")
    return json.dumps({**scores, "reason": "scripted"})


def judge_answer(model: str, messages: list[dict[str, str]]) -> str:
    prompt = next(m["content"] for m in messages if m["role"] == "user")
    repaired = any(m["role"] == "assistant" for m in messages)
    if model == "judge-prose" or (model == "judge-repair" and not repaired):
        return "Both responses have merit; I would lean one way but it is hard to say."
    pair = PAIR.search(prompt)
    if pair:
        a, b = pair.group(1), pair.group(2)
        if model == "judge-first":
            return '```json\n{"winner": "A", "reason": "the first is better"}\n```'
        if model == "judge-longer":
            winner = "tie" if len(a) == len(b) else ("A" if len(a) > len(b) else "B")
            return json.dumps({"winner": winner})
        return _pairwise_fair(a, b)
    single = SINGLE.search(prompt)
    if single:
        return _rubric(single.group(1), prompt)
    return "I cannot see what to judge."


class JudgeServer:
    """The scripted server in a thread; ``url`` is its ``/v1`` root."""

    def __init__(self, hang_after: int | None = None) -> None:
        self.calls: Counter[str] = Counter()
        self.hang_after = hang_after
        self.release = threading.Event()
        self.reached = threading.Event()
        self._lock = threading.Lock()
        self._thread = UvicornThread(self._app())
        self.url = self._thread.url

    def ref(self, model: str) -> str:
        return f"openai:{model}@{self.url}"

    def judge_calls(self) -> int:
        return sum(n for m, n in self.calls.items() if m.startswith("judge"))

    def _app(self) -> Any:
        from fastapi import Body, FastAPI

        app = FastAPI()
        names = ["base", "tuned", "judge-fair", "judge-first", "judge-longer", "judge-prose",
                 "judge-repair", "judge-hang"]  # fmt: skip

        @app.get("/v1/models")
        def models() -> dict[str, Any]:
            return {
                "object": "list",
                "data": [{"id": n, "object": "model", "root": n} for n in names],
            }

        @app.post("/v1/chat/completions")
        def chat(body: dict = Body(...)) -> Any:
            model = body["model"]
            messages = body["messages"]
            with self._lock:
                self.calls[model] += 1
                count = self.calls[model]
            if model == "judge-hang" and self.hang_after is not None and count > self.hang_after:
                self.reached.set()
                self.release.wait(120)
            if model in ("base", "tuned"):
                text = contender_answer(model, messages[-1]["content"])
            else:
                text = judge_answer(model, messages)
            prompt_tokens = sum(len(m["content"].split()) for m in messages)
            return {
                "id": f"x-{count}",
                "object": "chat.completion",
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(text.split()),
                          "total_tokens": prompt_tokens + len(text.split())},
            }  # fmt: skip

        return app

    def __enter__(self) -> JudgeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._thread.stop()
