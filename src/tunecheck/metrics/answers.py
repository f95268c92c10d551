"""Answers to questions: multiple-choice letters, words among candidates, reasoning answers,
IFEval instructions. The parsers, and the metrics that score generated text with them.

Probes are scored through these metrics by :func:`tunecheck.metrics.score_outputs`, the path
every task takes; a task whose examples carry the same fields can name them too:

* ``choice_letter``: the letter picked among ``meta["choices"]`` is ``meta["gold"]``;
* ``answer_match``: a reasoning answer by ``meta["answer_type"]``: ``number`` (the default),
  ``word`` (among ``meta["candidates"]``) or ``list`` (the last ``len(reference)`` numbers, in
  order);
* ``prompt_level_strict_acc``, ``prompt_level_loose_acc``, ``inst_level_strict_acc``,
  ``inst_level_loose_acc``: IFEval (``meta["instruction_id_list"]``, ``meta["kwargs"]``).

Every parser returns ``None`` when it cannot find an answer; the metric scores that as wrong
and counts it as invalid. Numbers come from :mod:`tunecheck.metrics.numbers`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from tunecheck.examples import Example
from tunecheck.metrics.base import MetricScores, ScoringContext, metric
from tunecheck.metrics.numbers import numbers_match, parse_number, parse_numbers

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def parse_letter(text: str, n_choices: int, choices: Sequence[str] | None = None) -> int | None:
    """The 0-based index of the multiple-choice letter chosen in ``text``.

    Accepts "B", "(B)", "B.", "B) Paris", "The answer is B", "Answer: b", "**B**". When no
    letter is found and ``choices`` are given, a response that contains exactly one of the
    choice texts picks that choice. Anything else (no letter, several different letters) is
    ``None``.
    """
    if not text or n_choices < 1:
        return None
    valid = LETTERS[: min(n_choices, len(LETTERS))]
    cls = f"[{valid}{valid.lower()}]"
    stripped = text.strip().lstrip("*_# ").strip()
    # 1) an explicit "answer is X" / "answer: X" / "option X", the last one stated
    explicit = re.findall(
        rf"(?:answer|option|choice)\s*(?:is|would be|:)?\s*[:\-]?\s*[\*\(\[]*\s*({cls})(?![A-Za-z])",
        text,
        flags=re.IGNORECASE,
    )
    if explicit:
        return valid.index(explicit[-1].upper())
    # 2) the response opens with the letter: "B", "B.", "(b)", "B) Paris", "B: ..."
    m = re.match(rf"^[\(\[]?({cls})(?:[\)\]\.:,]|\s*$)", stripped)
    if m is None:
        # an upper-case letter followed by a space, unless it reads as the article "A"
        m = re.match(rf"^([{valid}])\s+(?![a-z])", stripped)
    if m:
        return valid.index(m.group(1).upper())
    # 3) a bracketed letter anywhere: "... is (C)"
    bracketed = {x.upper() for x in re.findall(rf"[\(\[]({cls})[\)\]]", text)}
    if len(bracketed) == 1:
        return valid.index(bracketed.pop())
    # 4) exactly one distinct stand-alone capital letter ("I think C is right"); "A"/"I"
    # followed by a lower-case word are the article and pronoun, not answers
    singles = {
        m.group(1)
        for m in re.finditer(rf"(?<![A-Za-z'])([{valid}])(?![A-Za-z'])", text)
        if not (m.group(1) in "AI" and re.match(r"\s+[a-z]", text[m.end() :]))
    }
    if len(singles) == 1:
        return valid.index(singles.pop())
    # 5) the text of exactly one choice
    if choices:
        low = text.lower()
        hits = [i for i, c in enumerate(choices) if c and c.strip().lower() in low]
        if len(hits) == 1:
            return hits[0]
    return None


def parse_word(text: str, candidates: Sequence[str]) -> str | None:
    """Which of ``candidates`` the response answers with (case-insensitive, whole words).

    "answer is X" / "Answer: X" wins; then a response that starts with a candidate; then the
    only candidate mentioned; when several are mentioned, the first one.
    """
    if not text:
        return None
    by_lower = {c.lower(): c for c in candidates}
    alternation = "|".join(re.escape(c) for c in sorted(by_lower, key=len, reverse=True))
    word = rf"(?<![\w])({alternation})(?![\w])"
    explicit = re.findall(rf"answer\s*(?:is|:)?\s*[:\-]?\s*\**\s*{word}", text, re.IGNORECASE)
    if explicit:
        return by_lower[explicit[-1].lower()]
    found = [m.group(1).lower() for m in re.finditer(word, text, re.IGNORECASE)]
    if not found:
        return None
    start = re.match(rf"^\W*{word}", text.strip(), re.IGNORECASE)
    if start:
        return by_lower[start.group(1).lower()]
    return by_lower[found[0]]


# ----------------------------------------------------------------------------- metrics


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


@metric("choice_letter", kind="binary")
def choice_letter(
    outputs: Sequence[str], examples: Sequence[Example], ctx: ScoringContext
) -> MetricScores:
    """Multiple choice answered in text: the letter parsed from the output is the gold one
    (``details["answers"]``: the letter read, ``""`` when none)."""
    flags, answers, invalid = [], [], 0
    for ex, text in zip(examples, outputs, strict=True):
        choices = ex.meta["choices"]
        pick = parse_letter(text, len(choices), choices)
        if pick is None:
            invalid += 1
        answers.append("" if pick is None else LETTERS[pick])
        flags.append(pick is not None and pick == int(ex.meta["gold"]))
    return MetricScores.of_flags(
        "choice_letter", flags, examples, {"invalid": invalid, "answers": answers}
    )


@metric("answer_match", kind="binary")
def answer_match(
    outputs: Sequence[str], examples: Sequence[Example], ctx: ScoringContext
) -> MetricScores:
    """A reasoning answer (number, word among candidates, or number list) equals the reference."""
    flags, answers, invalid = [], [], 0
    for ex, text in zip(examples, outputs, strict=True):
        kind = ex.meta.get("answer_type", "number")
        answer: str | None
        if kind == "word":
            answer = parse_word(text, ex.meta["candidates"])
            correct = answer is not None and answer.lower() == str(ex.reference).lower()
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
        flags.append(correct)
    return MetricScores.of_flags(
        "answer_match", flags, examples, {"invalid": invalid, "answers": answers}
    )


IFEVAL_METRICS = (
    "prompt_level_strict_acc",
    "prompt_level_loose_acc",
    "inst_level_strict_acc",
    "inst_level_loose_acc",
)


def _ifeval(name: str, outputs: Sequence[str], examples: Sequence[Example]) -> MetricScores:
    from tunecheck.metrics.ifeval import score_ifeval, sentence_counter

    res = score_ifeval(
        outputs,
        [ex.meta["instruction_id_list"] for ex in examples],
        [ex.meta["kwargs"] for ex in examples],
    )
    summary = res.summary()
    per = {
        "prompt_level_strict_acc": res.prompt_level_strict,
        "prompt_level_loose_acc": res.prompt_level_loose,
        # instruction level, per prompt: the fraction of its instructions followed
        "inst_level_strict_acc": np.array([np.mean(x) for x in res.inst_level_strict]),
        "inst_level_loose_acc": np.array([np.mean(x) for x in res.inst_level_loose]),
    }
    details: dict[str, Any] = dict(summary)
    details.update(
        invalid=0, sentence_counter=sentence_counter(), followed_strict=res.inst_level_strict
    )
    return MetricScores(
        name=name,
        # instruction level pools every instruction, as IFEval reports it
        value=float(summary[name]),
        per_example=np.asarray(per[name], dtype=float),
        example_ids=[e.id for e in examples],
        kind="binary" if name.startswith("prompt") else "continuous",
        details=details,
    )


def _register_ifeval(name: str) -> None:
    @metric(name, kind="binary" if name.startswith("prompt") else "continuous")
    def ifeval_metric(
        outputs: Sequence[str], examples: Sequence[Example], ctx: ScoringContext
    ) -> MetricScores:
        return _ifeval(name, outputs, examples)

    ifeval_metric.__doc__ = f"IFEval ``{name}`` (Zhou et al. 2023), as the reference computes it."


for _name in IFEVAL_METRICS:
    _register_ifeval(_name)
