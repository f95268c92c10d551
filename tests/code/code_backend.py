"""A deterministic code "model" for pipeline tests: right or wrong code per sample, by hash.

``codescripted:MODE`` looks the prompt up in ``TUNECHECK_CODE_SCRIPT`` (prompt -> reference
solution). Sample ``j`` of a request with seed ``s`` is the same text as sample 0 of seed
``s + j`` (what the cache relies on); it is the reference in a fenced block with the
probability of the mode, else a wrong program. :func:`is_correct` tells a test which.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from tunecheck.models.base import Generation, GenerationRequest, Model, Progress, backend

PASS_RATE = {"weak": 0.15, "prompted": 0.3, "tuned": 0.75}
WRONG = "```python\ndef nothing():\n    return None\n```"


def _frac(*parts: object) -> float:
    text = "|".join(str(p) for p in parts)
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def prompt_text(request: GenerationRequest) -> str:
    p = request.prompt
    return p if isinstance(p, str) else p[-1]["content"]


@backend("codescripted")
class CodeScripted(Model):
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.answers: dict[str, str] = json.loads(
            Path(os.environ["TUNECHECK_CODE_SCRIPT"]).read_text()
        )
        self.calls = 0

    @classmethod
    def from_ref(cls, target: str, **options: object) -> CodeScripted:
        return cls(target)

    @classmethod
    def fingerprint_for(cls, target: str, **options: object) -> str:
        return hashlib.sha256(f"codescripted:{target}".encode()).hexdigest()

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(f"codescripted:{self.mode}".encode()).hexdigest()

    def sample(self, prompt: str, seed: int) -> str:
        reference = self.answers.get(prompt)
        if reference is not None and _frac(self.mode, prompt, seed) < PASS_RATE[self.mode]:
            return f"Here it is:\n```python\n{reference}\n```\n"
        return WRONG

    def generate(
        self, requests: Sequence[GenerationRequest], progress: Progress | None = None
    ) -> list[Generation]:
        out = []
        for r in requests:
            self.calls += r.params.n
            prompt = prompt_text(r)
            out.append(
                Generation([self.sample(prompt, r.params.seed + j) for j in range(r.params.n)])
            )
            if progress:
                progress(1)
        return out


def is_correct(text: str) -> bool:
    return text != WRONG
