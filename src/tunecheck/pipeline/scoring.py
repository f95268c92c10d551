"""Scoring: outputs and per-example scores -> the typed results of :mod:`tunecheck.results`.

:func:`evaluate_task` scores every contender on a task and compares the candidate with
each baseline (per metric and slice); :func:`probe_result` compares the fine-tuned and
the base model on one probe and :func:`adjust_probes` Holm-adjusts the probes together.
The runner (:mod:`tunecheck.evaluate`), k-fold runs, ``tunecheck simulate`` and the
training tools call these; they take the core types (:mod:`tunecheck.core`), never the
YAML spec.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from tunecheck.core.config import ParserLike, Thresholds
from tunecheck.errors import GuardError, SpecError
from tunecheck.examples import Example
from tunecheck.length import length_adjusted, length_stats, words_by_id
from tunecheck.metrics import MetricScores
from tunecheck.results import ContenderResult, ExampleOutcome, ProbeResult, SliceResult, TaskResult
from tunecheck.stats import Comparison, apply_holm, compare, compare_slices
from tunecheck.task import Task

__all__ = [
    "adjust_probes",
    "as_metric_scores",
    "evaluate_task",
    "probe_result",
    "probe_status",
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
    parser: ParserLike,
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
    task = Task.of(
        task_name, examples, own, parser,
        json_schema=json_schema, metric_options=metric_options or {}, code=code,
    )  # fmt: skip
    scores = {}
    for name in names:
        computed = task.score(outputs[name], samples=samples.get(name) if samples else None)
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
        name=str(metric or getattr(obj, "metric", None) or getattr(obj, "name", "score")),
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
