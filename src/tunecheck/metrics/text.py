"""Text metrics: normalised exact match, numeric-answer match, chrF.

chrF shows how a corpus text metric plugs in: per-example sentence scores for the
per-example view, plus per-example n-gram statistics whose sums give the corpus
score, so the bootstrap recomputes it on every resample without re-tokenising.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tunecheck.errors import DataError
from tunecheck.examples import Example
from tunecheck.metrics.base import AdditiveStats, MetricScores, ScoringContext, metric
from tunecheck.metrics.extraction import reference_json, values_equal
from tunecheck.metrics.numbers import numbers_match, parse_number
from tunecheck.metrics.parsers import apply_regex, normalize_text, parse_output


def reference_of(example: Example) -> Any:
    """The reference answer: ``reference``, else ``label``."""
    ref = example.reference if example.reference is not None else example.label
    if ref is None:
        raise DataError("example has no reference answer", where=f"example {example.id!r}")
    return ref


@metric("exact_match")
def exact_match(
    outputs: Sequence[str], examples: Sequence[Example], ctx: ScoringContext
) -> MetricScores:
    """The parsed output equals the reference after normalisation.

    Strings: case-folded (unless ``case_sensitive``), whitespace collapsed, surrounding
    quotes and punctuation stripped. Numbers (number parser) and JSON values (json
    parser) compare as values.
    """
    flags, invalid = [], 0
    cs = ctx.parser.case_sensitive
    for text, ex in zip(outputs, examples, strict=True):
        pred = parse_output(text, ctx.parser, ctx.labels)
        if pred is None:
            invalid += 1
            flags.append(False)
        elif ctx.parser.type == "number":
            flags.append(numbers_match(pred, parse_number(reference_of(ex))))
        elif ctx.parser.type == "json":
            flags.append(values_equal(pred, reference_json(ex)))
        else:
            flags.append(
                normalize_text(str(pred), case_sensitive=cs)
                == normalize_text(str(reference_of(ex)), case_sensitive=cs)
            )
    return MetricScores.of_flags("exact_match", flags, examples, {"invalid": invalid})


@metric("numeric_match")
def numeric_match(
    outputs: Sequence[str], examples: Sequence[Example], ctx: ScoringContext
) -> MetricScores:
    """The last number in the output equals the reference number (commas, units tolerated).

    With a regex parser the number is taken from the capture. A reference such as
    GSM8K's ``"... #### 72"`` yields its last number, 72.
    """
    flags, invalid = [], 0
    for text, ex in zip(outputs, examples, strict=True):
        ref = parse_number(reference_of(ex))
        if ref is None:
            raise DataError(
                f"reference {reference_of(ex)!r} contains no number", where=f"example {ex.id!r}"
            )
        source = text
        if ctx.parser.type == "regex" and ctx.parser.pattern:
            source = apply_regex(text, ctx.parser.pattern) or ""
        pred = parse_number(source)
        if pred is None:
            invalid += 1
        flags.append(pred is not None and numbers_match(pred, ref))
    return MetricScores.of_flags("numeric_match", flags, examples, {"invalid": invalid})


def chrf_from_stats(stats: np.ndarray, *, beta: float = 2.0) -> np.ndarray:
    """sacrebleu's chrF (default settings, effective-order smoothing) for each row of summed stats.

    ``stats`` has shape ``(B, 3 * orders)`` with [hyp, ref, match] counts per order; the
    result is in [0, 1] (sacrebleu's score / 100).
    """
    stats = np.atleast_2d(np.asarray(stats, dtype=float))
    eps = 1e-16
    hyp, ref, match = stats[:, 0::3], stats[:, 1::3], stats[:, 2::3]
    prec = np.divide(match, hyp, out=np.full_like(match, eps), where=hyp > 0)
    rec = np.divide(match, ref, out=np.full_like(match, eps), where=ref > 0)
    effective = (hyp > 0) & (ref > 0)
    n_eff = effective.sum(axis=1)
    safe = np.maximum(n_eff, 1)
    avg_prec = np.where(n_eff > 0, (prec * effective).sum(axis=1) / safe, 0.0)
    avg_rec = np.where(n_eff > 0, (rec * effective).sum(axis=1) / safe, 0.0)
    factor = beta**2
    denom = factor * avg_prec + avg_rec
    num = (1 + factor) * avg_prec * avg_rec
    return np.divide(num, denom, out=np.zeros_like(num), where=(avg_prec + avg_rec) > 0)


@metric("chrf", kind="corpus", reference=True, length_sensitive=True)
def chrf(outputs: Sequence[str], examples: Sequence[Example], ctx: ScoringContext) -> MetricScores:
    """Character n-gram F-score (sacrebleu chrF, beta 2), on a 0-1 scale.

    Corpus-level: the aggregate is computed from summed n-gram statistics, not the
    mean of sentence scores, exactly as sacrebleu's ``corpus_score``. Several
    references per example: sacrebleu's multi-reference chrF (best reference per segment).
    """
    from sacrebleu.metrics import CHRF

    from tunecheck.metrics.mt import reference_streams

    scorer = CHRF()
    hyps = [str(o) for o in outputs]
    # sacrebleu has no public per-segment statistics API; this is what corpus_score sums.
    # Its annotation omits the None padding of shorter reference lists, which it accepts.
    refs = reference_streams(examples)
    stats = (
        np.asarray(
            scorer._extract_corpus_statistics(hyps, refs),  # type: ignore[arg-type]
            dtype=np.float64,
        )
        if hyps
        else np.zeros((0, 18))
    )
    stats = stats.reshape(len(hyps), -1)
    per_example = chrf_from_stats(stats) if len(hyps) else np.zeros(0)
    value = float(chrf_from_stats(stats.sum(axis=0))[0]) if len(hyps) else float("nan")
    return MetricScores(
        name="chrf",
        value=value,
        per_example=per_example,
        example_ids=[e.id for e in examples],
        kind="corpus",
        details={"scale": "0-1 (sacrebleu chrF / 100)"},
        corpus=AdditiveStats(stats, chrf_from_stats),
    )
