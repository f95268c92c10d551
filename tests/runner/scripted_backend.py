"""A deterministic test backend: answers from a script instead of a neural network.

``scripted:MODE`` answers each request by looking up the example's reference in a
JSON answer file (``TUNECHECK_SCRIPT``) and returning it correctly for a fraction
of examples chosen by a hash, so tests know exactly what every contender scores.
Counts calls in a file so a test can see calls made by a child process.
``TUNECHECK_SCRIPT_BLOCK_AFTER=N`` makes the process stop answering once N calls are counted:
it writes ``<calls file>.blocked`` and waits forever, so a test can kill it at an exact point
(driven by that event, not by timing).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
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

ACCURACY = {"zero": 0.0, "zero-copy": 0.0, "prompted": 0.4, "tuned": 0.9}


def _frac(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


@backend("scripted")
class ScriptedModel(Model):
    #: the cache wrapper commits after every chunk of this many requests
    cache_chunk_size = 8

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.answers: dict[str, str] = json.loads(Path(os.environ["TUNECHECK_SCRIPT"]).read_text())
        self.delay = float(os.environ.get("TUNECHECK_SCRIPT_DELAY", "0"))
        self.counter = os.environ.get("TUNECHECK_SCRIPT_CALLS")
        self.block_after = int(os.environ.get("TUNECHECK_SCRIPT_BLOCK_AFTER", "0"))
        if self.counter:
            with open(self.counter + ".loads", "a") as f:
                f.write(f"{mode}\n")

    @classmethod
    def from_ref(cls, target: str, **options: object) -> ScriptedModel:
        return cls(target)

    @classmethod
    def fingerprint_for(cls, target: str, **options: object) -> str:
        return hashlib.sha256(f"scripted:{target}".encode()).hexdigest()

    @property
    def fingerprint(self) -> str:
        # "zero-copy" has other weights but the same behaviour: the indistinguishable guard case
        return hashlib.sha256(f"scripted:{self.mode}".encode()).hexdigest()

    def _answer(self, request: GenerationRequest) -> str:
        prompt = (
            request.prompt if isinstance(request.prompt, str) else request.prompt[-1]["content"]
        )
        reference = self.answers.get(prompt)
        if reference is None:
            return "I do not know."
        accuracy = ACCURACY[self.mode]
        if (
            self.mode == "prompted"
            and not isinstance(request.prompt, str)
            and len(request.prompt) > 1
        ):
            accuracy = 0.5  # the system prompt helps a little
        return reference if _frac(prompt) < accuracy else '{"category": "other"}'

    def generate(
        self, requests: Sequence[GenerationRequest], progress: Progress | None = None
    ) -> list[Generation]:
        out = []
        for r in requests:
            if self.delay:
                time.sleep(self.delay)
            out.append(Generation([self._answer(r)]))
            if self.counter:
                with open(self.counter, "a") as f:
                    f.write(f"{self.mode}\n")
                if self.block_after:
                    self._maybe_block()
            if progress:
                progress(1)
        return out

    def _maybe_block(self) -> None:
        with open(self.counter) as f:  # type: ignore[arg-type]
            calls = sum(1 for _ in f)
        if calls >= self.block_after:
            Path(str(self.counter) + ".blocked").write_text(str(calls))
            threading.Event().wait()  # until the test kills this process

    def loglikelihood(
        self, requests: Sequence[LoglikelihoodRequest], progress: Progress | None = None
    ) -> list[LoglikelihoodResult]:
        return [
            LoglikelihoodResult(-_frac(r.context + r.continuation + self.mode)) for r in requests
        ]
