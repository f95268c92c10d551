"""lm-eval tasks as spec probes: ``probes: [{name: mmlu, lm_eval: mmlu, n: 200}]``.

Two ways to get the per-document samples of the base and the fine-tuned model:

* run lm-evaluation-harness on both, through :class:`TunecheckLM` — an lm-eval ``LM``
  that answers with any tunecheck backend (so the answers are cached in the run store
  like every other request, and an OpenAI-compatible server works as well as a local
  model); each task keeps its own prompt and metric;
* import folders written earlier with ``lm_eval --log_samples``
  (``lm_eval_samples: {base: DIR, finetuned: DIR}``).

Either way :func:`~tunecheck.probes.lm_eval_bridge.import_lm_eval` pairs the samples per
document; a group task (``mmlu``) becomes one probe over all its sub-tasks' documents.
Task names are checked against lm-eval's task index before any model call.
"""

from __future__ import annotations

import difflib
import functools
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tunecheck.errors import BackendError, DataError, SpecError, TunecheckError
from tunecheck.models.base import (
    GenerationParams,
    GenerationRequest,
    LoglikelihoodRequest,
    Model,
)
from tunecheck.probes.base import ProbeOutcome, outcome
from tunecheck.probes.lm_eval_bridge import PairedProbe, import_lm_eval

__all__ = ["check_lm_eval_probes", "lm_eval_outcomes", "task_manager", "tunecheck_lm"]


def _lm_eval() -> Any:
    try:
        import lm_eval
    except ImportError:
        raise TunecheckError(
            "lm-eval probes need the lm-evaluation-harness package",
            hint="pip install 'tunecheck[lm-eval]'",
        ) from None
    return lm_eval


@functools.lru_cache(maxsize=4)
def task_manager(include_path: str | None = None) -> Any:
    """lm-eval's task index (slow to build: cached per include path)."""
    _lm_eval()
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=include_path) if include_path else TaskManager()


def check_lm_eval_probes(probes: Sequence[Any]) -> None:
    """Before any model call: every ``lm_eval`` task exists, every samples folder exists."""
    for p in probes:
        if getattr(p, "lm_eval", None) is None:
            continue
        where = f"probes.{p.name}.lm_eval"
        if p.lm_eval_samples is not None:
            for side in ("base", "finetuned"):
                folder = Path(getattr(p.lm_eval_samples, side))
                if not folder.is_dir():
                    raise SpecError(
                        f"lm-eval samples folder for {side} not found: {folder}",
                        where=f"probes.{p.name}.lm_eval_samples.{side}",
                        hint="point it at an lm_eval --output_path run with --log_samples",
                    )
            continue
        if p.lm_eval_include and not Path(p.lm_eval_include).is_dir():
            raise SpecError(
                f"lm-eval task folder not found: {p.lm_eval_include}",
                where=f"probes.{p.name}.lm_eval_include",
            )
        known = task_manager(p.lm_eval_include).all_tasks
        if p.lm_eval not in known:
            close = difflib.get_close_matches(p.lm_eval, known, n=3)
            raise SpecError(
                f"lm-eval has no task or group named {p.lm_eval!r}"
                + (f" (did you mean {', '.join(map(repr, close))}?)" if close else ""),
                where=where,
                hint="list tasks with `lm_eval ls tasks`; local task YAML files need "
                "lm_eval_include: FOLDER",
            )


@functools.cache
def _lm_class() -> type:
    """lm-eval's ``LM`` subclassed on first use (importing lm-eval is slow and optional)."""
    _lm_eval()
    from lm_eval.api.model import LM

    class TunecheckLM(LM):
        """An lm-eval language model answering through a tunecheck :class:`Model`.

        ``loglikelihood`` maps to the backend's log-likelihoods, ``generate_until`` to
        greedy generation with the task's stop sequences and token budget. Prompts are sent
        as raw text (lm-eval builds them, few-shot examples included), never through a chat
        template.
        """

        def __init__(self, model: Model, seed: int = 0) -> None:
            super().__init__()
            self.model = model
            self.seed = seed

        def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[Any]:
            reqs = [
                LoglikelihoodRequest(context=r.args[0], continuation=r.args[1]) for r in requests
            ]
            results = self.model.loglikelihood(reqs)
            out = []
            for r in results:
                if r.error:
                    raise BackendError(f"log-likelihood request failed: {r.error}")
                out.append((float(r.logprob), bool(r.is_greedy)))
            return out

        def loglikelihood_rolling(
            self, requests: list[Any], disable_tqdm: bool = False
        ) -> list[Any]:
            raise TunecheckError(
                "this lm-eval task needs rolling log-likelihoods (perplexity), which tunecheck "
                "backends do not provide",
                hint="pick a multiple-choice or generation task, or import --log_samples folders",
            )

        def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
            gens = []
            for r in requests:
                context, kwargs = r.args
                until = kwargs.get("until") or []
                until = [until] if isinstance(until, str) else list(until)
                params = GenerationParams(
                    max_new_tokens=int(kwargs.get("max_gen_toks", 256)),
                    temperature=float(kwargs.get("temperature", 0.0) or 0.0),
                    stop=tuple(until),
                    seed=self.seed,
                )
                gens.append(GenerationRequest(prompt=context, params=params))
            out: list[str] = []
            for g in self.model.generate(gens):
                text = g.text if g.ok else ""
                for stop in gens[len(out)].params.stop:
                    if stop and stop in text:
                        text = text[: text.index(stop)]
                out.append(text)
            return out

    return TunecheckLM


def tunecheck_lm(model: Model, seed: int = 0) -> Any:
    """An lm-eval ``LM`` that answers with ``model`` (cached like every tunecheck request)."""
    return _lm_class()(model, seed)


def _run_side(model: Model, probe: Any, folder: Path, seed: int) -> Path:
    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker

    tracker = EvaluationTracker(output_path=str(folder))
    results = simple_evaluate(
        model=tunecheck_lm(model, seed=seed),
        tasks=[probe.lm_eval],
        limit=probe.n,
        log_samples=True,
        evaluation_tracker=tracker,
        task_manager=task_manager(probe.lm_eval_include),
        bootstrap_iters=0,
        random_seed=seed,
        numpy_random_seed=seed,
        torch_random_seed=seed,
        fewshot_random_seed=seed,
    )
    if results is None:
        raise TunecheckError(f"lm-eval returned no results for {probe.lm_eval!r}")
    samples = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=samples)
    for task_name in results["configs"]:
        if task_name in samples:
            tracker.save_results_samples(task_name=task_name, samples=samples[task_name])
    return folder


def _merge(
    name: str, paired: list[PairedProbe], metric: str | None
) -> tuple[ProbeOutcome, ProbeOutcome]:
    """One probe from a group's sub-tasks: their documents concatenated, one metric."""
    if metric is None:
        counts: dict[str, int] = {}
        for p in paired:
            counts[p.metric] = counts.get(p.metric, 0) + 1
        metric = max(counts, key=lambda m: counts[m])
    chosen = [p for p in paired if p.metric == metric]
    if len(chosen) == 1:
        p = chosen[0]
        p.base.name = p.finetuned.name = name
        return p.base, p.finetuned
    sides = []
    for side in ("base", "finetuned"):
        parts = [getattr(p, side) for p in chosen]
        details: dict[str, Any] = {
            "source": "lm-eval",
            "subtasks": [p.name for p in chosen],
            "errors": 0,
            "invalid": 0,
            "unpaired": sum(int(x.details.get("unpaired", 0)) for x in parts),
        }
        directions = {x.details.get("higher_is_better") for x in parts} - {None}
        if len(directions) == 1:
            details["higher_is_better"] = directions.pop()
        per = np.concatenate([x.per_example for x in parts])
        ids = [i for x in parts for i in x.example_ids]
        outs = [o for x in parts for o in x.outputs]
        sides.append(outcome(name, metric, per, ids, outs, details))
    return sides[0], sides[1]


def lm_eval_outcomes(probe: Any, base: Model | None, finetuned: Model | None, *, seed: int = 0,
                     workdir: str | Path | None = None) -> tuple[ProbeOutcome, ProbeOutcome]:  # fmt: skip
    """(base, fine-tuned) outcomes of one lm-eval probe: imported, or run on both models."""
    if probe.lm_eval_samples is not None:
        folders = (Path(probe.lm_eval_samples.base), Path(probe.lm_eval_samples.finetuned))
        paired = _import(*folders, probe.metric)
        return _merge(probe.name, _of_task(paired, probe.lm_eval), probe.metric)
    if base is None or finetuned is None:
        raise TunecheckError(f"probe {probe.name!r}: no base/fine-tuned model pair to run")
    with tempfile.TemporaryDirectory(prefix="tunecheck-lm-eval-") as tmp:
        root = Path(workdir) if workdir else Path(tmp)
        b = _run_side(base, probe, root / "base", seed)
        f = _run_side(finetuned, probe, root / "finetuned", seed)
        paired = _import(b, f, probe.metric)
    return _merge(probe.name, paired, probe.metric)


def _import(base: Path, finetuned: Path, metric: str | None) -> list[PairedProbe]:
    """Pair the samples; with ``metric``, only the (sub-)tasks that report it."""
    if metric is None:
        return import_lm_eval(base, finetuned)
    from tunecheck.probes.lm_eval_bridge import _sample_files

    tasks = sorted(set(_sample_files(base)) & set(_sample_files(finetuned)))
    out: list[PairedProbe] = []
    for task in tasks:
        try:
            out += import_lm_eval(base, finetuned, metric=metric, tasks=[task])
        except DataError as err:
            if "is not in the samples" not in err.message:
                raise
    if not out:
        raise SpecError(
            f"no lm-eval task in {base} reports the metric {metric!r}",
            where="probes.metric",
            hint="leave `metric` out to use each task's own",
        )
    return out


def _of_task(paired: list[PairedProbe], task: str) -> list[PairedProbe]:
    """The imported probes of ``task`` (itself, or its sub-tasks when it is a group)."""
    exact = [p for p in paired if p.name == task or p.name.startswith(f"{task}/")]
    if exact:
        return exact
    prefixed = [p for p in paired if p.name.startswith(f"{task}_")]
    if prefixed:
        return prefixed
    raise TunecheckError(
        f"the imported lm-eval samples hold no task {task!r}",
        hint=f"tasks found: {sorted({p.name for p in paired})}",
    )
