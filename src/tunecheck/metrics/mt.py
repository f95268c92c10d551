"""BLEU and TER through sacrebleu, resampled through their sufficient statistics.

Like chrF, both are corpus metrics: sacrebleu sums per-segment statistics and
computes the score from the sums. The per-segment statistics come from sacrebleu
itself; the score functions below are vectorised over resamples (``(B, k)`` summed
statistics -> ``B`` scores), so the paired bootstrap and the permutation test never
re-tokenise. Scores are on a 0-1 scale (sacrebleu's number / 100).

Several references per example (a list in the reference column) follow sacrebleu:
the reference streams are padded with ``None`` where an example has fewer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from tunecheck.examples import Example
from tunecheck.metrics.base import AdditiveStats, MetricScores, ScoringContext, metric
from tunecheck.metrics.options import MetricOptions, references

MAX_ORDER = 4
_LOG_ZERO = -9999999999.0  # sacrebleu.utils.my_log(0)


def reference_streams(examples: Sequence[Example]) -> list[list[str | None]]:
    """sacrebleu's reference layout: stream ``j`` holds every example's ``j``-th reference."""
    refs = [references(ex) for ex in examples]
    width = max((len(r) for r in refs), default=1)
    return [[r[j] if j < len(r) else None for r in refs] for j in range(width)]


def bleu_from_stats(stats: np.ndarray, *, effective_order: bool = False) -> np.ndarray:
    """sacrebleu's BLEU (exp smoothing, 4-grams) for each row of summed statistics, 0-1.

    A row is ``[sys_len, ref_len, correct_1..4, total_1..4]`` (sacrebleu's layout).
    ``effective_order=True`` is sacrebleu's sentence-level setting.
    """
    stats = np.atleast_2d(np.asarray(stats, dtype=float))
    sys_len, ref_len = stats[:, 0], stats[:, 1]
    correct = stats[:, 2 : 2 + MAX_ORDER]
    total = stats[:, 2 + MAX_ORDER : 2 + 2 * MAX_ORDER]
    with np.errstate(divide="ignore", invalid="ignore"):
        bp = np.where(
            sys_len < ref_len,
            np.where(sys_len > 0, np.exp(1 - ref_len / np.where(sys_len > 0, sys_len, 1)), 0.0),
            1.0,
        )
    rows = len(stats)
    smooth = np.ones(rows)
    alive = np.ones(rows, dtype=bool)  # sacrebleu stops at the first order with no n-grams
    eff = np.zeros(rows)
    logs = np.zeros((rows, MAX_ORDER))
    for n in range(MAX_ORDER):
        alive &= total[:, n] > 0
        eff += alive
        zero = alive & (correct[:, n] == 0)
        smooth = np.where(zero, smooth * 2, smooth)
        safe_total = np.where(total[:, n] > 0, total[:, n], 1.0)
        prec = np.where(zero, 100.0 / (smooth * safe_total), 100.0 * correct[:, n] / safe_total)
        logs[:, n] = np.where(alive, np.log(np.where(alive, prec, 1.0)), _LOG_ZERO)
    order = eff if effective_order else np.full(rows, float(MAX_ORDER))
    mask = np.arange(MAX_ORDER)[None, :] < order[:, None]
    mean_log = (logs * mask).sum(axis=1) / np.maximum(order, 1)
    score = bp * np.exp(mean_log)
    return np.where(correct.sum(axis=1) > 0, score, 0.0) / 100.0


def ter_from_stats(stats: np.ndarray) -> np.ndarray:
    """sacrebleu's TER for each row of summed ``[edits, ref_length]``, as a fraction (0 = best)."""
    stats = np.atleast_2d(np.asarray(stats, dtype=float))
    edits, ref_len = stats[:, 0], stats[:, 1]
    ratio = np.divide(edits, ref_len, out=np.zeros_like(edits), where=ref_len > 0)
    return np.where(ref_len > 0, ratio, np.where(edits > 0, 1.0, 0.0))


class BleuOptions(MetricOptions):
    """sacrebleu BLEU options (defaults: sacrebleu's, i.e. 13a tokenisation, cased)."""

    tokenize: Literal["13a", "none", "intl", "char", "zh", "ja-mecab", "ko-mecab", "flores101", "flores200"] = "13a"  # fmt: skip
    lowercase: bool = False


class TerOptions(MetricOptions):
    """sacrebleu TER options (defaults: sacrebleu's)."""

    normalized: bool = False
    no_punct: bool = False
    asian_support: bool = False
    case_sensitive: bool = False


def _corpus(
    name: str,
    examples: Sequence[Example],
    stats: np.ndarray,
    per_example: np.ndarray,
    score: Any,
    details: dict[str, Any],
) -> MetricScores:
    value = float(score(stats.sum(axis=0))[0]) if len(stats) else float("nan")
    return MetricScores(
        name=name,
        value=value,
        per_example=per_example,
        example_ids=[e.id for e in examples],
        kind="corpus",
        details=details,
        corpus=AdditiveStats(stats, score),
    )


def _segment_stats(scorer: Any, outputs: Sequence[str], examples: Sequence[Example]) -> np.ndarray:
    hyps = [str(o) for o in outputs]
    if not hyps:
        return np.zeros((0, 0))
    # sacrebleu has no public per-segment statistics API; this is what corpus_score sums
    raw = scorer._extract_corpus_statistics(hyps, reference_streams(examples))
    return np.asarray(raw, dtype=float).reshape(len(hyps), -1)


@metric("bleu", kind="corpus", reference=True, options=BleuOptions, length_sensitive=True)
def bleu(outputs: Sequence[str], examples: Sequence[Example], ctx: ScoringContext) -> MetricScores:
    """Corpus BLEU (sacrebleu defaults), 0-1; per example: sentence BLEU (effective order).

    The aggregate is sacrebleu's ``corpus_score`` from summed n-gram statistics, not
    the mean of sentence scores.
    """
    from sacrebleu.metrics import BLEU

    opts: BleuOptions = ctx.options or BleuOptions()
    scorer = BLEU(tokenize=opts.tokenize, lowercase=opts.lowercase)
    stats = _segment_stats(scorer, outputs, examples)
    per_example = bleu_from_stats(stats, effective_order=True) if len(stats) else np.zeros(0)
    return _corpus(
        "bleu", examples, stats, per_example, bleu_from_stats,
        {"scale": "0-1 (sacrebleu BLEU / 100)", "signature": str(scorer.get_signature())},
    )  # fmt: skip


@metric(
    "ter",
    higher_is_better=False,
    kind="corpus",
    reference=True,
    options=TerOptions,
    length_sensitive=True,
)
def ter(outputs: Sequence[str], examples: Sequence[Example], ctx: ScoringContext) -> MetricScores:
    """Translation edit rate (sacrebleu TER) as a fraction: edits per reference word, LOWER is better.

    Corpus-level: total edits / total reference length, as sacrebleu's ``corpus_score``.
    """
    from sacrebleu.metrics import TER

    opts: TerOptions = ctx.options or TerOptions()
    scorer = TER(
        normalized=opts.normalized,
        no_punct=opts.no_punct,
        asian_support=opts.asian_support,
        case_sensitive=opts.case_sensitive,
    )
    stats = _segment_stats(scorer, outputs, examples)
    per_example = ter_from_stats(stats) if len(stats) else np.zeros(0)
    return _corpus(
        "ter", examples, stats, per_example, ter_from_stats,
        {"scale": "fraction (sacrebleu TER / 100); lower is better",
         "signature": str(scorer.get_signature())},
    )  # fmt: skip
