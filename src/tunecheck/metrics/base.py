"""The metric registry and the score object every metric returns.

A metric is one decorated function::

    @metric("exact_match")
    def exact_match(outputs: list[str], examples: list[Example], ctx: ScoringContext) -> MetricScores:
        ...

It receives only the outputs the backend answered (errored examples are filtered
out by :func:`tunecheck.metrics.score_outputs`), aligned with ``examples``, and
returns per-example scores plus the corpus aggregate. Corpus-level metrics also
carry what is needed to recompute them on a resample (see :class:`ClassCodes` and
:class:`AdditiveStats`), so the paired bootstrap never has to call the metric again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from tunecheck.core.config import Parser
from tunecheck.examples import Example
from tunecheck.registry import Registry

MetricKind = Literal["binary", "continuous", "corpus"]

MetricFn = Callable[[Sequence[str], Sequence[Example], "ScoringContext"], "MetricScores"]

METRICS: Registry[MetricFn] = Registry("metric", "tunecheck.metrics")


@dataclass(frozen=True)
class MetricInfo:
    """What the rest of tunecheck must know about a metric besides its function.

    ``higher_is_better`` orients every comparison: the verdict, the strongest
    baseline, probe regressions, training curves and checkpoint ranking. ``kind``
    is the kind of scores it returns (``None``: decided per call). ``reference``:
    the metric compares outputs with each example's reference (a missing one is an
    error before any model call). ``options``: a pydantic model of the options a
    spec may pass (``{name: bertscore, model: DIR}``); ``None`` accepts none.
    ``length_sensitive``: a longer free-text output can raise the score (recall-based
    overlap, embeddings, judges): the verdict then refuses a gain that disappears at
    equal output length (:mod:`tunecheck.length`). Metrics of a parsed answer (a
    label, a number, JSON) are not: their length adjustment is reported only.
    """

    name: str
    higher_is_better: bool = True
    kind: MetricKind | None = None
    reference: bool = False
    options: type[BaseModel] | None = None
    length_sensitive: bool = False


METRIC_INFO: dict[str, MetricInfo] = {}


def metric(
    name: str,
    *,
    higher_is_better: bool = True,
    kind: MetricKind | None = None,
    reference: bool = False,
    options: type[BaseModel] | None = None,
    length_sensitive: bool = False,
) -> Callable[[MetricFn], MetricFn]:
    """Decorator registering a metric with its metadata: ``@metric("ter", higher_is_better=False)``."""
    info = MetricInfo(name, higher_is_better, kind, reference, options, length_sensitive)

    def decorate(fn: MetricFn) -> MetricFn:
        METRICS.register(name)(fn)
        METRIC_INFO[name] = info
        return fn

    return decorate


def metric_info(name: str) -> MetricInfo:
    """The metadata of a registered metric; an unknown name gets the defaults (higher is better)."""
    return METRIC_INFO.get(name) or MetricInfo(name)


def higher_is_better(name: str) -> bool:
    """Direction of a metric by name (registered metadata; default: higher is better)."""
    return metric_info(name).higher_is_better


def macro_f1_codes(pred: np.ndarray, gold: np.ndarray, n_classes: int) -> float:
    """Macro-F1 over the classes present in gold or (valid) predictions.

    Same result as ``sklearn.metrics.f1_score(gold, pred, average="macro")`` when
    there are no invalid predictions, and much faster (two ``bincount`` calls).
    """
    if len(gold) == 0:
        return float("nan")
    valid = pred >= 0
    tp = np.bincount(gold[valid & (pred == gold)], minlength=n_classes)
    n_pred = np.bincount(pred[valid], minlength=n_classes)
    n_true = np.bincount(gold, minlength=n_classes)
    denom = n_pred + n_true
    present = denom > 0
    return float(np.sum(2 * tp[present] / denom[present]) / present.sum())


@dataclass
class ClassCodes:
    """Integer-coded classification outcomes: enough to recompute macro-F1 on any resample.

    ``predictions`` is ``-1`` where the output mapped to no label (invalid: always
    wrong, and not a class of its own in the macro average).
    """

    predictions: np.ndarray
    labels: np.ndarray
    classes: list[str]

    def take(self, idx: np.ndarray) -> ClassCodes:
        return ClassCodes(self.predictions[idx], self.labels[idx], self.classes)


@dataclass
class AdditiveStats:
    """Per-example sufficient statistics whose column sums determine a corpus metric.

    ``score`` maps summed statistics of shape ``(B, k)`` to ``B`` metric values, so a
    resample is a weighted sum (chrF, BLEU, corpus precision/recall...).
    """

    stats: np.ndarray
    score: Callable[[np.ndarray], np.ndarray]

    def take(self, idx: np.ndarray) -> AdditiveStats:
        return AdditiveStats(self.stats[idx], self.score)


@dataclass
class MetricScores:
    """One metric for one contender on one task.

    ``per_example`` (float) is aligned with ``example_ids``. ``kind`` tells the
    statistics which paired test fits: ``binary`` (0/1 per example: McNemar),
    ``continuous`` (sign-flip permutation) or ``corpus`` (the aggregate is not a
    mean of ``per_example``: resampled through ``corpus``). ``details`` holds
    JSON-ready extras (per-class scores, confusion matrix, invalid count...).
    """

    name: str
    value: float
    per_example: np.ndarray
    example_ids: list[str]
    kind: MetricKind
    details: dict[str, Any] = field(default_factory=dict)
    corpus: ClassCodes | AdditiveStats | None = None
    higher_is_better: bool = True

    def __post_init__(self) -> None:
        self.per_example = np.asarray(self.per_example, dtype=float)
        if len(self.per_example) != len(self.example_ids):
            raise ValueError(
                f"metric {self.name!r}: {len(self.per_example)} scores for "
                f"{len(self.example_ids)} example ids"
            )
        if self.kind == "corpus" and self.corpus is None:
            raise ValueError(f"corpus metric {self.name!r} needs `corpus` data to be resampled")

    @classmethod
    def of_flags(
        cls,
        name: str,
        flags: Sequence[bool] | np.ndarray,
        examples: Sequence[Example],
        details: dict[str, Any] | None = None,
    ) -> MetricScores:
        """A 0/1 metric: one right/wrong flag per example, the value their mean (NaN when
        there are no examples)."""
        scores = np.asarray(flags, dtype=float)
        return cls(
            name=name,
            value=float(scores.mean()) if len(scores) else float("nan"),
            per_example=scores,
            example_ids=[e.id for e in examples],
            kind="binary",
            details=details or {},
        )

    @property
    def n(self) -> int:
        return len(self.example_ids)

    def subset(self, ids: Sequence[str]) -> MetricScores:
        """The same metric restricted to ``ids`` (in that order), value recomputed."""
        pos = {eid: i for i, eid in enumerate(self.example_ids)}
        idx = np.fromiter((pos[i] for i in ids), dtype=np.int64, count=len(ids))
        corpus = self.corpus.take(idx) if self.corpus is not None else None
        per_example = self.per_example[idx]
        return MetricScores(
            name=self.name,
            value=corpus_value(per_example, corpus),
            per_example=per_example,
            example_ids=list(ids),
            kind=self.kind,
            details={},
            corpus=corpus,
            higher_is_better=self.higher_is_better,
        )


def corpus_value(per_example: np.ndarray, corpus: ClassCodes | AdditiveStats | None) -> float:
    """The aggregate of a metric: mean of per-example scores, or the corpus recomputation."""
    if len(per_example) == 0:
        return float("nan")
    if corpus is None:
        return float(np.mean(per_example))
    if isinstance(corpus, ClassCodes):
        return macro_f1_codes(corpus.predictions, corpus.labels, len(corpus.classes))
    return float(corpus.score(corpus.stats.sum(axis=0, keepdims=True))[0])


@dataclass
class ScoringContext:
    """What a metric may need besides outputs and examples; parsed values are cached here."""

    parser: Parser
    labels: list[str] | None = None
    json_schema: dict[str, Any] | None = None
    cache: dict[str, Any] = field(default_factory=dict)
    #: the metric's validated options (its ``MetricInfo.options`` model), or ``None``
    options: Any = None
    #: every example of the task, answered or not (e.g. idf weights from all references)
    all_examples: Sequence[Example] = ()
    #: every sample per scored example (``n`` > 1), aligned with the outputs; ``None``: just those
    samples: list[list[str]] | None = None
    #: the task's code settings (:class:`~tunecheck.core.CodeSettings`) for metrics that run code
    code: Any = None

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        """Compute once per scoring call (e.g. parsed predictions shared by accuracy and F1)."""
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]
