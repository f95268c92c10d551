"""The stages of a run, shared by ``tunecheck run`` (:mod:`tunecheck.runner`) and k-fold runs
(:mod:`tunecheck.kfold`): open the models, guard the comparison, generate, plan and run the
probes, mark a run that stopped. Each stage can be re-run alone: generation is cached per model
fingerprint and request in the store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.progress import Progress

from tunecheck.errors import GuardError, TunecheckError
from tunecheck.models.base import Model
from tunecheck.pipeline.progress import progress_task
from tunecheck.pipeline.state import ContenderOutputs, LoadedTask, RunState
from tunecheck.requests import contender_requests
from tunecheck.results import RunResult
from tunecheck.spec import ContenderSpec, Spec
from tunecheck.store import Store

if TYPE_CHECKING:
    from tunecheck.probes.base import Probe, ProbeOutcome


@dataclass
class RunOptions:
    """Knobs of one run that are not part of the spec."""

    limit: int | None = None
    store_url: str | None = None
    allow_overlap: bool = False
    probes: bool = True
    show_progress: bool = True
    run_id: str | None = None
    tracking: Any = None
    """a :class:`~tunecheck.spec.TrackingSpec` used instead of the spec's ``tracking:``"""


def open_models(spec: Spec, store: Store) -> dict[str, Model]:
    """One cached model per distinct model reference (contenders may share a model)."""
    from tunecheck.models import load_model
    from tunecheck.models.cache import CachedModel

    models: dict[str, Model] = {}
    for c in spec.contenders:
        key = model_key(c)
        if key in models:
            continue
        models[key] = CachedModel(load_model(c.model, lazy=True, **c.options), store)
    return models


def model_key(c: ContenderSpec) -> str:
    return f"{c.model}|{sorted(c.options.items())}"


def check_guards(spec: Spec, models: dict[str, Model], tasks: Sequence[LoadedTask]) -> None:
    """Refuse runs that cannot answer the question (see DESIGN: guards no anchor tool has)."""
    from tunecheck.models.guards import check_distinct_contenders, check_distinguishable

    check_distinct_contenders(
        [
            (c.name, models[model_key(c)].fingerprint, c.prompt.build().fingerprint())
            for c in spec.contenders
        ]
    )
    if spec.guard_examples <= 0 or not tasks:
        return
    cand = spec.candidate_spec
    cand_model = models[model_key(cand)]
    examples = tasks[0].examples[: spec.guard_examples]
    requests = contender_requests(cand, examples, spec.seed)
    seen: set[str] = {cand_model.fingerprint}
    for base in spec.baselines:
        base_model = models[model_key(base)]
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
            model = models[model_key(c)]
            requests = contender_requests(c, task.examples, spec.seed)
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
    result: RunResult
    model_calls: int
    seconds: float
    store_url: str
    tracking: list[Any] = field(default_factory=list)
    """one :class:`~tunecheck.tracking.TrackingOutcome` per tracker (failures included)"""

    @property
    def tracking_failed(self) -> bool:
        return any(not t.ok for t in self.tracking)


def run_failed(store: Store, run_id: str, err: BaseException) -> BaseException:
    """Mark a run that stopped early and return what to raise: a clear error on Ctrl-C.

    Every answer received so far is already stored (HTTP answers as they arrive, local
    models per batch), so running the same command again resumes.
    """
    if isinstance(err, KeyboardInterrupt):
        store.finish_run(run_id, status="interrupted", error="interrupted by the user")
        return TunecheckError(
            "interrupted; every answer received so far is stored "
            "(requests in flight and a local model's unfinished batch are not)",
            hint="run the same command again to resume: only what is missing is generated",
        )
    store.finish_run(run_id, status="failed", error=f"{type(err).__name__}: {err}")
    return err


@dataclass
class ProbePlan:
    """Which models the probes compare, or why no probe runs (stated in the verdict)."""

    base: Model | None = None
    candidate: Model | None = None
    base_name: str = "base"
    pairing: str = ""
    skip_reason: str = ""
    implicit: bool = False
    #: k-fold runs: per-fold candidates, each answering its own share of every probe
    fold_candidates: list[Model] = field(default_factory=list)


def strip_adapter(ref: str) -> str | None:
    """``hf:base+adapter=path`` -> ``hf:base`` (the base model of an adapter reference), else None."""
    backend, sep, target = ref.partition(":")
    head = target if sep else ref
    parts = head.split("+")
    kept = [p for p in parts[1:] if not p.startswith("adapter=")]
    if len(kept) == len(parts) - 1:
        return None
    stripped = "+".join([parts[0], *kept])
    return f"{backend}:{stripped}" if sep else stripped


def plan_probes(
    spec: Spec, models: dict[str, Model], store: Store | None = None, *, enabled: bool = True
) -> ProbePlan:
    """Pair the candidate with the ``probe_baseline`` contender (default: its base model
    without adapter) for the capability probes."""
    from tunecheck.models import split_model_ref

    cand_spec = spec.candidate_spec
    if not enabled:
        return ProbePlan(skip_reason="--no-probes")
    if spec.probes is not None and not spec.probes:
        return ProbePlan(skip_reason="`probes: []` in the spec")
    if split_model_ref(cand_spec.model)[0] == "hf-classifier":
        return ProbePlan(
            skip_reason="the candidate is a classifier: capability probes need a generative model"
        )
    cand = models[model_key(cand_spec)]
    by_name = {c.name: c for c in spec.contenders}
    if spec.probe_baseline:
        chosen = by_name[spec.probe_baseline]
        return ProbePlan(
            models[model_key(chosen)],
            cand,
            chosen.name,
            f"capability probes compare {cand_spec.name!r} with {chosen.name!r} (probe_baseline)",
        )
    base_ref = strip_adapter(cand_spec.model)
    if base_ref is not None:
        for b in spec.baselines:
            if b.model == base_ref and b.options == cand_spec.options:
                return ProbePlan(
                    models[model_key(b)],
                    cand,
                    b.name,
                    f"capability probes compare {cand_spec.name!r} with {b.name!r}, its base model "
                    "without adapter",
                )
        from tunecheck.models import load_model
        from tunecheck.models.cache import CachedModel

        base = load_model(base_ref, lazy=True, **cand_spec.options)
        if store is not None:
            base = CachedModel(base, store)
        return ProbePlan(
            base,
            cand,
            "base (no adapter)",
            f"capability probes compare {cand_spec.name!r} with its base model without adapter "
            f"({base_ref}; no contender runs it)",
            implicit=True,
        )
    for b in spec.baselines:
        base = models[model_key(b)]
        if base.fingerprint != cand.fingerprint:
            return ProbePlan(
                base,
                cand,
                b.name,
                f"capability probes compare {cand_spec.name!r} with {b.name!r}, the first baseline "
                "on other weights (set `probe_baseline` to name the base model explicitly)",
            )
    return ProbePlan(
        skip_reason="every baseline shares the candidate's weights (a prompt-only comparison)"
    )


def run_probes(
    spec: Spec, models: dict[str, Model], progress: Progress, *, plan: ProbePlan | None = None
) -> list[Any]:
    """Run every probe on the base and the fine-tuned model; returns (spec, base, ft) outcomes.

    With ``plan.fold_candidates`` (k-fold runs) fold model *i* answers the *i*-th of K
    disjoint shares of each probe, so every probe item is still answered once per side.
    """
    from tunecheck.probe_rules import chance_level
    from tunecheck.probes import build_probe, run_probe

    plan = plan or plan_probes(spec, models)
    pair = None if plan.base is None or plan.candidate is None else (plan.base, plan.candidate)
    outcomes = []
    for probe_spec in spec.probe_specs():
        if probe_spec.lm_eval is not None:
            from tunecheck.probes.lm_eval_spec import lm_eval_outcomes

            if pair is None and probe_spec.lm_eval_samples is None:
                continue
            tid = progress.add_task(f"probe {probe_spec.name} · lm-eval", total=None, rate="")
            b, f = lm_eval_outcomes(probe_spec, *(pair or (None, None)), seed=spec.seed)
            progress.update(tid, total=1, completed=1)
            outcomes.append((probe_spec, b, f))
            continue
        if pair is None:
            continue
        base_model, candidate_model = pair
        probe = build_probe(probe_spec, seed=spec.seed)
        chance = chance_level(probe)
        with progress_task(
            progress, f"probe {probe_spec.name} · {plan.base_name}", len(probe.examples)
        ) as advance:
            base_out = run_probe(probe, base_model, progress=advance)
        with progress_task(
            progress, f"probe {probe_spec.name} · {spec.candidate}", len(probe.examples)
        ) as advance:
            if plan.fold_candidates:
                ft_out = run_probe_by_fold(probe, plan.fold_candidates, progress=advance)
            else:
                ft_out = run_probe(probe, candidate_model, progress=advance)
        for out in (base_out, ft_out):
            out.details["chance"] = chance
        outcomes.append((probe_spec, base_out, ft_out))
    return outcomes


def run_probe_by_fold(
    probe: Probe, models: Sequence[Model], *, progress: Callable[[int], None] | None = None
) -> ProbeOutcome:
    """Fold model *i* answers items ``i, i+K, i+2K...`` of ``probe``; one pooled outcome."""
    from dataclasses import replace

    from tunecheck.probes import run_probe
    from tunecheck.probes.base import outcome

    parts = []
    k = len(models)
    for i, model in enumerate(models):
        share = probe.examples[i::k]
        if share:
            parts.append(run_probe(replace(probe, examples=share), model, progress=progress))
    details: dict[str, Any] = {"folds": k}
    for key in ("errors", "invalid"):
        details[key] = sum(int(p.details.get(key, 0) or 0) for p in parts)
    kinds = {p.details.get("kind") for p in parts}
    details["kind"] = "binary" if kinds == {"binary"} else "continuous"
    return outcome(
        probe.name,
        probe.metric,
        np.concatenate([p.per_example for p in parts]) if parts else [],
        [i for p in parts for i in p.example_ids],
        [o for p in parts for o in p.outputs],
        details,
    )
