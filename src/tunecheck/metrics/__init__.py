"""Task metrics: a registry of named metrics and :func:`score_outputs`, the runner's entry point.

Built in: ``accuracy``, ``macro_f1`` (classification), ``json_exact_match``,
``field_accuracy``, ``json_schema_valid`` (structured extraction), ``exact_match``,
``numeric_match``, ``chrf``, ``bleu``, ``ter`` (text), ``rouge1``, ``rouge2``,
``rouge_l``, ``rouge_lsum`` (summaries), ``bertscore`` and ``semantic_similarity``
(embeddings), ``pass@K`` (code, run in the sandbox), ``choice_letter``, ``answer_match``
and the four IFEval accuracies (answers to questions: how probes are scored). A new metric is one ``@metric("name", higher_is_better=...)``
function in any imported module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tunecheck.core.config import ParserLike, as_code_settings, as_parser
from tunecheck.examples import Example
from tunecheck.metrics import (  # noqa: F401 - register metrics
    answers,
    classification,
    embedding,
    extraction,
    mt,
    passk,
    rouge,
    text,
)
from tunecheck.metrics.base import (
    METRIC_INFO,
    METRICS,
    AdditiveStats,
    ClassCodes,
    MetricInfo,
    MetricScores,
    ScoringContext,
    corpus_value,
    higher_is_better,
    metric,
    metric_info,
)
from tunecheck.metrics.classification import task_labels
from tunecheck.metrics.options import check_references, validate_options

CLASSIFICATION_METRICS = frozenset({"accuracy", "macro_f1"})

__all__ = [
    "METRICS",
    "METRIC_INFO",
    "AdditiveStats",
    "ClassCodes",
    "MetricInfo",
    "MetricScores",
    "ScoringContext",
    "check_references",
    "corpus_value",
    "higher_is_better",
    "metric",
    "metric_info",
    "score_outputs",
    "validate_options",
]


def score_outputs(
    metric_names: Sequence[str],
    outputs: Sequence[str | None],
    examples: Sequence[Example],
    parser: ParserLike,
    *,
    json_schema: dict[str, Any] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    where: str = "task.metrics",
    samples: Sequence[Sequence[str] | None] | None = None,
    code: Any = None,
) -> dict[str, MetricScores]:
    """Score one contender's outputs with each named metric.

    ``outputs[i]`` answers ``examples[i]``; ``None`` means the backend errored for
    that example: it is left out of scoring (never counted as wrong) and counted in
    ``details["errors"]``. ``samples[i]`` (optional) holds every sample drawn for
    ``examples[i]`` (pass@k scores all of them); ``code`` is the task's code settings.
    ``parser`` and ``code`` may be the core types or the spec's models (converted here). The class list of classification metrics comes from the
    parser's labels or from *all* examples, so every contender is coded alike.
    ``options`` maps a metric name to its options (validated against the metric's
    options model; errors name ``where``). Each score carries its metric's direction.
    """
    if len(outputs) != len(examples):
        raise ValueError(f"{len(outputs)} outputs for {len(examples)} examples")
    funcs = {name: METRICS.get(name, where=where) for name in metric_names}
    parsed = {
        name: validate_options(name, (options or {}).get(name), where=f"{where}.{name}")
        for name in metric_names
    }
    check_references(metric_names, examples, where=where)
    parser = as_parser(parser)
    labels = list(parser.labels) if parser.labels is not None else None
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
        all_examples=examples,
        samples=None if samples is None else [list(samples[i] or []) for i in kept],
        code=None if code is None else as_code_settings(code),
    )
    errors = len(outputs) - len(kept)
    results: dict[str, MetricScores] = {}
    for name, fn in funcs.items():
        ctx.options = parsed[name]
        scores = fn(answered, scored_examples, ctx)  # type: ignore[arg-type]
        scores.name = name
        info = metric_info(name)
        if info.kind is not None and scores.kind != info.kind:
            raise ValueError(
                f"metric {name!r} is registered as {info.kind} but returned {scores.kind}"
            )
        scores.higher_is_better = info.higher_is_better
        scores.details.setdefault("invalid", 0)
        scores.details["errors"] = errors
        scores.details["n"] = scores.n
        results[name] = scores
    return results
