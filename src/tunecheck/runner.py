"""Orchestrates ``tunecheck run``: spec -> verified data -> contenders -> scores -> verdict.

Stages stay separate (HELM style) so any one can be re-run alone: generation is
cached per model fingerprint and request in the store, so re-running a spec
makes no model calls, and changing only metrics or thresholds generates nothing.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from tunecheck.pipeline.progress import make_progress
from tunecheck.pipeline.stages import (
    ProbePlan,
    RunOptions,
    RunOutcome,
    check_guards,
    model_key,
    open_models,
    plan_probes,
    run_failed,
    run_generation,
    run_probes,
    strip_adapter,
)
from tunecheck.pipeline.state import LoadedTask, RunState
from tunecheck.spec import Spec
from tunecheck.store import open_store
from tunecheck.store.liveness import Heartbeat

__all__ = [
    "LoadedTask",
    "ProbePlan",
    "RunOptions",
    "RunOutcome",
    "check_guards",
    "make_progress",
    "open_models",
    "plan_probes",
    "run",
    "run_failed",
    "run_generation",
    "run_probes",
    "strip_adapter",
]


def run(
    spec: Spec,
    *,
    options: RunOptions | None = None,
    spec_path: str | Path | None = None,
    console: Console | None = None,
) -> RunOutcome:
    """Run a whole evaluation and store it. The public entry point behind ``tunecheck run``."""
    options = options or RunOptions()
    console = console or Console(stderr=True)
    from tunecheck.kfold import fold_locks, run_kfold

    locks = fold_locks(spec)
    if locks is not None:  # a k-fold index lock: every fold, one pooled verdict
        return run_kfold(spec, locks, options=options, spec_path=spec_path, console=console)
    start = time.perf_counter()
    from tunecheck.preflight import preflight

    # every problem findable without a model, reported at once, before a model or a
    # store is touched; the tasks come back loaded with their locks verified
    checked = preflight(
        spec, allow_overlap=options.allow_overlap, limit=options.limit, probes=options.probes
    )
    checked.raise_for_problems()
    tasks: list[LoadedTask] = checked.tasks
    store = open_store(options.store_url or spec.store)
    overrides = (
        {"allow_overlap": True}
        if options.allow_overlap or any(t.spec.allow_overlap for t in tasks)
        else None
    )
    run_id = store.create_run(
        name=spec.tasks[0].name,
        spec_hash=spec.fingerprint(),
        spec_json=spec.model_dump(mode="json"),
        spec_path=str(spec_path) if spec_path else None,
        lock_hash=next((t.lock_hash for t in tasks if t.lock_hash), None),
        overrides=overrides,
        run_id=options.run_id,
    )
    state = RunState(run_id=run_id, tasks=tasks)
    # a sign of life for other processes: a run whose heartbeat stops is marked interrupted
    heartbeat = Heartbeat(lambda: store.heartbeat(run_id)).start()
    try:
        models = open_models(spec, store)
        if any(t.judge is not None for t in spec.tasks):
            from tunecheck.judge.run import open_judges

            state.judge_models = open_judges(spec, store)  # a bad judge fails before generating
        for c in spec.contenders:
            model = models[model_key(c)]
            state.fingerprints[c.name] = model.fingerprint
            store.add_contender(
                run_id,
                name=c.name,
                model_ref=c.model,
                model_fingerprint=model.fingerprint,
                prompt_fingerprint=c.prompt.build().fingerprint(),
                role="candidate" if c.name == spec.candidate else "baseline",
            )
        for t in tasks:
            store.add_examples(run_id, t.spec.name, t.examples)
        check_guards(spec, models, tasks)
        plan = plan_probes(spec, models, store, enabled=options.probes)
        with make_progress(console, enabled=options.show_progress) as progress:
            run_generation(state, spec, models, store, progress)
            if any(t.spec.judge is not None for t in tasks):
                from tunecheck.judge.run import run_judges

                run_judges(state, spec, store, progress)
            probe_outcomes = run_probes(spec, models, progress, plan=plan) if plan.base else []
        # every request sent to a backend: generation, guards and probes (cache hits excluded)
        state.model_calls = sum(getattr(m, "calls", 0) for m in models.values())
        if plan.base is not None:
            state.model_calls += getattr(plan.base, "calls", 0) if plan.implicit else 0
        from tunecheck.evaluate import assemble_result

        result = assemble_result(
            spec,
            state,
            probe_outcomes,
            store=store,
            base_name=plan.base_name,
            probes_run=bool(probe_outcomes),
            no_probes_reason=plan.skip_reason,
            probe_pairing=plan.pairing,
        )
    except BaseException as err:
        raise run_failed(store, run_id, err) from None
    finally:
        heartbeat.stop()
    # DEPLOY-pending-review is stored as such: a DEPLOY that still needs its blind check
    verdict = getattr(getattr(result, "verdict", None), "label", None)
    store.finish_run(
        run_id,
        status="completed",
        verdict=str(verdict) if verdict is not None else None,
        result=result.model_dump(mode="json") if hasattr(result, "model_dump") else result,
    )
    # only now, with the result stored: a tracker that fails cannot lose the evaluation
    from tunecheck.tracking import record_outcomes, track_run

    tracking = track_run(
        result, options.tracking if options.tracking is not None else spec.tracking
    )
    record_outcomes(store, run_id, tracking)
    return RunOutcome(
        run_id=run_id,
        result=result,
        model_calls=state.model_calls,
        seconds=time.perf_counter() - start,
        store_url=store.url,
        tracking=tracking,
    )
