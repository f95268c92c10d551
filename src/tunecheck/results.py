"""The typed result of a run: one object that every report and consumer reads.

``RunResult`` → ``TaskResult`` (per contender metrics, paired comparisons, slices,
per-example outcomes) + ``ProbeResult`` (capability regressions) + ``Verdict``.
All are pydantic models: ``RunResult.model_dump_json()`` /
``RunResult.model_validate_json()`` round-trip, and ``RunResult.model_json_schema()``
is the versioned JSON schema (``SCHEMA_VERSION``; bumped on any incompatible change).

This module is the schema only: :mod:`tunecheck.pipeline.scoring` builds these objects
from outputs and per-example scores (:func:`~tunecheck.pipeline.scoring.evaluate_task`,
:func:`~tunecheck.pipeline.scoring.probe_result`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, computed_field, field_validator, model_validator

from tunecheck import __version__
from tunecheck.core.config import Thresholds, as_thresholds
from tunecheck.flips import FlipList, task_flips
from tunecheck.judge.result import JudgeTaskResult
from tunecheck.length import LengthAdjusted, LengthStats
from tunecheck.provenance import ContenderInfo, DataInfo
from tunecheck.stats import Comparison

SCHEMA_VERSION = 2
"""Version of the RunResult JSON schema.

1: first release.
2: self-contained results: ``contenders`` (model, fingerprint, adapter and its config,
   prompt, generation parameters, redacted backend options, training configuration),
   ``data`` (data and lock hashes), ``libraries`` and, per task, ``flips`` (examples
   that flipped between the candidate and the strongest baseline). A schema-1 report
   still loads: the new blocks are empty (``flips`` is rebuilt from the examples) and
   ``meta["migrated_from_schema"]`` records the original version.
"""

__all__ = [
    "SCHEMA_VERSION",
    "BlindCheck",
    "Comparison",
    "ContenderResult",
    "ExampleOutcome",
    "FoldResult",
    "ProbeResult",
    "RunResult",
    "SliceResult",
    "TaskResult",
    "Verdict",
]


class ContenderResult(BaseModel):
    """One contender's scores on one task."""

    name: str
    metrics: dict[str, float | None] = Field(description="metric name -> corpus value")
    n: int = Field(description="examples in the task")
    n_scored: int = Field(description="examples the backend answered (scored)")
    errors: int = Field(description="examples the backend failed on (not scored)")
    invalid: int = Field(description="answered outputs that did not parse (scored as wrong)")
    error_kinds: dict[str, int] = Field(
        default_factory=dict, description="failed examples per error kind (timeout, HTTP 5xx...)"
    )
    details: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="metric -> per-class scores, confusion matrix, per-field accuracy...",
    )


class SliceResult(BaseModel):
    """Metric values of every contender on the examples tagged with one slice."""

    name: str
    n: int
    values: dict[str, dict[str, float | None]] = Field(description="contender -> metric -> value")


class ExampleOutcome(BaseModel):
    """One example: what each contender said and how each metric scored it."""

    id: str
    slices: list[str] = Field(default_factory=list)
    reference: Any = None
    outputs: dict[str, str | None] = Field(description="contender -> output (null: backend error)")
    scores: dict[str, dict[str, float | None]] = Field(
        description="contender -> metric -> per-example score (null: not scored)"
    )


class TaskResult(BaseModel):
    """A task's metrics per contender and the paired comparisons of the candidate."""

    name: str
    primary_metric: str
    metrics: list[str]
    candidate: str
    baselines: list[str]
    strongest_baseline: str = Field(description="the baseline with the best primary metric")
    n_examples: int
    contenders: list[ContenderResult]
    comparisons: list[Comparison] = Field(
        description="candidate vs each baseline, every metric; p_adjusted: Holm over all of them"
    )
    slices: list[SliceResult] = Field(default_factory=list)
    slice_comparisons: list[Comparison] = Field(
        default_factory=list,
        description="candidate vs the strongest baseline per slice and metric; Holm over all of them",
    )
    identical_outputs: dict[str, float] = Field(
        default_factory=dict,
        description="baseline -> share of examples where its output equals the candidate's",
    )
    lengths: list[LengthStats] = Field(
        default_factory=list, description="each contender's mean output length (words, tokens)"
    )
    length_adjusted: list[LengthAdjusted] = Field(
        default_factory=list,
        description="candidate vs each baseline, every metric: the gain at equal output length",
    )
    examples: list[ExampleOutcome] = Field(default_factory=list)
    must_not_regress: list[Comparison] = Field(
        default_factory=list,
        description="primary metric on the task's must_not_regress slices; Holm across them only",
    )
    folds: list[FoldResult] = Field(
        default_factory=list, description="k-fold runs: per-fold numbers (the rest is pooled)"
    )
    flips: FlipList | None = Field(
        None,
        description="examples that flipped between the candidate and the strongest baseline "
        "on the primary metric (broken: worst first; fixed: best first)",
    )

    @model_validator(mode="after")
    def _fill_flips(self) -> TaskResult:
        # schema-1 reports and hand-built results: derive the flips from the outcomes
        if self.flips is None and self.examples:
            self.flips = task_flips(self)
        return self

    def length_adjustment(
        self, metric: str | None = None, baseline: str | None = None
    ) -> LengthAdjusted | None:
        """The length-adjusted comparison for ``metric`` (default: primary) vs ``baseline``."""
        metric = metric or self.primary_metric
        baseline = baseline or self.strongest_baseline
        return next(
            (a for a in self.length_adjusted if a.metric == metric and a.baseline == baseline),
            None,
        )

    judge: JudgeTaskResult | None = Field(
        None, description="LLM-judge details: rubric means, pairwise win rates and bias, cost"
    )

    def contender(self, name: str) -> ContenderResult:
        return next(c for c in self.contenders if c.name == name)

    def comparison(self, metric: str | None = None, baseline: str | None = None) -> Comparison:
        """The comparison for ``metric`` (default: primary) vs ``baseline`` (default: strongest)."""
        metric = metric or self.primary_metric
        baseline = baseline or self.strongest_baseline
        return next(c for c in self.comparisons if c.metric == metric and c.baseline == baseline)


class ProbeResult(BaseModel):
    """Capability regression on one probe: the fine-tuned model vs the base model, paired.

    ``status`` comes from the point estimate of the relative change: a drop of at
    most ``warn`` is ``ok``, up to ``fail`` a ``warning``, beyond that ``FAIL``;
    ``uninformative`` when the probe cannot show a regression of this model (floor or
    ceiling, see ``note_uninformative``). ``significant`` says whether the change is
    beyond noise (``p_adjusted`` when the probes were Holm-adjusted together, else
    ``p_value``, below alpha). ``gate`` is the probe's role in the verdict
    (:func:`tunecheck.probe_rules.gate`). The relative interval is a paired bootstrap of
    the ratio, never below -100%; ``rel_ci_high`` null with ``rel_ci_low`` set: unbounded.
    """

    name: str
    metric: str
    n: int
    base: float | None
    finetuned: float | None
    abs_change: float | None
    rel_change: float | None = Field(description="(finetuned - base) / base")
    ci_low: float | None = Field(description="interval of the absolute change")
    ci_high: float | None
    rel_ci_low: float | None = Field(
        None, description="paired bootstrap interval of finetuned / base - 1 (never below -1)"
    )
    rel_ci_high: float | None = None
    p_value: float | None
    p_adjusted: float | None = None
    test: str
    significant: bool
    status: Literal["ok", "warning", "FAIL", "uninformative"]
    mde: float | None = None
    n_required: int | None = None
    note: str = ""
    base_name: str = "base"
    finetuned_name: str = "finetuned"
    chance: float | None = Field(None, description="score of random guessing (null: unknown)")
    note_uninformative: str = Field(
        "", description="why the probe cannot show a regression of this model (floor/ceiling)"
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def gate(self) -> str:
        """pass / regression (blocks DEPLOY) / inconclusive / uninformative: see probe_rules."""
        from tunecheck.probe_rules import gate

        return gate(self)


class BlindCheck(BaseModel):
    """The blind comparison of candidate and baseline outputs that must precede a DEPLOY.

    Filled in by a review or a judge through :func:`tunecheck.verdict_context.apply_blind_check`
    (or :func:`tunecheck.blind_check.record_blind_check` on a stored run).
    """

    required: bool = True
    n: int = Field(50, description="examples to compare blind")
    done: bool = False
    passed: bool | None = Field(None, description="did the blind check prefer the candidate")
    examples: int | None = Field(None, description="examples actually compared")
    method: str | None = Field(None, description="who compared: a person, or a judge's name")
    note: str = ""


class Verdict(BaseModel):
    """DEPLOY / ITERATE / ABANDON (or INCOMPLETE: too many failed requests to judge),
    with the reasons (numbers included) and next steps.

    ``pending_review``: the metrics say DEPLOY but the required blind check is not done
    (*DEPLOY-pending-review*; ``--fail-on iterate`` treats it as not yet DEPLOY).
    ``qualifiers`` mark a DEPLOY with what was not checked ("capabilities not checked",
    "vs an unprompted baseline").
    """

    decision: Literal["DEPLOY", "ITERATE", "ABANDON", "INCOMPLETE"]
    summary: str
    reasons: list[str]
    next_steps: list[str]
    pending_review: bool = False
    qualifiers: list[str] = Field(default_factory=list)
    blind_check: BlindCheck | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def label(self) -> str:
        """The decision as shown: ``DEPLOY-pending-review`` while the blind check is missing."""
        return f"{self.decision}-pending-review" if self.pending_review else self.decision


class FoldResult(BaseModel):
    """One fold of a k-fold run: the candidate vs the strongest baseline on that fold's test part."""

    fold: int
    n: int
    values: dict[str, float | None] = Field(description="contender -> primary metric value")
    comparison: Comparison


class RunResult(BaseModel):
    """Everything one ``tunecheck run`` concluded (the report source, stored with the run)."""

    schema_version: int = SCHEMA_VERSION
    run_id: str
    spec_name: str | None = None
    spec_hash: str | None = None
    lock_hash: str | None = None
    tool_version: str = __version__
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    candidate: str | None = None
    thresholds: Thresholds = Field(default_factory=Thresholds)
    tasks: list[TaskResult] = Field(default_factory=list)
    probes: list[ProbeResult] = Field(default_factory=list)
    verdict: Verdict | None = None
    errors: list[str] = Field(default_factory=list, description="problems met during the run")
    meta: dict[str, Any] = Field(default_factory=dict, description="free-form run metadata")
    contenders: list[ContenderInfo] = Field(
        default_factory=list, description="what exactly was compared (schema 2)"
    )
    data: list[DataInfo] = Field(
        default_factory=list, description="each task's data file and lock hashes (schema 2)"
    )
    libraries: dict[str, str] = Field(
        default_factory=dict, description="python and library versions (schema 2)"
    )

    @field_validator("thresholds", mode="before")
    @classmethod
    def _core_thresholds(cls, value: Any) -> Any:
        """The spec's ``Thresholds`` (or any object with the same fields) as the core type."""
        return value if isinstance(value, dict) else as_thresholds(value)

    @model_validator(mode="before")
    @classmethod
    def _migrate(cls, data: Any) -> Any:
        """Upgrade an older report in place of loading: schema 1 -> 2 adds empty blocks."""
        if not isinstance(data, dict):
            return data
        version = data.get("schema_version", SCHEMA_VERSION)
        if isinstance(version, int) and version > SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {version} is newer than this tunecheck reads "
                f"({SCHEMA_VERSION}); upgrade tunecheck"
            )
        if version == 1:
            data = dict(data)
            data["schema_version"] = SCHEMA_VERSION
            data["meta"] = {**(data.get("meta") or {}), "migrated_from_schema": 1}
        return data

    def contender_info(self, name: str | None = None) -> ContenderInfo | None:
        """The identity block of ``name`` (default: the candidate); None in schema-1 reports."""
        name = name or self.candidate
        return next((c for c in self.contenders if c.name == name), None)

    @property
    def training(self) -> Any:
        """The candidate's training configuration, when known."""
        info = self.contender_info()
        return info.training if info else None
