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
    Verdict,
    adjust_probes,
    evaluate_task,
    probe_result,
)
from tunecheck.spec import ProbeSpec, Spec, Thresholds
from tunecheck.verdict import decide

if TYPE_CHECKING:
    from tunecheck.runner import RunState
    from tunecheck.store import Store
    from tunecheck.verdict_context import VerdictContext


def score_tasks(spec: Spec, state: RunState) -> list[TaskResult]:
    """Score every contender on every task and compare the candidate with each baseline."""
    results = []
    baselines = [b.name for b in spec.baselines]
    for loaded in state.tasks:
        t = loaded.spec
        outputs = {c.name: state.outputs[(c.name, t.name)].texts for c in spec.contenders}
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
            )
        )
    return results


def final_verdict(
    tasks: Sequence[TaskResult],
    probes: Sequence[ProbeResult],
    thresholds: Thresholds,
    context: VerdictContext | None = None,
) -> Verdict:
    """The verdict a run ends with: :func:`~tunecheck.verdict.decide` on the numbers, then
    :func:`~tunecheck.verdict_context.qualify` with what the numbers cannot see."""
    from tunecheck.verdict_context import VerdictContext, qualify

    return qualify(decide(tasks, probes, thresholds), context or VerdictContext())


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
    probes_run: bool | None = None,
    no_probes_reason: str = "",
    probe_pairing: str = "",
    tasks: Sequence[TaskResult] | None = None,
) -> RunResult:
    """Build (and store per-example scores of) the run's result with its verdict.

    ``tasks``: already scored tasks (k-fold runs pool them first); default: score ``state``.
    """
    from tunecheck.verdict_context import context_for, must_not_regress

    tasks = list(tasks) if tasks is not None else score_tasks(spec, state)
    for t_spec in spec.tasks:
        for t in tasks:
            if t.name == t_spec.name and t_spec.must_not_regress:
                t.must_not_regress = must_not_regress(t, t_spec.must_not_regress)
    probes = score_probes(
        spec, probe_outcomes, base_name=base_name, finetuned_name=spec.candidate or "finetuned"
    )
    context = context_for(
        spec,
        tasks,
        run_id=state.run_id,
        probes_run=bool(probes) if probes_run is None else probes_run,
        no_probes_reason=no_probes_reason,
        probe_pairing=probe_pairing,
    )
    verdict = final_verdict(tasks, probes, spec.thresholds, context)
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
        meta={"model_calls": state.model_calls, "verification": overlap},
    )


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
