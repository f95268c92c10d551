"""Score probe outputs: multiple choice (loglikelihood or letter), numbers, reasoning answers.

Every scorer returns per-example scores aligned with the examples it was given, plus the
secondary figures that go into :attr:`ProbeOutcome.details`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tunecheck.examples import Example
from tunecheck.models.base import LoglikelihoodRequest, LoglikelihoodResult
from tunecheck.probes.answers import (
    LETTERS,
    numbers_match,
    parse_letter,
    parse_number,
    parse_numbers,
    parse_word,
)


@dataclass
class Scored:
    """Per-example scores and chosen answers; ``invalid`` marks unparseable outputs."""

    scores: np.ndarray
    answers: list[str]
    invalid: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


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


def score_mc_generated(examples: Sequence[Example], outputs: Sequence[str]) -> Scored:
    """Accuracy of the letter parsed from each generated answer; unparseable counts as wrong."""
    scores, answers, invalid = [], [], 0
    for ex, text in zip(examples, outputs, strict=True):
        choices = ex.meta["choices"]
        pick = parse_letter(text, len(choices), choices)
        if pick is None:
            invalid += 1
            answers.append("")
            scores.append(0.0)
        else:
            answers.append(LETTERS[pick])
            scores.append(float(pick == int(ex.meta["gold"])))
    return Scored(np.array(scores), answers, invalid)


# ----------------------------------------------------------------------------- numbers / answers


def score_numbers(examples: Sequence[Example], outputs: Sequence[str]) -> Scored:
    """Numeric answer match: the last number (or an explicit final answer) equals the reference."""
    scores, answers, invalid = [], [], 0
    for ex, text in zip(examples, outputs, strict=True):
        value = parse_number(text)
        if value is None:
            invalid += 1
        answers.append("" if value is None else _fmt(value))
        scores.append(float(numbers_match(value, ex.reference)))
    return Scored(np.array(scores), answers, invalid)


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def score_answers(examples: Sequence[Example], outputs: Sequence[str]) -> Scored:
    """Reasoning answers by ``meta["answer_type"]``: ``number``, ``word`` (among
    ``meta["candidates"]``) or ``list`` (the last ``len(reference)`` numbers, in order)."""
    scores, answers, invalid = [], [], 0
    for ex, text in zip(examples, outputs, strict=True):
        kind = ex.meta.get("answer_type", "number")
        if kind == "word":
            word = parse_word(text, ex.meta["candidates"])
            answer, correct = word, word is not None and word.lower() == str(ex.reference).lower()
        elif kind == "list":
            want = [float(x) for x in ex.reference]
            found = parse_numbers(text)
            got = found[-len(want) :] if len(found) >= len(want) else None
            answer = None if got is None else ", ".join(_fmt(x) for x in got)
            correct = got is not None and all(
                numbers_match(a, b) for a, b in zip(got, want, strict=True)
            )
        else:
            value = parse_number(text)
            answer = None if value is None else _fmt(value)
            correct = numbers_match(value, ex.reference)
        if answer is None:
            invalid += 1
        answers.append(answer or "")
        scores.append(float(correct))
    return Scored(np.array(scores), answers, invalid)
