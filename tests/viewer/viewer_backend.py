"""A deterministic backend whose contenders err on *different* examples (flips both ways).

``flipper:MODE`` answers an example's reference (from ``TUNECHECK_SCRIPT``) when a hash of
(prompt, mode) falls below the mode's accuracy; otherwise a wrong JSON answer, or, for one
wrong answer in four, text that is not JSON at all (an invalid output).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from tunecheck.models.base import (
    Generation,
    GenerationRequest,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    Model,
    Progress,
    backend,
)

ACCURACY = {"zero": 0.0, "prompted": 0.5, "tuned": 0.85, "tuned-early": 0.7}


def frac(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def answer(prompt: str, mode: str, reference: str | None) -> str:
    """What ``flipper:mode`` says to ``prompt`` (tests use it to know the expected flips)."""
    if reference is None:
        return "I do not know."
    h = frac(prompt + "|" + mode)
    if h < ACCURACY[mode]:
        return reference
    return "sorry, no idea" if frac(mode + "|" + prompt) < 0.25 else '{"category": "other"}'


@backend("flipper")
class FlipperModel(Model):
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.answers: dict[str, str] = json.loads(Path(os.environ["TUNECHECK_SCRIPT"]).read_text())

    @classmethod
    def from_ref(cls, target: str, **options: object) -> FlipperModel:
        return cls(target)

    @classmethod
    def fingerprint_for(cls, target: str, **options: object) -> str:
        return hashlib.sha256(f"flipper:{target}".encode()).hexdigest()

    @property
    def fingerprint(self) -> str:
        return self.fingerprint_for(self.mode)

    def generate(
        self, requests: Sequence[GenerationRequest], progress: Progress | None = None
    ) -> list[Generation]:
        out = []
        for r in requests:
            prompt = r.prompt if isinstance(r.prompt, str) else r.prompt[-1]["content"]
            out.append(Generation([answer(prompt, self.mode, self.answers.get(prompt))]))
            if progress:
                progress(1)
        return out

    def loglikelihood(
        self, requests: Sequence[LoglikelihoodRequest], progress: Progress | None = None
    ) -> list[LoglikelihoodResult]:
        return [LoglikelihoodResult(-frac(r.context + r.continuation)) for r in requests]
