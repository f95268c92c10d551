"""Structured-extraction metrics: JSON exact match, field accuracy, JSON-Schema validity.

Outputs are parsed as JSON first (one code fence around the JSON is tolerated,
nothing else). Malformed JSON scores 0 on every field and is counted as invalid.

Equality is strict about JSON types (``42`` is not ``"42"``, ``true`` is not ``1``),
compares numbers with a tiny tolerance, and compares strings after collapsing
whitespace (case matters: names and ids are case-sensitive).

Extra fields: ``json_exact_match`` requires the *same* object, so an extra key
makes it wrong; ``field_accuracy`` scores only the reference's fields, so an extra
key neither adds credit nor costs any.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from tunecheck.errors import DataError, SpecError
from tunecheck.examples import Example
from tunecheck.metrics.base import MetricScores, ScoringContext, metric
from tunecheck.metrics.numbers import numbers_match
from tunecheck.metrics.parsers import parse_json


def values_equal(pred: Any, ref: Any) -> bool:
    """JSON value equality as documented in the module docstring."""
    if isinstance(ref, bool) or isinstance(pred, bool):
        return isinstance(ref, bool) and isinstance(pred, bool) and ref == pred
    if isinstance(ref, int | float) and isinstance(pred, int | float):
        return numbers_match(float(pred), float(ref))
    if isinstance(ref, str) and isinstance(pred, str):
        return " ".join(pred.split()) == " ".join(ref.split())
    if isinstance(ref, list) and isinstance(pred, list):
        return len(ref) == len(pred) and all(
            values_equal(p, r) for p, r in zip(pred, ref, strict=True)
        )
    if isinstance(ref, dict) and isinstance(pred, dict):
        return ref.keys() == pred.keys() and all(values_equal(pred[k], ref[k]) for k in ref)
    return ref is None and pred is None


def reference_json(example: Example) -> Any:
    """The reference as a JSON value; a string reference is parsed as JSON."""
    ref = example.reference
    if isinstance(ref, str):
        try:
            return json.loads(ref)
        except json.JSONDecodeError as err:
            raise DataError(
                f"reference is not valid JSON ({err.msg} at char {err.pos})",
                where=f"example {example.id!r}",
                hint="extraction references must be JSON objects or JSON strings",
            ) from None
    if ref is None:
        raise DataError("example has no reference", where=f"example {example.id!r}")
    return ref


def _parsed(outputs: Sequence[str], ctx: ScoringContext) -> list[tuple[bool, Any]]:
    # the context caches untyped values: this key always holds what the lambda returns
    parsed: list[tuple[bool, Any]] = ctx.cached("json", lambda: [parse_json(o) for o in outputs])
    return parsed


@metric("json_exact_match")
def json_exact_match(
    outputs: Sequence[str], examples: Sequence[Example], ctx: ScoringContext
) -> MetricScores:
    """1 when the output's JSON equals the reference object exactly (extra keys are wrong)."""
    parsed = _parsed(outputs, ctx)
    scores = np.array(
        [
            ok and values_equal(val, reference_json(ex))
            for (ok, val), ex in zip(parsed, examples, strict=True)
        ],
        dtype=float,
    )
    invalid = sum(not ok for ok, _ in parsed)
    return MetricScores.of_flags(
        "json_exact_match", scores, examples, {"invalid": invalid, "malformed_json": invalid}
    )


@metric("field_accuracy")
def field_accuracy(
    outputs: Sequence[str], examples: Sequence[Example], ctx: ScoringContext
) -> MetricScores:
    """Mean over the reference's fields of field equality; a missing field is wrong.

    ``details["per_field"]`` gives each field's accuracy over the examples that have it.
    """
    parsed = _parsed(outputs, ctx)
    scores = np.zeros(len(examples))
    hits: dict[str, int] = {}
    totals: dict[str, int] = {}
    not_object = 0
    for i, ((ok, val), ex) in enumerate(zip(parsed, examples, strict=True)):
        ref = reference_json(ex)
        if not isinstance(ref, dict) or not ref:
            raise DataError(
                "field_accuracy needs a non-empty JSON object as reference",
                where=f"example {ex.id!r}",
                hint="use json_exact_match or exact_match for non-object references",
            )
        if ok and not isinstance(val, dict):
            not_object += 1
        pred = val if ok and isinstance(val, dict) else {}
        right = 0
        for key, ref_val in ref.items():
            totals[key] = totals.get(key, 0) + 1
            if key in pred and values_equal(pred[key], ref_val):
                right += 1
                hits[key] = hits.get(key, 0) + 1
        scores[i] = right / len(ref)
    invalid = sum(not ok for ok, _ in parsed)
    levels = len(np.unique(scores))
    return MetricScores(
        name="field_accuracy",
        value=float(scores.mean()) if len(scores) else float("nan"),
        per_example=scores,
        example_ids=[e.id for e in examples],
        kind="binary" if levels <= 2 and set(np.unique(scores)) <= {0.0, 1.0} else "continuous",
        details={
            "per_field": {k: hits.get(k, 0) / n for k, n in sorted(totals.items())},
            "invalid": invalid,
            "malformed_json": invalid,
            "not_an_object": not_object,
        },
    )


@metric("json_schema_valid")
def json_schema_valid(
    outputs: Sequence[str], examples: Sequence[Example], ctx: ScoringContext
) -> MetricScores:
    """Share of outputs that parse as JSON and validate against the task's ``json_schema``."""
    import jsonschema

    if ctx.json_schema is None:
        raise SpecError(
            "metric json_schema_valid needs a schema",
            where="task.json_schema",
            hint="add `json_schema:` (a JSON Schema object) to the task, or drop the metric",
        )
    cls = jsonschema.validators.validator_for(ctx.json_schema)
    try:
        cls.check_schema(ctx.json_schema)
    except jsonschema.SchemaError as err:
        raise SpecError(f"invalid JSON Schema: {err.message}", where="task.json_schema") from None
    validator = cls(ctx.json_schema)
    parsed = _parsed(outputs, ctx)
    scores = np.array([ok and validator.is_valid(val) for ok, val in parsed], dtype=float)
    invalid = sum(not ok for ok, _ in parsed)
    return MetricScores.of_flags(
        "json_schema_valid",
        scores,
        examples,
        {
            "invalid": invalid,
            "malformed_json": invalid,
            "schema_invalid": int(len(scores) - scores.sum() - invalid),
        },
    )
