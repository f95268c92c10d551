"""Classification metrics: accuracy and macro-F1, with per-class scores and a confusion matrix.

Outputs are mapped to labels by the task's parser; an output that maps to no label
is *invalid*: wrong for accuracy, a false negative for its true class in F1, and
not a class of its own in the macro average (it would otherwise add a 0 to it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tunecheck.errors import DataError, SpecError
from tunecheck.examples import Example
from tunecheck.metrics.base import ClassCodes, MetricScores, ScoringContext, macro_f1_codes, metric
from tunecheck.metrics.parsers import normalize_text, parse_label, parse_output


def reference_label(example: Example) -> str:
    """The gold class of an example: its ``label``, else its ``reference`` as text."""
    if example.label is not None:
        return str(example.label)
    if example.reference is None:
        raise DataError(
            "classification example has neither a label nor a reference",
            where=f"example {example.id!r}",
            hint="map the label column with `fields.label` in the task spec",
        )
    return str(example.reference)


def task_labels(examples: Sequence[Example], declared: Sequence[str] | None) -> list[str]:
    """The class list: the parser's declared labels, else the distinct gold labels (sorted)."""
    if declared:
        return list(declared)
    return sorted({reference_label(e) for e in examples})


def encode(outputs: Sequence[str], examples: Sequence[Example], ctx: ScoringContext) -> ClassCodes:
    """Parse outputs to labels and integer-code predictions and gold labels."""
    if ctx.parser.type in ("number", "json"):
        raise SpecError(
            f"classification metrics need a label, raw or regex parser, not {ctx.parser.type!r}",
            where="task.parser.type",
        )
    classes = list(ctx.labels or task_labels(examples, None))
    cs = ctx.parser.case_sensitive
    index = {normalize_text(c, case_sensitive=cs): i for i, c in enumerate(classes)}
    labels = np.empty(len(examples), dtype=np.int64)
    for i, ex in enumerate(examples):
        gold = index.get(normalize_text(reference_label(ex), case_sensitive=cs))
        if gold is None:
            raise DataError(
                f"gold label {reference_label(ex)!r} is not one of the task labels {classes}",
                where=f"example {ex.id!r}",
                hint="add it to `parser.labels`, or fix the data",
            )
        labels[i] = gold
    preds = np.full(len(outputs), -1, dtype=np.int64)
    for i, text in enumerate(outputs):
        if ctx.parser.type == "raw":
            label = parse_label(text, classes, mode="exact", case_sensitive=cs)
        else:
            label = parse_output(text, ctx.parser, classes)
            if label is not None and ctx.parser.type == "regex" and not ctx.parser.labels:
                label = parse_label(label, classes, mode="exact", case_sensitive=cs)
        if label is not None:
            preds[i] = index[normalize_text(label, case_sensitive=cs)]
    return ClassCodes(preds, labels, classes)


def confusion_counts(pred: np.ndarray, gold: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion matrix (rows: gold, columns: predicted, last column: invalid)."""
    col = np.where(pred < 0, n_classes, pred)
    flat = np.bincount(gold * (n_classes + 1) + col, minlength=n_classes * (n_classes + 1))
    return flat.reshape(n_classes, n_classes + 1)


def class_report(codes: ClassCodes) -> dict[str, Any]:
    """Per-class precision/recall/F1/support, the confusion matrix and the invalid count."""
    k = len(codes.classes)
    cm = confusion_counts(codes.predictions, codes.labels, k)
    tp = np.diag(cm[:, :k]).astype(float)
    n_pred = cm[:, :k].sum(axis=0).astype(float)
    n_true = cm.sum(axis=1).astype(float)
    precision = np.divide(tp, n_pred, out=np.zeros(k), where=n_pred > 0)
    recall = np.divide(tp, n_true, out=np.zeros(k), where=n_true > 0)
    f1 = np.divide(2 * tp, n_pred + n_true, out=np.zeros(k), where=(n_pred + n_true) > 0)
    return {
        "classes": list(codes.classes),
        "per_class": {
            c: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(n_true[i]),
            }
            for i, c in enumerate(codes.classes)
        },
        "confusion_matrix": cm.tolist(),
        "confusion_columns": [*codes.classes, "(invalid)"],
        "invalid": int((codes.predictions < 0).sum()),
    }


def _codes(outputs: Sequence[str], examples: Sequence[Example], ctx: ScoringContext) -> ClassCodes:
    # the context caches untyped values: this key always holds what the lambda returns
    codes: ClassCodes = ctx.cached("class_codes", lambda: encode(outputs, examples, ctx))
    return codes


@metric("accuracy")
def accuracy(
    outputs: Sequence[str], examples: Sequence[Example], ctx: ScoringContext
) -> MetricScores:
    """Share of outputs whose parsed label equals the gold label."""
    codes = _codes(outputs, examples, ctx)
    correct = (codes.predictions == codes.labels).astype(float)
    return MetricScores(
        name="accuracy",
        value=float(correct.mean()) if len(correct) else float("nan"),
        per_example=correct,
        example_ids=[e.id for e in examples],
        kind="binary",
        details=class_report(codes),
    )


@metric("macro_f1")
def macro_f1(
    outputs: Sequence[str], examples: Sequence[Example], ctx: ScoringContext
) -> MetricScores:
    """Unweighted mean of per-class F1: the default when classes are imbalanced.

    A corpus metric: per-example scores are correctness (for the per-example view),
    and resamples recompute F1 from the integer codes.
    """
    codes = _codes(outputs, examples, ctx)
    return MetricScores(
        name="macro_f1",
        value=macro_f1_codes(codes.predictions, codes.labels, len(codes.classes)),
        per_example=(codes.predictions == codes.labels).astype(float),
        example_ids=[e.id for e in examples],
        kind="corpus",
        details=class_report(codes),
        corpus=codes,
    )
