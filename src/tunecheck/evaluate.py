"""From generations to a :class:`~tunecheck.results.RunResult`: scores, comparisons, verdict.

Pure with respect to models: it reads what the runner produced, so changing only
metrics or thresholds and re-running re-uses every cached generation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tunecheck.completeness import count_kinds
from tunecheck.core.config import Thresholds, as_thresholds
from tunecheck.pipeline.scoring import adjust_probes, evaluate_task, probe_result
from tunecheck.pipeline.state import RunState
from tunecheck.results import ProbeResult, RunResult, TaskResult, Verdict
from tunecheck.spec import ProbeSpec, Spec
from tunecheck.verdict import decide

if TYPE_CHECKING:
    from tunecheck.store import Store
    from tunecheck.verdict_context import VerdictContext


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
                parser=t.parser.to_core(),
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
                samples={c.name: state.outputs[(c.name, t.name)].samples for c in spec.contenders},
                code=t.code.to_core() if t.code is not None else None,
                extra_scores=judged.scores if judged else None,
                extra_comparisons=judged.comparisons if judged else (),
            )
        )
        if judged is not None:
            results[-1].judge = judged.result
    return results


def final_verdict(
    tasks: Sequence[TaskResult],
    probes: Sequence[ProbeResult],
    thresholds: Thresholds,
    context: VerdictContext | None = None,
) -> Verdict:
    """The verdict a run ends with: :func:`~tunecheck.verdict.decide` on the numbers, then
    :func:`~tunecheck.verdict_context.qualify` with what the numbers cannot see."""
    from dataclasses import replace

    from tunecheck.probe_rules import gate
    from tunecheck.verdict_context import VerdictContext, qualify

    ctx = context or VerdictContext()
    if probes and all(gate(p) == "uninformative" for p in probes):
        ctx = replace(ctx, probes_uninformative=True)
    return qualify(decide(tasks, probes, as_thresholds(thresholds)), ctx)


def score_probes(
    spec: Spec,
    outcomes: Sequence[tuple[ProbeSpec, Any, Any]],
    *,
    base_name: str,
    finetuned_name: str,
) -> list[ProbeResult]:
    """Paired base-vs-fine-tuned comparison per probe, Holm-corrected across probes."""
    thresholds = spec.thresholds.to_core()
    results = [
        probe_result(
            ps.name,
            base.metric,
            base,
            ft,
            thresholds,
            seed=spec.seed,
            n_resamples=spec.bootstrap,
            base_name=base_name,
            finetuned_name=finetuned_name,
        )
        for ps, base, ft in outcomes
    ]
    return adjust_probes(results, thresholds.alpha) if results else results


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
    record_error_kinds(tasks, state)
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
    verdict = final_verdict(tasks, probes, spec.thresholds.to_core(), context)
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
    # e.g. the sandbox could not isolate executed code from the network on this machine
    errors += sorted(
        {
            str(w)
            for t in tasks
            for c in t.contenders
            for d in c.details.values()
            for w in (d.get("warnings") or [])
        }
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
        thresholds=spec.thresholds.to_core(),
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
            **_judge_meta(tasks),
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
