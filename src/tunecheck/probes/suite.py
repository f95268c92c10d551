"""Build probes from the spec and run them on a model: the runner's entry points."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tunecheck.errors import BackendError, DataError, SpecError
from tunecheck.examples import Example
from tunecheck.models.base import GenerationParams, Model, Progress
from tunecheck.probes import scoring
from tunecheck.probes.base import Probe, ProbeOutcome, outcome, probes
from tunecheck.prompts import Prompt
from tunecheck.spec import DEFAULT_PROBES, FieldMap, ParserSpec, ProbeSpec
from tunecheck.task import Task

# options read by the probe runner; everything else goes to the generator function
RUN_OPTIONS = ("max_new_tokens", "system", "parser", "metric_options")
# generation budgets per scoring kind; a source may set its own (``SOURCE_MAX_NEW_TOKENS``)
DEFAULT_MAX_NEW_TOKENS = {
    "number": 64,
    "answer": 64,
    "ifeval": 256,
    "multiple_choice": 16,
    "metric": 128,
}
SOURCE_MAX_NEW_TOKENS = {"instructions": 160, "gsm8k": 256, "ifeval": 384}
IFEVAL_METRICS = (
    "prompt_level_strict_acc",
    "inst_level_strict_acc",
    "prompt_level_loose_acc",
    "inst_level_loose_acc",
)


def default_probes(*, seed: int = 13, n: int | None = None) -> list[Probe]:
    """The built-in generated set used when a spec declares no probes (``DEFAULT_PROBES``)."""
    specs = [ProbeSpec(**({**p, "n": n} if n else p)) for p in DEFAULT_PROBES]
    return [build_probe(s, seed=seed) for s in specs]


def build_probe(spec: ProbeSpec, *, seed: int) -> Probe:
    """Turn a :class:`~tunecheck.spec.ProbeSpec` into a runnable :class:`Probe`.

    ``builtin`` probes are generated with ``seed`` (``spec.n`` items); ``path`` probes are
    benchmark files (format detected or given by ``format``) sampled to ``spec.n`` items
    with ``seed``, or, when ``fields`` is set or ``format: task``, a user task file scored
    with ``metric`` (any metric registered in :mod:`tunecheck.metrics`).
    """
    where = f"probes.{spec.name}"
    run_opts = {k: v for k, v in spec.options.items() if k in RUN_OPTIONS}
    gen_opts = {k: v for k, v in spec.options.items() if k not in RUN_OPTIONS}
    if spec.builtin is not None:
        builtin = probes.get(spec.builtin, where=f"{where}.builtin")
        try:
            examples = builtin.generate(spec.n, seed, **gen_opts)
        except (TypeError, ValueError) as err:
            raise SpecError(
                f"invalid option for the {spec.builtin!r} probe: {err}", where=f"{where}.options"
            ) from None
        metric = spec.metric or builtin.metric
        _check_metric(builtin.scoring, metric, where)
        if spec.builtin in SOURCE_MAX_NEW_TOKENS:
            run_opts.setdefault("max_new_tokens", SOURCE_MAX_NEW_TOKENS[spec.builtin])
        return Probe(
            spec.name,
            examples,
            builtin.scoring,
            metric,
            spec.mode,
            f"builtin:{spec.builtin}",
            run_opts,
        )
    assert spec.path is not None
    if spec.fields is not None or spec.format == "task":
        return _task_probe(spec, seed, where, run_opts)
    if gen_opts:
        raise SpecError(f"unknown options {sorted(gen_opts)} for a benchmark probe", where=f"{where}.options",
                        hint=f"benchmark probes accept {', '.join(RUN_OPTIONS)}")  # fmt: skip
    from tunecheck.probes.loaders import load_benchmark

    fmt, examples = load_benchmark(spec.path, spec.format, n=spec.n, seed=seed)
    if not examples:
        raise DataError("the benchmark has no items", where=spec.path)
    metric = spec.metric or fmt.metric
    _check_metric(fmt.scoring, metric, where)
    if fmt.name in SOURCE_MAX_NEW_TOKENS:
        run_opts.setdefault("max_new_tokens", SOURCE_MAX_NEW_TOKENS[fmt.name])
    return Probe(
        spec.name, examples, fmt.scoring, metric, spec.mode, f"{fmt.name}:{spec.path}", run_opts
    )


def _check_metric(scoring_kind: str, metric: str, where: str) -> None:
    allowed = {
        "multiple_choice": ("acc", "acc_norm"),
        "ifeval": IFEVAL_METRICS,
        "number": ("accuracy",),
        "answer": ("accuracy",),
    }.get(scoring_kind)
    if allowed and metric not in allowed:
        raise SpecError(f"metric {metric!r} does not apply to this probe", where=f"{where}.metric",
                        hint=f"use one of {', '.join(allowed)}")  # fmt: skip


def _task_probe(spec: ProbeSpec, seed: int, where: str, run_opts: dict[str, Any]) -> Probe:
    from tunecheck.data.load import load_examples
    from tunecheck.metrics import METRICS, validate_options
    from tunecheck.probes.loaders import sample_examples

    metric = spec.metric or "exact_match"
    METRICS.get(metric, where=f"{where}.metric")
    # e.g. options: {metric_options: {model: DIR}} for a bertscore probe
    validate_options(
        metric, run_opts.get("metric_options"), where=f"{where}.options.metric_options"
    )
    examples = load_examples(spec.path, spec.fields or FieldMap())  # type: ignore[arg-type]
    if not examples:
        raise DataError("the probe file has no rows", where=spec.path)
    parser = run_opts.get("parser")
    if parser is not None and not isinstance(parser, ParserSpec):
        try:
            run_opts["parser"] = ParserSpec(**parser)
        except Exception as err:
            raise SpecError(f"invalid parser: {err}", where=f"{where}.options.parser") from None
    examples = sample_examples(examples, spec.n, seed)
    return Probe(spec.name, examples, "metric", metric, spec.mode, f"task:{spec.path}", run_opts)


# ----------------------------------------------------------------------------- running


# A generated probe is scored by a task metric (tunecheck.metrics): the one scoring path.
SCORING_METRIC = {
    "multiple_choice": "choice_letter",
    "number": "numeric_match",
    "answer": "answer_match",
}


def probe_task(probe: Probe) -> Task:
    """The probe as a :class:`~tunecheck.task.Task`: its examples, its fixed prompt (an
    optional system turn) and the metric that scores its answers."""
    scorer = SCORING_METRIC.get(probe.scoring, probe.metric)
    return Task.of(
        probe.name,
        probe.examples,
        [scorer],
        probe.options.get("parser"),
        prompt=Prompt(system=probe.options.get("system")),
        metric_options={scorer: probe.options.get("metric_options") or {}},
        where=f"probes.{probe.name}.metric",
    )


def _example_progress(examples: Sequence[Example], progress: Progress | None) -> Progress | None:
    """Turn per-choice request counts into per-question progress."""
    if progress is None:
        return None
    ends = np.cumsum([len(ex.meta["continuations"]) for ex in examples])
    state = {"requests": 0, "examples": 0}

    def advance(k: int) -> None:
        state["requests"] += k
        done = int(np.searchsorted(ends, state["requests"], side="right"))
        if done > state["examples"]:
            progress(done - state["examples"])
            state["examples"] = done

    return advance


def _run_loglikelihood(probe: Probe, model: Model, progress: Progress | None) -> ProbeOutcome:
    reqs = scoring.mc_requests(probe.examples)
    results = model.loglikelihood(reqs, _example_progress(probe.examples, progress))
    acc, norm, ok = scoring.score_mc_loglikelihood(probe.examples, results)
    keep = np.array(ok, dtype=bool)
    ids = [ex.id for ex, k in zip(probe.examples, ok, strict=True) if k]
    primary, other = (norm, acc) if probe.metric == "acc_norm" else (acc, norm)
    details = {
        "mode": "loglikelihood",
        "acc": float(acc.scores[keep].mean()) if keep.any() else float("nan"),
        "acc_norm": float(norm.scores[keep].mean()) if keep.any() else float("nan"),
        f"per_example_{'acc' if probe.metric == 'acc_norm' else 'acc_norm'}": other.scores[
            keep
        ].tolist(),
        "invalid": 0,
        "errors": int((~keep).sum()),
        "kind": "binary",
    }
    answers = [a for a, k in zip(primary.answers, ok, strict=True) if k]
    return outcome(probe.name, probe.metric, primary.scores[keep], ids, answers, details)


def run_probe(
    probe: Probe,
    model: Model,
    *,
    params: GenerationParams | None = None,
    progress: Progress | None = None,
) -> ProbeOutcome:
    """Run ``probe`` on ``model`` and score every example.

    Multiple choice uses log-likelihoods when ``probe.mode`` is ``loglikelihood``, or
    ``auto`` and the backend provides them; otherwise the generated letter. Examples whose
    request failed in the backend are left out (counted in ``details["errors"]``), never
    scored as wrong; unparseable answers are wrong and counted in ``details["invalid"]``.
    """
    if probe.scoring == "multiple_choice":
        use_ll = probe.mode == "loglikelihood" or (
            probe.mode == "auto" and getattr(model, "supports_loglikelihood", True)
        )
        if use_ll:
            try:
                return _run_loglikelihood(probe, model, progress)
            except BackendError:
                if probe.mode == "loglikelihood":
                    raise
    task = probe_task(probe)
    if params is None:
        limit = probe.options.get("max_new_tokens") or DEFAULT_MAX_NEW_TOKENS[probe.scoring]
        params = GenerationParams(max_new_tokens=int(limit))
    generations = model.generate(task.requests(params), progress)
    texts = [g.text if g.ok else None for g in generations]
    # scored exactly as a task: a backend error is left out and counted, never scored wrong
    (scores,) = task.score(texts).values()
    details = dict(scores.details)
    details["kind"] = scores.kind
    outputs = [t for t in texts if t is not None]
    if probe.scoring == "multiple_choice":
        details["mode"] = "generate"
        outputs = details.pop("answers")  # the letters read, as the log-likelihood mode keeps
    return ProbeOutcome(
        probe.name, probe.metric, float(scores.value), np.asarray(scores.per_example, dtype=float),
        list(scores.example_ids), outputs, details,
    )  # fmt: skip
