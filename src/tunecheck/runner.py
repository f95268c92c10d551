"""Orchestrates ``tunecheck run``: spec -> verified data -> contenders -> scores -> verdict.

Stages stay separate (HELM style) so any one can be re-run alone: generation is
cached per model fingerprint and request in the store, so re-running a spec
makes no model calls, and changing only metrics or thresholds generates nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from tunecheck.errors import GuardError, TunecheckError
from tunecheck.examples import Example
from tunecheck.models.base import Generation, GenerationParams, GenerationRequest, Model
from tunecheck.spec import ContenderSpec, Spec, TaskSpec
from tunecheck.store import Store, open_store


@dataclass
class RunOptions:
    """Knobs of one run that are not part of the spec."""

    limit: int | None = None
    store_url: str | None = None
    allow_overlap: bool = False
    probes: bool = True
    show_progress: bool = True
    run_id: str | None = None


@dataclass
class LoadedTask:
    """A task's examples after the lock was verified."""

    spec: TaskSpec
    examples: list[Example]
    lock_hash: str | None = None
    verify_report: dict[str, Any] | None = None


@dataclass
class ContenderOutputs:
    """What one contender produced on one task, aligned with the task's examples."""

    contender: str
    task: str
    generations: list[Generation]

    @property
    def texts(self) -> list[str | None]:
        """Generated text per example; ``None`` where the backend failed (never scored as wrong)."""
        return [g.text if g.ok else None for g in self.generations]

    @property
    def errors(self) -> int:
        return sum(not g.ok for g in self.generations)


@dataclass
class RunState:
    """Everything a run produced, before it is turned into a result."""

    run_id: str
    tasks: list[LoadedTask] = field(default_factory=list)
    outputs: dict[tuple[str, str], ContenderOutputs] = field(default_factory=dict)
    model_calls: int = 0


# --------------------------------------------------------------------------- progress


def make_progress(console: Console | None = None, *, enabled: bool = True) -> Progress:
    """The rich progress display used by every long stage: count, rate and ETA."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("[cyan]{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    )


@contextmanager
def progress_task(
    progress: Progress, description: str, total: int
) -> Iterator[Callable[[int], None]]:
    """A progress callback for a backend: ``advance(n)`` as requests finish."""
    task_id = progress.add_task(description, total=total, rate="")
    start = time.perf_counter()
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        elapsed = max(time.perf_counter() - start, 1e-9)
        progress.update(task_id, advance=n, rate=f"{done / elapsed:.1f}/s")

    try:
        yield advance
    finally:
        progress.update(task_id, completed=total)


# --------------------------------------------------------------------------- stages


def load_task(
    task: TaskSpec, *, allow_overlap: bool = False, limit: int | None = None
) -> LoadedTask:
    """Verify the task's lock (refusing a changed or contaminated test split) and load it."""
    from tunecheck.data import load_examples, load_locked_split

    report: dict[str, Any] | None = None
    lock_hash: str | None = None
    if task.lock:
        examples, verify = load_locked_split(
            task.lock,
            split=task.split,
            fields=task.fields,
            allow_overlap=allow_overlap or task.allow_overlap,
            near_duplicate_threshold=task.near_duplicate_threshold,
        )
        report = verify.to_dict() if hasattr(verify, "to_dict") else dict(verify)
        lock_hash = report.get("lock_sha256") or report.get("lock_hash")
    else:
        examples = load_examples(task.data, task.fields)
    n = task.limit if limit is None else min(limit, task.limit or limit)
    if n is not None:
        examples = examples[:n]
    if not examples:
        raise TunecheckError("the task has no examples", where=task.data)
    return LoadedTask(spec=task, examples=examples, lock_hash=lock_hash, verify_report=report)


def generation_params(contender: ContenderSpec, seed: int) -> GenerationParams:
    g = contender.generation
    return GenerationParams(
        max_new_tokens=g.max_new_tokens,
        temperature=g.temperature,
        top_p=g.top_p,
        n=g.n,
        stop=tuple(g.stop),
        seed=seed,
    )


def build_requests(
    contender: ContenderSpec, examples: Sequence[Example], seed: int
) -> list[GenerationRequest]:
    """Render every example with the contender's prompt."""
    prompt = contender.prompt.build()
    params = generation_params(contender, seed)
    return [GenerationRequest(prompt=prompt.render(e), params=params, id=e.id) for e in examples]


def open_models(spec: Spec, store: Store) -> dict[str, Model]:
    """One cached model per distinct model reference (contenders may share a model)."""
    from tunecheck.models import load_model
    from tunecheck.models.cache import CachedModel

    models: dict[str, Model] = {}
    for c in spec.contenders:
        key = _model_key(c)
        if key in models:
            continue
        models[key] = CachedModel(load_model(c.model, lazy=True, **c.options), store)
    return models


def _model_key(c: ContenderSpec) -> str:
    return f"{c.model}|{sorted(c.options.items())}"


def check_guards(spec: Spec, models: dict[str, Model], tasks: Sequence[LoadedTask]) -> None:
    """Refuse runs that cannot answer the question (see DESIGN: guards no anchor tool has)."""
    from tunecheck.models.guards import check_distinct_contenders, check_distinguishable

    check_distinct_contenders(
        [
            (c.name, models[_model_key(c)].fingerprint, c.prompt.build().fingerprint())
            for c in spec.contenders
        ]
    )
    if spec.guard_examples <= 0 or not tasks:
        return
    cand = spec.candidate_spec
    cand_model = models[_model_key(cand)]
    examples = tasks[0].examples[: spec.guard_examples]
    requests = build_requests(cand, examples, spec.seed)
    seen: set[str] = {cand_model.fingerprint}
    for base in spec.baselines:
        base_model = models[_model_key(base)]
        if base_model.fingerprint in seen:
            continue  # same weights: a prompt-only comparison, nothing to check
        seen.add(base_model.fingerprint)
        try:
            check_distinguishable(base_model, cand_model, requests)
        except GuardError as err:
            raise GuardError(
                f"contender {cand.name!r} vs {base.name!r}: {err.message}", hint=err.hint
            ) from None


def run_generation(
    state: RunState,
    spec: Spec,
    models: dict[str, Model],
    store: Store,
    progress: Progress,
) -> None:
    """Generate every contender x task, writing each answer to the store as it comes."""
    for task in state.tasks:
        for c in spec.contenders:
            model = models[_model_key(c)]
            requests = build_requests(c, task.examples, spec.seed)
            with progress_task(progress, f"{c.name} · {task.spec.name}", len(requests)) as advance:
                gens = model.generate(requests, progress=advance)
            out = ContenderOutputs(c.name, task.spec.name, gens)
            state.outputs[(c.name, task.spec.name)] = out
            store.put_outputs(
                state.run_id,
                c.name,
                task.spec.name,
                [
                    (e.id, model.fingerprint, r.cache_key(), g)
                    for e, r, g in zip(task.examples, requests, gens, strict=True)
                ],
            )


@dataclass
class RunOutcome:
    """What :func:`run` returns: the result object plus run bookkeeping."""

    run_id: str
    result: Any
    model_calls: int
    seconds: float
    store_url: str


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
    try:
        models = open_models(spec, store)
        for c in spec.contenders:
            model = models[_model_key(c)]
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
        with make_progress(console, enabled=options.show_progress) as progress:
            run_generation(state, spec, models, store, progress)
            probe_outcomes = run_probes(spec, models, progress) if options.probes else []
        # every request sent to a backend: generation, guards and probes (cache hits excluded)
        state.model_calls = sum(getattr(m, "calls", 0) for m in models.values())
        from tunecheck.evaluate import assemble_result

        result = assemble_result(spec, state, probe_outcomes, store=store)
    except KeyboardInterrupt:
        store.finish_run(run_id, status="interrupted", error="interrupted by the user")
        raise TunecheckError(
            "interrupted; every finished generation is stored",
            hint="run the same command again to resume: cached generations are reused",
        ) from None
    except BaseException as err:
        store.finish_run(run_id, status="failed", error=f"{type(err).__name__}: {err}")
        raise
    verdict = getattr(getattr(result, "verdict", None), "decision", None)
    store.finish_run(
        run_id,
        status="completed",
        verdict=str(verdict) if verdict is not None else None,
        result=result.model_dump(mode="json") if hasattr(result, "model_dump") else result,
    )
    return RunOutcome(
        run_id=run_id,
        result=result,
        model_calls=state.model_calls,
        seconds=time.perf_counter() - start,
        store_url=store.url,
    )


def probe_models(spec: Spec, models: dict[str, Model]) -> tuple[Model, Model] | None:
    """(base, fine-tuned) for capability probes: the candidate vs the first baseline on other weights."""
    cand = models[_model_key(spec.candidate_spec)]
    for b in spec.baselines:
        base = models[_model_key(b)]
        if base.fingerprint != cand.fingerprint:
            return base, cand
    return None


def run_probes(spec: Spec, models: dict[str, Model], progress: Progress) -> list[Any]:
    """Run every probe on the base and the fine-tuned model; returns (spec, base, ft) outcomes."""
    from tunecheck.probes import build_probe, run_probe

    pair = probe_models(spec, models)
    if pair is None:
        return []
    base, cand = pair
    outcomes = []
    for probe_spec in spec.probe_specs():
        probe = build_probe(probe_spec, seed=spec.seed)
        results = []
        for label, model in (("base", base), ("fine-tuned", cand)):
            with progress_task(
                progress, f"probe {probe_spec.name} · {label}", len(probe.examples)
            ) as advance:
                results.append(run_probe(probe, model, progress=advance))
        outcomes.append((probe_spec, results[0], results[1]))
    return outcomes
