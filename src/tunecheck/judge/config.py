"""The ``judge:`` block of a task: which model judges, in which modes, with which templates.

Validated with the rest of the spec (pydantic), so a template without its required
placeholders or a judge metric without its mode is refused before any model call,
with the spec file, line and field.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tunecheck.judge.templates import (
    DEFAULT_PAIRWISE_SYSTEM,
    DEFAULT_PAIRWISE_TEMPLATE,
    DEFAULT_RUBRIC_SYSTEM,
    DEFAULT_RUBRIC_TEMPLATE,
    PAIRWISE_OPTIONAL,
    PAIRWISE_REQUIRED,
    RUBRIC_OPTIONAL,
    RUBRIC_REQUIRED,
    check_template,
)
from tunecheck.metrics.base import METRIC_INFO, MetricInfo

RUBRIC_METRICS = ("judge_score", "judge_pass_rate")
PAIRWISE_METRICS = ("judge_win_rate",)
JUDGE_METRICS = frozenset(RUBRIC_METRICS + PAIRWISE_METRICS)
"""Metric names computed by the judge stage, not by :func:`tunecheck.metrics.score_outputs`."""

# Metadata only (they are not scoring functions): a judge's scores are length-sensitive, as
# judges are known to favour longer answers, so the verdict's length rule applies to them.
for _name in JUDGE_METRICS:
    METRIC_INFO.setdefault(_name, MetricInfo(_name, length_sensitive=True))

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CriterionSpec(_Strict):
    """One rubric criterion: a name (the key in the judge's JSON answer), what it means, a scale."""

    name: str
    description: str
    scale: Literal["1-5", "pass_fail"] = "1-5"

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError(
                f"criterion name {value!r} must be an identifier (letters, digits, _): "
                "it is the key of the judge's JSON answer"
            )
        return value


class RubricSpec(_Strict):
    """Pointwise judging: every contender's output scored on each criterion."""

    criteria: list[CriterionSpec] = Field(min_length=1)
    reference: bool = Field(False, description="show the reference answer to the judge")
    pass_score: int = Field(
        4, ge=1, le=5, description="a 1-5 criterion passes at this score or above"
    )
    template: str = DEFAULT_RUBRIC_TEMPLATE
    system: str | None = DEFAULT_RUBRIC_SYSTEM

    @field_validator("criteria")
    @classmethod
    def _unique(cls, value: list[CriterionSpec]) -> list[CriterionSpec]:
        names = [c.name for c in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"criterion names must be unique; repeated: {dupes}")
        return value

    @model_validator(mode="after")
    def _template(self) -> RubricSpec:
        required = RUBRIC_REQUIRED + (("reference",) if self.reference else ())
        check_template(self.template, required, RUBRIC_OPTIONAL, field="template")
        return self


class PairwiseSpec(_Strict):
    """Pairwise judging: the candidate vs a baseline on the same input, in both orders."""

    question: str = Field(
        "Which response follows the user's instruction better: is it more helpful, "
        "accurate, complete and clear?",
        description="what the judge is asked to decide",
    )
    reference: bool = Field(False, description="show the reference answer to the judge")
    against: Literal["strongest", "all"] = Field(
        "strongest",
        description="judge against the strongest baseline only, or every baseline "
        "(always `all` when judge_win_rate is the primary metric)",
    )
    template: str = DEFAULT_PAIRWISE_TEMPLATE
    system: str | None = DEFAULT_PAIRWISE_SYSTEM
    human_labels: str | None = Field(
        None,
        description="people's labels of these pairs (JSON lines from `tunecheck review export "
        "--format jsonl` or a filled-in `tunecheck judge export`; relative to the spec): the "
        "run then reports the judge's agreement with them",
    )

    @model_validator(mode="after")
    def _template(self) -> PairwiseSpec:
        required = PAIRWISE_REQUIRED + (("reference",) if self.reference else ())
        check_template(self.template, required, PAIRWISE_OPTIONAL, field="template")
        return self


class JudgeSpec(_Strict):
    """An LLM judge: any backend reference (``openai:...``, ``hf:...``) and one or more modes."""

    model: str
    options: dict[str, Any] = Field(default_factory=dict, description="backend options")
    max_new_tokens: int = Field(256, ge=1)
    batch_size: int = Field(
        16, ge=1, description="judge requests per backend call; each finished batch is stored"
    )
    max_error_rate: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="fail the run when more than this share of judgements cannot be parsed",
    )
    rubric: RubricSpec | None = None
    pairwise: PairwiseSpec | None = None

    @model_validator(mode="after")
    def _modes(self) -> JudgeSpec:
        if self.rubric is None and self.pairwise is None:
            raise ValueError("a judge needs at least one mode: `rubric` and/or `pairwise`")
        if ":" not in self.model:
            raise ValueError(
                f"judge model {self.model!r} must be a backend reference such as "
                "`openai:NAME@http://host:port/v1` or `hf:PATH`"
            )
        return self

    def metric_names(self) -> list[str]:
        """The metrics its modes produce."""
        names: list[str] = []
        if self.rubric is not None:
            names += RUBRIC_METRICS
        if self.pairwise is not None:
            names += PAIRWISE_METRICS
        return names


def check_task_metrics(metrics: list[str], judge: JudgeSpec | None) -> list[str]:
    """Judge metrics need their mode; configured modes add their metrics when not listed.

    Returns the task's metric list (the user's order first). Raises ``ValueError``
    (turned into a spec error naming ``task.metrics``) for a judge metric without its mode.
    """
    for name in metrics:
        if name not in JUDGE_METRICS:
            continue
        mode = "rubric" if name in RUBRIC_METRICS else "pairwise"
        if judge is None:
            raise ValueError(
                f"`metrics` lists {name!r}, which needs a `judge:` block in the task "
                f"(with a `{mode}` mode)"
            )
        if getattr(judge, mode) is None:
            raise ValueError(f"`metrics` lists {name!r}, which needs `judge.{mode}` in the task")
    if judge is None:
        return metrics
    return metrics + [m for m in judge.metric_names() if m not in metrics]
