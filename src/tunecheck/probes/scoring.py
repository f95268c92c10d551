"""Score multiple-choice probes by log-likelihood (generated answers are scored by the task
metrics in :mod:`tunecheck.metrics.answers`, like any task).

Every scorer returns per-example scores aligned with the examples it was given, plus the
secondary figures that go into :attr:`ProbeOutcome.details`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tunecheck.examples import Example
from tunecheck.metrics.answers import LETTERS
from tunecheck.models.base import LoglikelihoodRequest, LoglikelihoodResult


@dataclass
class Scored:
    """Per-example scores and chosen answers; ``invalid`` marks unparseable outputs."""

    scores: np.ndarray
    answers: list[str]
    invalid: int = 0


# ----------------------------------------------------------------------------- multiple choice


def mc_requests(examples: Sequence[Example]) -> list[LoglikelihoodRequest]:
    """One request per choice; the choices of a question share the same ``context`` string."""
    return [
        LoglikelihoodRequest(ex.meta["context"], cont, id=f"{ex.id}#{j}")
        for ex in examples
        for j, cont in enumerate(ex.meta["continuations"])
    ]


def _norm_lengths(ex: Example) -> np.ndarray:
    # lm-evaluation-harness divides by the character length of the choice text (not of the
    # delimiter-prefixed continuation); MMLU scores letters, so its lengths are the letters'
    texts = ex.meta.get("norm_texts") or ex.meta["choices"]
    return np.array([max(1, len(t)) for t in texts], dtype=float)


def score_mc_loglikelihood(
    examples: Sequence[Example], results: Sequence[LoglikelihoodResult]
) -> tuple[Scored, Scored, list[bool]]:
    """``acc`` and length-normalised ``acc_norm`` from per-choice log-probabilities.

    Returns (acc, acc_norm, ok) where ``ok[i]`` is False when any choice of example ``i``
    failed in the backend (the example is then left out by the caller). Ties go to the
    first choice, as with ``numpy.argmax`` in lm-evaluation-harness.
    """
    acc, norm, answers, norm_answers, ok = [], [], [], [], []
    pos = 0
    for ex in examples:
        k = len(ex.meta["continuations"])
        chunk = results[pos : pos + k]
        pos += k
        if any(r.error for r in chunk):
            ok.append(False)
            acc.append(0.0)
            norm.append(0.0)
            answers.append("")
            norm_answers.append("")
            continue
        lls = np.array([r.logprob for r in chunk], dtype=float)
        pred = int(np.argmax(lls))
        pred_norm = int(np.argmax(lls / _norm_lengths(ex)))
        gold = int(ex.meta["gold"])
        ok.append(True)
        acc.append(float(pred == gold))
        norm.append(float(pred_norm == gold))
        answers.append(LETTERS[pred])
        norm_answers.append(LETTERS[pred_norm])
    if pos != len(results):
        raise ValueError(f"{len(results)} loglikelihood results for {pos} choices")
    return Scored(np.array(acc), answers), Scored(np.array(norm), norm_answers), ok
