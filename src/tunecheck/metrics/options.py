"""Metric options and reference checks, validated before any model is called.

A spec passes options to a metric in its ``metrics`` list::

    metrics: [rouge_l, {name: bertscore, model: ./encoders/minilm, idf: true}]

or per task as ``metric_options: {bertscore: {idf: true}}``. Each metric declares
its options as a pydantic model (``@metric(..., options=BertScoreOptions)``); an
unknown key, a wrong type or an encoder folder that does not exist is a
:class:`~tunecheck.errors.SpecError` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from tunecheck.errors import DataError, SpecError
from tunecheck.examples import Example
from tunecheck.metrics.base import metric_info


class MetricOptions(BaseModel):
    """Base of every metric's options: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def validate_options(name: str, raw: Mapping[str, Any] | None, *, where: str) -> Any:
    """The metric's options model filled from ``raw`` (defaults when ``raw`` is empty)."""
    info = metric_info(name)
    if info.options is None:
        if raw:
            raise SpecError(
                f"metric {name!r} takes no options (got {', '.join(sorted(raw))})", where=where
            )
        return None
    try:
        return info.options.model_validate(dict(raw or {}))
    except ValidationError as err:
        problems = []
        for e in err.errors():
            field = ".".join(str(p) for p in e["loc"])
            msg = e["msg"]
            if e["type"] == "extra_forbidden":
                msg = f"unknown option; allowed: {', '.join(info.options.model_fields)}"
            problems.append(f"{where}.{field}: {msg}" if field else f"{where}: {msg}")
        raise SpecError("invalid metric options\n  " + "\n  ".join(problems), where=None) from None


def existing_folder(value: str | None, *, what: str) -> str | None:
    """``value`` if it is an existing folder (a local encoder), else a clear ValueError."""
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise ValueError(
            f"{what} folder {value!r} does not exist; give a local folder with the model "
            "(config.json and weights): no model hub is contacted"
        )
    return str(path)


def references(example: Example) -> list[str]:
    """The example's reference texts: one, or several for a multi-reference task."""
    ref = example.reference if example.reference is not None else example.label
    if ref is None:
        return []
    if isinstance(ref, list | tuple):
        return [str(r) for r in ref if r is not None and str(r) != ""]
    return [str(ref)] if str(ref) != "" else []


def check_references(
    metric_names: Sequence[str], examples: Sequence[Example], *, where: str
) -> None:
    """Every example has a non-empty reference when a reference-based metric is asked for."""
    needing = [m for m in metric_names if metric_info(m).reference]
    if not needing:
        return
    for ex in examples:
        if not references(ex):
            raise DataError(
                f"example {ex.id!r} has no reference, but {', '.join(needing)} compare(s) "
                "each output with its reference",
                where=where,
                hint="map the reference column with `fields.reference` (a string, or a list of "
                "strings for several references), or drop the reference-based metric",
            )
