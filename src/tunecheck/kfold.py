"""k-fold runs: one verdict from K fold models, each tested on its own held-out fold.

Under ~200 examples a single test split is too small to tell most gains from noise, so
the method calls for cross-validation: ``tunecheck split --folds K`` writes K train/test
folds and an index lock; a spec whose task ``lock`` is that index runs every fold. A
contender whose model reference contains ``{fold}`` (``hf:base+adapter=runs/fold{fold}``)
is a different model per fold (``1..K``); the others are the same in every fold.

Each example is in exactly one fold's test part, so the per-example outcomes of the K
fold models are pooled into one paired comparison (every example tested once, by the
model that never trained on it) and one verdict. Per-fold numbers are kept in
``TaskResult.folds``. Capability probes: fold model *i* answers the *i*-th of K disjoint
shares of each probe, so a probe costs what it costs in a single run.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunecheck.errors import SpecError, TunecheckError
from tunecheck.results import FoldResult

if TYPE_CHECKING:
    from rich.console import Console

    from tunecheck.models.base import Model
    from tunecheck.pipeline.stages import RunOptions, RunOutcome
    from tunecheck.spec import Spec

PLACEHOLDER = "{fold}"


def fold_locks(spec: Spec) -> list[Path] | None:
    """The fold locks when the spec's task lock is a k-fold index, else ``None``."""
    from tunecheck.data.lock import read_lock

    found = []
    for task in spec.tasks:
        if not task.lock:
            continue
        lock = read_lock(task.lock)
        if lock.folds:
            found.append([lock.folder / f for f in lock.folds])
    if not found:
        templated = [c.name for c in spec.contenders if PLACEHOLDER in c.model]
        if templated:
            raise SpecError(
                f"contender(s) {templated} use {PLACEHOLDER} in the model reference, but the task's "
                "lock is not a k-fold index",
                where="task.lock",
                hint="point `lock` at the index written by `tunecheck split --folds K`, or remove "
                f"{PLACEHOLDER} from the model reference",
            )
        return None
    if len(spec.tasks) != 1:
        raise SpecError(
            "a k-fold run takes exactly one task",
            where="spec.tasks",
            hint="split the other tasks into their own specs",
        )
    return found[0]


def fold_spec(spec: Spec, fold: int, lock: Path, base_dir: Path | None) -> Spec:
    """The spec of one fold: ``{fold}`` replaced in model references, the fold's lock, and
    the task renamed ``NAME/foldK`` (the store keeps each fold's outputs apart)."""
    from tunecheck.spec import _resolve_paths

    data = spec.model_copy(deep=True)
    for c in data.contenders:
        c.model = c.model.replace(PLACEHOLDER, str(fold))
    task = data.tasks[0]
    task.lock = str(lock)
    task.name = f"{task.name}/fold{fold}"
    if base_dir is not None:
        _resolve_paths(data, base_dir)
    return data


def per_fold(spec: Spec) -> list[str]:
    """Names of the contenders that are a different model in every fold."""
    return [c.name for c in spec.contenders if PLACEHOLDER in c.model]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_kfold(
    spec: Spec,
    locks: Sequence[Path],
    *,
    options: RunOptions,
    spec_path: str | Path | None,
    console: Console,
) -> RunOutcome:
    """Run every fold, pool the per-example outcomes and reach one verdict."""
    from tunecheck.evaluate import assemble_result, score_tasks
    from tunecheck.models import load_model
    from tunecheck.models.cache import CachedModel
    from tunecheck.pipeline.progress import make_progress
    from tunecheck.pipeline.stages import (
        RunOutcome,
        check_guards,
        model_key,
        plan_probes,
        run_generation,
        run_probes,
    )
    from tunecheck.pipeline.state import RunState
    from tunecheck.pipeline.tasks import load_task
    from tunecheck.store import open_store

    start = time.perf_counter()
    base_dir = Path(spec_path).resolve().parent if spec_path else None
    if spec.candidate not in per_fold(spec):
        console.print(
            f"[yellow]warning:[/] the candidate's model reference has no {PLACEHOLDER}: the same "
            "model is tested on every fold (fine for prompts, not for fold fine-tunes)"
        )
    store = open_store(options.store_url or spec.store)
    specs = [fold_spec(spec, k + 1, lock, base_dir) for k, lock in enumerate(locks)]
    tasks = [
        load_task(s.tasks[0], allow_overlap=options.allow_overlap, limit=options.limit)
        for s in specs
    ]
    index_lock = Path(spec.tasks[0].lock or "")
    if index_lock.is_dir():
        from tunecheck.data.lock import LOCK_NAME

        index_lock = index_lock / LOCK_NAME
    run_id = store.create_run(
        name=spec.tasks[0].name,
        spec_hash=spec.fingerprint(),
        spec_json=spec.model_dump(mode="json"),
        spec_path=str(spec_path) if spec_path else None,
        lock_hash=_sha256(index_lock),
        overrides={"allow_overlap": True} if options.allow_overlap else None,
        run_id=options.run_id,
    )
    from tunecheck.store.liveness import Heartbeat

    # a sign of life for other processes: a run whose heartbeat stops is marked interrupted
    heartbeat = Heartbeat(lambda: store.heartbeat(run_id)).start()
    try:
        models: dict[str, Model] = {}
        fold_models: list[dict[str, Model]] = []
        for s in specs:
            mine = {}
            for c in s.contenders:
                key = model_key(c)
                if key not in models:
                    models[key] = CachedModel(load_model(c.model, lazy=True, **c.options), store)
                mine[key] = models[key]
            fold_models.append(mine)
        for c in spec.contenders:
            first = specs[0].contenders[[x.name for x in spec.contenders].index(c.name)]
            store.add_contender(
                run_id,
                name=c.name,
                model_ref=c.model,
                model_fingerprint=fold_models[0][model_key(first)].fingerprint,
                prompt_fingerprint=c.prompt.build().fingerprint(),
                role="candidate" if c.name == spec.candidate else "baseline",
            )
        states = []
        for s, t, mine in zip(specs, tasks, fold_models, strict=True):
            store.add_examples(run_id, t.spec.name, t.examples)
            check_guards(s, mine, [t])
        plan = plan_probes(specs[0], fold_models[0], store, enabled=options.probes)
        if plan.base is not None:
            plan.fold_candidates = [
                mine[model_key(s.candidate_spec)]
                for s, mine in zip(specs, fold_models, strict=True)
            ]
        with make_progress(console, enabled=options.show_progress) as progress:
            for s, t, mine in zip(specs, tasks, fold_models, strict=True):
                state = RunState(run_id=run_id, tasks=[t])
                run_generation(state, s, mine, store, progress)
                states.append(state)
            probe_outcomes = (
                run_probes(specs[0], fold_models[0], progress, plan=plan) if plan.base else []
            )
        pooled = _pool(spec, states, tasks)
        pooled.model_calls = sum(getattr(m, "calls", 0) for m in models.values())
        if plan.implicit and plan.base is not None:
            pooled.model_calls += getattr(plan.base, "calls", 0)
        pooled.tasks[0].lock_hash = _sha256(index_lock)
        folds = []
        for k, (s, state) in enumerate(zip(specs, states, strict=True), start=1):
            fold_task = score_tasks(s, state)[0]
            comp = fold_task.comparison()
            folds.append(
                FoldResult(
                    fold=k,
                    n=fold_task.n_examples,
                    values={
                        c.name: c.metrics.get(fold_task.primary_metric)
                        for c in fold_task.contenders
                    },
                    comparison=comp,
                )
            )
        pooled_tasks = score_tasks(spec, pooled)
        pooled_tasks[0].folds = folds
        result = assemble_result(
            spec,
            pooled,
            probe_outcomes,
            store=store,
            base_name=plan.base_name,
            probes_run=bool(probe_outcomes),
            no_probes_reason=plan.skip_reason,
            probe_pairing=(plan.pairing + f"; fold model i answers 1/{len(specs)} of each probe")
            if plan.pairing
            else "",
            tasks=pooled_tasks,
        )
        result.meta["folds"] = len(specs)
        verdict = result.verdict
        assert verdict is not None  # assemble_result always reaches a verdict
        verdict.reasons.insert(
            1,
            f"k-fold: {len(specs)} folds pooled, every example tested once by the fold model that "
            f"did not train on it (per-fold deltas: "
            + ", ".join(
                "n/a" if f.comparison.delta is None else f"{f.comparison.delta * 100:+.1f}"
                for f in folds
            )
            + " pts)",
        )
    except BaseException as err:
        from tunecheck.pipeline.stages import run_failed

        raise run_failed(store, run_id, err) from None
    finally:
        heartbeat.stop()
    store.finish_run(
        run_id,
        status="completed",
        verdict=verdict.label,
        result=result.model_dump(mode="json"),
    )
    return RunOutcome(
        run_id=run_id,
        result=result,
        model_calls=pooled.model_calls,
        seconds=time.perf_counter() - start,
        store_url=store.url,
    )


def _pool(spec: Spec, states: Sequence[Any], tasks: Sequence[Any]) -> Any:
    """One run state over all folds: examples and each contender's generations concatenated."""
    from tunecheck.pipeline.state import ContenderOutputs, LoadedTask, RunState

    name = spec.tasks[0].name
    examples = [e for t in tasks for e in t.examples]
    ids = [e.id for e in examples]
    if len(set(ids)) != len(ids):
        raise TunecheckError(
            "the folds' test parts overlap: an example would be tested twice",
            where=spec.tasks[0].lock,
            hint="re-split with `tunecheck split --folds K` (fold test parts are disjoint)",
        )
    pooled = RunState(
        run_id=states[0].run_id,
        tasks=[LoadedTask(spec=spec.tasks[0], examples=examples)],
    )
    for c in spec.contenders:
        gens = []
        for state, t in zip(states, tasks, strict=True):
            gens.extend(state.outputs[(c.name, t.spec.name)].generations)
        pooled.outputs[(c.name, name)] = ContenderOutputs(c.name, name, gens)
    return pooled
