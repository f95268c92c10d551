"""From generations to a :class:`~tunecheck.results.RunResult`: scores, comparisons, verdict.

Pure with respect to models: it reads what the runner produced, so changing only
metrics or thresholds and re-running re-uses every cached generation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tunecheck.results import (
    ProbeResult,
    RunResult,
    TaskResult,
    adjust_probes,
    evaluate_task,
    probe_result,
)
from tunecheck.spec import ProbeSpec, Spec
from tunecheck.verdict import decide

if TYPE_CHECKING:
    from tunecheck.runner import RunState
    from tunecheck.store import Store


def score_tasks(spec: Spec, state: RunState) -> list[TaskResult]:
    """Score every contender on every task and compare the candidate with each baseline."""
    results = []
    baselines = [b.name for b in spec.baselines]
    for loaded in state.tasks:
        t = loaded.spec
        outputs = {c.name: state.outputs[(c.name, t.name)].texts for c in spec.contenders}
        judged = getattr(state, "judge", {}).get(t.name)
        results.append(
            evaluate_task(
                t.name,
                loaded.examples,
                outputs,
                metrics=t.metrics,
                primary_metric=t.primary_metric or t.metrics[0],
                parser=t.parser,
                candidate=spec.candidate or spec.contenders[-1].name,
                baselines=baselines,
                json_schema=t.json_schema,
                alpha=spec.thresholds.alpha,
                n_resamples=spec.bootstrap,
                seed=spec.seed,
                extra_scores=judged.scores if judged else None,
                extra_comparisons=judged.comparisons if judged else (),
            )
        )
        if judged is not None:
            results[-1].judge = judged.result
    return results


def score_probes(
    spec: Spec,
    outcomes: Sequence[tuple[ProbeSpec, Any, Any]],
    *,
    base_name: str,
    finetuned_name: str,
) -> list[ProbeResult]:
    """Paired base-vs-fine-tuned comparison per probe, Holm-corrected across probes."""
    results = [
        probe_result(
            ps.name,
            base.metric,
            base,
            ft,
            spec.thresholds,
            seed=spec.seed,
            n_resamples=spec.bootstrap,
            base_name=base_name,
            finetuned_name=finetuned_name,
        )
        for ps, base, ft in outcomes
    ]
    return adjust_probes(results, spec.thresholds.alpha) if results else results


def assemble_result(
    spec: Spec,
    state: RunState,
    probe_outcomes: Sequence[tuple[ProbeSpec, Any, Any]],
    *,
    store: Store | None = None,
    base_name: str = "base",
) -> RunResult:
    """Build (and store per-example scores of) the run's result with its verdict."""
    tasks = score_tasks(spec, state)
    probes = score_probes(
        spec, probe_outcomes, base_name=base_name, finetuned_name=spec.candidate or "finetuned"
    )
    verdict = decide(tasks, probes, spec.thresholds)
    errors = [
        f"{out.contender} on {out.task}: {out.errors} request(s) failed after retries (not scored)"
        for out in state.outputs.values()
        if out.errors
    ]
    if store is not None:
        _store_scores(store, state.run_id, tasks)
    lock_hash = next((t.lock_hash for t in state.tasks if t.lock_hash), None)
    overlap = [t.verify_report for t in state.tasks if t.verify_report]
    return RunResult(
        run_id=state.run_id,
        spec_name=spec.tasks[0].name,
        spec_hash=spec.fingerprint(),
        lock_hash=lock_hash,
        candidate=spec.candidate,
        thresholds=spec.thresholds,
        tasks=tasks,
        probes=probes,
        verdict=verdict,
        errors=errors,
        meta={"model_calls": state.model_calls, "verification": overlap, **_judge_meta(tasks)},
    )


def _judge_meta(tasks: Sequence[TaskResult]) -> dict[str, Any]:
    """Judge cost over all tasks (requests sent, answered from cache, tokens)."""
    costs = [t.judge.cost for t in tasks if t.judge is not None]
    if not costs:
        return {}
    fields = type(costs[0]).model_fields
    return {"judge": {f: sum(getattr(c, f) for c in costs) for f in fields}}


def _store_scores(store: Store, run_id: str, tasks: Sequence[TaskResult]) -> None:
    for task in tasks:
        for c in task.contenders:
            for m in task.metrics:
                rows = [
                    (ex.id, v)
                    for ex in task.examples
                    if (v := ex.scores.get(c.name, {}).get(m)) is not None
                ]
                store.put_scores(run_id, c.name, task.name, m, rows)
