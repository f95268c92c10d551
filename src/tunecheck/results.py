"""The typed result of a run: one object that every report and consumer reads.

``RunResult`` → ``TaskResult`` (per contender metrics, paired comparisons, slices,
per-example outcomes) + ``ProbeResult`` (capability regressions) + ``Verdict``.
All are pydantic models: ``RunResult.model_dump_json()`` /
``RunResult.model_validate_json()`` round-trip, and ``RunResult.model_json_schema()``
is the versioned JSON schema (``SCHEMA_VERSION``; bumped on any incompatible change).

:func:`evaluate_task` and :func:`probe_result` turn raw outputs / per-example scores
into these objects; the runner calls them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, computed_field, model_validator

from tunecheck import __version__
from tunecheck.errors import GuardError, SpecError
from tunecheck.examples import Example
from tunecheck.flips import FlipList, task_flips
from tunecheck.judge.result import JudgeTaskResult
from tunecheck.length import LengthAdjusted, LengthStats, length_adjusted, length_stats, words_by_id
from tunecheck.metrics import MetricScores, score_outputs
from tunecheck.provenance import ContenderInfo, DataInfo
from tunecheck.spec import ParserSpec, Thresholds
from tunecheck.stats import Comparison, apply_holm, compare, compare_slices

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
    "adjust_probes",
    "evaluate_task",
    "probe_result",
]


def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _jsonable(value: Any) -> Any:
    """Details and references as plain JSON values (numpy scalars/arrays converted)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


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
    rel_ci_low: float | None = Field(None, description="interval of the absolute change / base")
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


# --------------------------------------------------------------------------- builders


def _strongest(
    baselines: Sequence[str], scores: Mapping[str, Mapping[str, MetricScores]], primary: str
) -> str:
    def key(name: str) -> float:
        value = scores[name][primary].value
        if not math.isfinite(value):
            return -math.inf
        # the best baseline by the metric's direction (lowest TER, highest accuracy)
        return value if scores[name][primary].higher_is_better else -value

    # max() keeps the first declared baseline on ties
    return max(baselines, key=key)


def evaluate_task(
    task_name: str,
    examples: Sequence[Example],
    outputs: Mapping[str, Sequence[str | None]],
    *,
    metrics: Sequence[str],
    primary_metric: str,
    parser: ParserSpec,
    candidate: str,
    baselines: Sequence[str],
    json_schema: dict[str, Any] | None = None,
    alpha: float = 0.05,
    n_resamples: int = 10_000,
    seed: int = 0,
    keep_examples: bool = True,
    metric_options: Mapping[str, Mapping[str, Any]] | None = None,
    completion_tokens: Mapping[str, Sequence[int | None]] | None = None,
    samples: Mapping[str, Sequence[Sequence[str] | None]] | None = None,
    code: Any = None,
    extra_scores: Mapping[str, Mapping[str, MetricScores]] | None = None,
    extra_comparisons: Sequence[Comparison] = (),
) -> TaskResult:
    """Score every contender, compare the candidate with each baseline, per metric and slice.

    ``outputs[contender][i]`` answers ``examples[i]`` (``None``: backend error). The
    strongest baseline is the one with the best primary metric; slice comparisons are
    made against it. ``metric_options``: metric -> options; ``completion_tokens``:
    contender -> output length in model tokens per example (for the length report).
    ``samples[contender][i]`` holds every sample for ``examples[i]`` (pass@k scores them
    all); ``code`` is the task's code settings. ``extra_scores`` (contender -> metric -> scores) are metrics another
    stage computed (the LLM judge); ``extra_comparisons`` replace the generic paired
    comparison for their metric (the judge's pairwise win rate and its sign test).
    """
    if candidate in baselines:
        raise GuardError(
            f"the candidate {candidate!r} is also listed as a baseline",
            where="spec.candidate",
            hint="a contender cannot be compared with itself; name the fine-tuned model as candidate",
        )
    if not baselines:
        raise SpecError("a task needs at least one baseline contender", where="spec.contenders")
    if primary_metric not in metrics:
        raise SpecError(
            f"primary_metric {primary_metric!r} is not one of {list(metrics)}",
            where="task.primary_metric",
        )
    names = [candidate, *baselines]
    for name in names:
        if name not in outputs:
            raise ValueError(f"no outputs for contender {name!r}")
        if len(outputs[name]) != len(examples):
            raise ValueError(
                f"contender {name!r}: {len(outputs[name])} outputs for {len(examples)} examples"
            )
    extra = {name: dict(s) for name, s in (extra_scores or {}).items()}
    external = {m for s in extra.values() for m in s}
    own = [m for m in metrics if m not in external]
    scores = {}
    for name in names:
        computed = score_outputs(
            own, outputs[name], examples, parser, json_schema=json_schema,
            options=metric_options,
            samples=samples.get(name) if samples else None,
            code=code,
        )  # fmt: skip
        merged = {**computed, **extra.get(name, {})}
        scores[name] = {m: merged[m] for m in metrics if m in merged}
    strongest = _strongest(
        [b for b in baselines if primary_metric in scores[b]], scores, primary_metric
    )
    given = {c.metric for c in extra_comparisons}

    comparisons = [
        compare(
            scores[candidate][m],
            scores[b][m],
            alpha=alpha,
            n_resamples=n_resamples,
            seed=seed,
            candidate_name=candidate,
            baseline_name=b,
        )
        for b in baselines
        for m in metrics
        if m not in given and m in scores[candidate] and m in scores[b]
    ]
    comparisons.extend(c.model_copy() for c in extra_comparisons)
    apply_holm(comparisons)

    ids = [e.id for e in examples]
    lengths = [
        length_stats(name, outputs[name], (completion_tokens or {}).get(name)) for name in names
    ]
    words = {name: words_by_id(ids, outputs[name]) for name in names}
    adjusted = [
        length_adjusted(
            comp, scores[candidate][comp.metric], scores[comp.baseline][comp.metric],
            words[candidate], words[comp.baseline], alpha=alpha,
        )
        for comp in comparisons
    ]  # fmt: skip

    slice_ids: dict[str, list[str]] = {}
    for ex in examples:
        for tag in ex.slices:
            slice_ids.setdefault(tag, []).append(ex.id)
    slices = []
    for tag, ids in sorted(slice_ids.items()):
        members = set(ids)
        values = {
            name: {
                m: _num(s.subset([i for i in s.example_ids if i in members]).value)
                for m, s in scores[name].items()
            }
            for name in names
        }
        slices.append(SliceResult(name=tag, n=len(ids), values=values))
    slice_comparisons = (
        compare_slices(
            {m: s for m, s in scores[candidate].items() if m in scores[strongest]},
            scores[strongest],
            slice_ids,
            alpha=alpha,
            n_resamples=n_resamples,
            seed=seed,
            candidate_name=candidate,
            baseline_name=strongest,
        )
        if slice_ids
        else []
    )

    contenders = []
    for name in names:
        per_metric = scores[name]
        # counts come from a metric scored on every answered output, not from a judge metric
        first = next(
            (s for m, s in per_metric.items() if m not in external),
            next(iter(per_metric.values())),
        )
        contenders.append(
            ContenderResult(
                name=name,
                metrics={m: _num(s.value) for m, s in per_metric.items()},
                n=len(examples),
                n_scored=first.n,
                errors=int(first.details.get("errors", sum(o is None for o in outputs[name]))),
                invalid=int(per_metric.get(primary_metric, first).details.get("invalid", 0)),
                details={m: _jsonable(s.details) for m, s in per_metric.items()},
            )
        )

    cand_out = outputs[candidate]
    identical = {
        b: float(
            np.mean([x is not None and x == y for x, y in zip(cand_out, outputs[b], strict=True)])
        )
        if examples
        else 0.0
        for b in baselines
    }

    outcomes: list[ExampleOutcome] = []
    if keep_examples:
        lookup = {
            name: {
                m: dict(zip(s.example_ids, s.per_example.tolist(), strict=True))
                for m, s in per_metric.items()
            }
            for name, per_metric in scores.items()
        }
        for i, ex in enumerate(examples):
            outcomes.append(
                ExampleOutcome(
                    id=ex.id,
                    slices=list(ex.slices),
                    reference=_jsonable(ex.reference if ex.reference is not None else ex.label),
                    outputs={name: outputs[name][i] for name in names},
                    scores={
                        name: {m: _num(lookup[name].get(m, {}).get(ex.id)) for m in metrics}
                        for name in names
                    },
                )
            )

    return TaskResult(
        name=task_name,
        primary_metric=primary_metric,
        metrics=list(metrics),
        candidate=candidate,
        baselines=list(baselines),
        strongest_baseline=strongest,
        n_examples=len(examples),
        contenders=contenders,
        comparisons=comparisons,
        slices=slices,
        slice_comparisons=slice_comparisons,
        identical_outputs=identical,
        lengths=lengths,
        length_adjusted=adjusted,
        examples=outcomes,
    )


def as_metric_scores(obj: Any, metric: str | None = None) -> MetricScores:
    """Accept a :class:`MetricScores` or any object with ``per_example``/``example_ids`` (a probe
    outcome); mean-based scores are ``binary`` when every score is 0 or 1, else ``continuous``."""
    if isinstance(obj, MetricScores):
        return obj
    per_example = np.asarray(obj.per_example, dtype=float)
    binary = bool(np.isin(per_example, (0.0, 1.0)).all())
    return MetricScores(
        name=metric or getattr(obj, "metric", None) or getattr(obj, "name", "score"),
        value=float(per_example.mean()) if len(per_example) else float("nan"),
        per_example=per_example,
        example_ids=list(obj.example_ids),
        kind="binary" if binary else "continuous",
        details=dict(getattr(obj, "details", {}) or {}),
    )


def probe_status(
    rel_change: float | None, thresholds: Thresholds, *, higher_is_better: bool = True
) -> Literal["ok", "warning", "FAIL"]:
    """ok when the relative drop is at most ``warn``, warning up to ``fail``, FAIL from ``fail`` on.

    For a lower-is-better metric the "drop" is a relative *increase* (more errors).
    """
    if rel_change is None:
        return "ok"
    drop = -rel_change if higher_is_better else rel_change
    if drop >= thresholds.fail - 1e-12:
        return "FAIL"
    if drop > thresholds.warn + 1e-12:
        return "warning"
    return "ok"


def probe_result(
    name: str,
    metric: str,
    base: Any,
    finetuned: Any,
    thresholds: Thresholds,
    *,
    seed: int = 0,
    n_resamples: int = 10_000,
    base_name: str = "base",
    finetuned_name: str = "finetuned",
    chance: float | None = None,
) -> ProbeResult:
    """Paired comparison of the fine-tuned and base model on one probe, with a status.

    ``base`` / ``finetuned``: :class:`MetricScores` or probe outcomes (``per_example``,
    ``example_ids``). Relative change = (finetuned - base) / base, on the examples both
    answered; the interval and p-value come from the same paired statistics as tasks.
    ``chance`` (default: ``details["chance"]`` of the base outcome) feeds the floor check.
    """
    b = as_metric_scores(base, metric)
    f = as_metric_scores(finetuned, metric)
    b.name = f.name = metric
    if not isinstance(base, MetricScores):
        # a probe outcome: its own declared direction (lm-eval reports one), else the registry's
        from tunecheck.metrics import higher_is_better

        declared = (getattr(base, "details", None) or {}).get("higher_is_better")
        direction = declared if isinstance(declared, bool) else higher_is_better(metric)
        b.higher_is_better = f.higher_is_better = direction
    comp = compare(
        f, b, alpha=thresholds.alpha, n_resamples=n_resamples, seed=seed,
        candidate_name=finetuned_name, baseline_name=base_name,
    )  # fmt: skip
    base_value = comp.baseline_value
    rel = None
    if base_value is not None and base_value > 0 and comp.delta is not None:
        rel = comp.delta / base_value
    result = ProbeResult(
        name=name,
        metric=metric,
        n=comp.n,
        base=base_value,
        finetuned=comp.candidate_value,
        abs_change=comp.delta,
        rel_change=rel,
        ci_low=comp.ci_low,
        ci_high=comp.ci_high,
        p_value=comp.p_value,
        test=comp.test,
        significant=comp.significant,
        status=probe_status(rel, thresholds, higher_is_better=comp.higher_is_better),
        mde=comp.mde,
        n_required=comp.n_required,
        note=comp.note,
        base_name=base_name,
        finetuned_name=finetuned_name,
    )
    from tunecheck.probe_rules import finish_probe

    if chance is None:
        chance = _num((getattr(base, "details", None) or {}).get("chance"))
    return finish_probe(
        result, f, b, alpha=thresholds.alpha, n_resamples=n_resamples, seed=seed, chance=chance
    )


def adjust_probes(probes: Sequence[ProbeResult], alpha: float = 0.05) -> list[ProbeResult]:
    """Holm-adjust the probes' p-values as one family; ``significant`` then uses ``p_adjusted``.

    Uninformative probes (floor/ceiling) are left out of the family: they cannot show a
    regression, so they must not dilute the power of the others.
    """
    from tunecheck.stats import holm

    adjusted = holm(
        [
            p.p_value if p.p_value is not None and p.status != "uninformative" else np.nan
            for p in probes
        ]
    )
    out = []
    for probe, p_adj in zip(probes, adjusted, strict=True):
        p_adj = _num(p_adj)
        out.append(
            probe.model_copy(
                update={"p_adjusted": p_adj, "significant": p_adj is not None and p_adj < alpha}
            )
        )
    return out
