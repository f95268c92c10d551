"""Task metrics: a registry of named metrics and :func:`score_outputs`, the runner's entry point.

Built in: ``accuracy``, ``macro_f1`` (classification), ``json_exact_match``,
``field_accuracy``, ``json_schema_valid`` (structured extraction), ``exact_match``,
``numeric_match`` and ``chrf`` (text), ``pass@K`` (code, run in the sandbox). A new metric is one ``@metric("name")``
function in any imported module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tunecheck.examples import Example
from tunecheck.metrics import classification, extraction, passk, text  # noqa: F401 - register metrics
from tunecheck.metrics.base import (
    METRICS,
    AdditiveStats,
    ClassCodes,
    MetricScores,
    ScoringContext,
    corpus_value,
    metric,
)
from tunecheck.metrics.classification import task_labels
from tunecheck.spec import ParserSpec

CLASSIFICATION_METRICS = frozenset({"accuracy", "macro_f1"})

__all__ = [
    "METRICS",
    "AdditiveStats",
    "ClassCodes",
    "MetricScores",
    "ScoringContext",
    "corpus_value",
    "metric",
    "score_outputs",
]


def score_outputs(
    metric_names: Sequence[str],
    outputs: Sequence[str | None],
    examples: Sequence[Example],
    parser: ParserSpec,
    *,
    json_schema: dict[str, Any] | None = None,
    samples: Sequence[Sequence[str] | None] | None = None,
    code: Any = None,
) -> dict[str, MetricScores]:
    """Score one contender's outputs with each named metric.

    ``outputs[i]`` answers ``examples[i]``; ``None`` means the backend errored for
    that example: it is left out of scoring (never counted as wrong) and counted in
    ``details["errors"]``. ``samples[i]`` (optional) holds every sample drawn for
    ``examples[i]`` (pass@k scores all of them); ``code`` is the task's code settings. The class list of classification metrics comes from the
    parser's labels or from *all* examples, so every contender is coded alike.
    """
    if len(outputs) != len(examples):
        raise ValueError(f"{len(outputs)} outputs for {len(examples)} examples")
    funcs = {name: METRICS.get(name, where="task.metrics") for name in metric_names}
    labels = parser.labels
    if labels is None and (
        parser.type == "label" or CLASSIFICATION_METRICS.intersection(metric_names)
    ):
        labels = task_labels(examples, None)
    kept = [i for i, o in enumerate(outputs) if o is not None]
    answered = [outputs[i] for i in kept]
    scored_examples = [examples[i] for i in kept]
    ctx = ScoringContext(
        parser=parser,
        labels=labels,
        json_schema=json_schema,
        samples=None if samples is None else [list(samples[i] or []) for i in kept],
        code=code,
    )
    errors = len(outputs) - len(kept)
    results: dict[str, MetricScores] = {}
    for name, fn in funcs.items():
        scores = fn(answered, scored_examples, ctx)  # type: ignore[arg-type]
        scores.name = name
        scores.details.setdefault("invalid", 0)
        scores.details["errors"] = errors
        scores.details["n"] = scores.n
        results[name] = scores
    return results
