"""From generations to a :class:`~tunecheck.results.RunResult`: scores, comparisons, verdict.

Pure with respect to models: it reads what the runner produced, so changing only
metrics or thresholds and re-running re-uses every cached generation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tunecheck.completeness import count_kinds
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
                metric_options=t.metric_options,
                completion_tokens={
                    c.name: state.outputs[(c.name, t.name)].completion_tokens
                    for c in spec.contenders
                },
                alpha=spec.thresholds.alpha,
                n_resamples=spec.bootstrap,
                seed=spec.seed,
            )
        )
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
    record_error_kinds(tasks, state)
    probes = score_probes(
        spec, probe_outcomes, base_name=base_name, finetuned_name=spec.candidate or "finetuned"
    )
    verdict = decide(tasks, probes, spec.thresholds)
    errors = [
        f"{out.contender} on {out.task}: {out.errors} request(s) failed after retries (not scored)"
        for out in state.outputs.values()
        if out.errors
    ]
    scrubbed = scrubbed_answers(state)
    errors.extend(
        f"{contender} on {task}: the API key appeared in {n} answer(s) and was replaced by *** "
        "before anything was stored or printed (the server echoes request headers)"
        for (contender, task), n in scrubbed.items()
    )
    if store is not None:
        _store_scores(store, state.run_id, tasks)
    lock_hash = next((t.lock_hash for t in state.tasks if t.lock_hash), None)
    from tunecheck.provenance import contender_info, data_info, library_versions

    contenders = [
        contender_info(
            c,
            role="candidate" if c.name == spec.candidate else "baseline",
            fingerprint=state.fingerprints.get(c.name),
            seed=spec.seed,
            spec_training=spec.training,
        )
        for c in spec.contenders
    ]
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
        contenders=contenders,
        data=[data_info(t) for t in state.tasks],
        libraries=library_versions(),
        meta={
            "model_calls": state.model_calls,
            "verification": overlap,
            **(
                {"api_key_scrubbed": {f"{c} on {t}": n for (c, t), n in scrubbed.items()}}
                if scrubbed
                else {}
            ),
        },
    )


def record_error_kinds(tasks: Sequence[TaskResult], state: RunState) -> None:
    """Fill each contender's failed examples per error kind (for the INCOMPLETE rule)."""
    for task in tasks:
        for c in task.contenders:
            out = state.outputs.get((c.name, task.name))
            if out is not None and out.errors:
                c.error_kinds = count_kinds(g.error for g in out.generations if not g.ok)


def scrubbed_answers(state: RunState) -> dict[tuple[str, str], int]:
    """(contender, task) -> answers in which the backend replaced the API key by ``***``."""
    from tunecheck.models.openai_compat import SCRUBBED

    counts = {
        key: sum(bool(g.meta.get(SCRUBBED)) for g in out.generations if g.ok)
        for key, out in state.outputs.items()
    }
    return {key: n for key, n in counts.items() if n}


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
