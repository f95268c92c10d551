"""Wiring the judge stage into ``tunecheck run``: one cached judge model per reference.

Called by the runner after generation; the judge's answers go to the same store cache
as the contenders' generations (keyed by the judge's fingerprint and rendered prompt).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tunecheck.errors import TunecheckError
from tunecheck.judge.config import JUDGE_METRICS, JudgeSpec
from tunecheck.judge.stage import JudgeOutcome, run_task_judge
from tunecheck.metrics import MetricScores

if TYPE_CHECKING:
    from rich.progress import Progress

    from tunecheck.models.base import Model
    from tunecheck.pipeline.state import RunState
    from tunecheck.spec import Spec
    from tunecheck.store import Store


def open_judge(ref: str, options: dict[str, Any], store: Store, batch_size: int) -> Model:
    """The judge behind the run's cache (lazy: a fully cached re-run never loads it)."""
    from tunecheck.models import load_model
    from tunecheck.models.cache import CachedModel

    return CachedModel(load_model(ref, lazy=True, **options), store, chunk_size=batch_size)


def _weights_of(ref: str) -> str:
    """The base weights a model reference points at (an adapter shares its base's weights)."""
    return ref.split("+", 1)[0].rstrip("/")


def self_judging(judge_ref: str, spec: Spec) -> list[str]:
    """Warn when the judge is (built on) a contender's model: judges favour their own outputs."""
    out = []
    for c in spec.contenders:
        if _weights_of(c.model) == _weights_of(judge_ref):
            out.append(
                f"the judge runs on the same weights as contender {c.name!r}: judges tend to "
                "prefer their own outputs (self-preference); use a judge from another model family"
            )
    return out


def _metric_lookup(outputs: dict[str, Any], task: Any, examples: Any) -> Any:
    """``(contender, metric) -> MetricScores`` for task metrics, computed once each."""
    cache: dict[tuple[str, str], MetricScores | None] = {}

    def lookup(name: str, metric: str) -> MetricScores | None:
        if metric in JUDGE_METRICS:
            return None
        if (name, metric) not in cache:
            scored = task.to_task(examples).score(outputs[name], metrics=[metric])
            cache[(name, metric)] = scored[metric]
        return cache[(name, metric)]

    return lookup


def judge_key(judge: JudgeSpec) -> str:
    return f"{judge.model}|{sorted(judge.options.items())}|{judge.batch_size}"


def open_judges(spec: Spec, store: Store) -> dict[str, Model]:
    """Every task's judge, opened lazily (reference and options checked, weights not loaded)."""
    models: dict[str, Model] = {}
    for idx, task in enumerate(spec.tasks):
        judge = task.judge
        if judge is None or judge_key(judge) in models:
            continue
        try:
            models[judge_key(judge)] = open_judge(
                judge.model, judge.options, store, judge.batch_size
            )
        except TunecheckError as err:
            raise type(err)(
                err.message, where=f"tasks.{idx}.judge.model ({err.where})", hint=err.hint
            ) from None
    return models


def _attach_human_labels(
    pairwise: list[Any], path: str, task: str, examples: Any, outputs: dict[str, Any], spec: Spec
) -> None:
    """Each pairwise result gets the judge's agreement with the people's labels in ``path``."""
    from tunecheck.judge.human_labels import load_human_labels, pair_agreement

    labels = load_human_labels(path)  # read (and checked) in pre-flight already
    by_id = {
        name: {e.id: out for e, out in zip(examples, texts, strict=True)}
        for name, texts in outputs.items()
    }
    for pw in pairwise:
        pw.human_labels = path
        pw.human_agreement = pair_agreement(
            pw, labels, task=task, outputs=by_id, resamples=spec.bootstrap, seed=spec.seed
        )


def run_judges(state: RunState, spec: Spec, store: Store, progress: Progress) -> None:
    """Judge every task that has a ``judge:`` block; outcomes go to ``state.judge``."""
    from tunecheck.pipeline.progress import progress_task

    models = state.judge_models or open_judges(spec, store)
    for idx, loaded in enumerate(state.tasks):
        task = loaded.spec
        judge = task.judge
        if judge is None:
            continue
        key = judge_key(judge)
        outputs = {c.name: state.outputs[(c.name, task.name)].texts for c in spec.contenders}
        metric_scores = _metric_lookup(outputs, task, loaded.examples)
        pairs = 0
        if judge.pairwise is not None:
            every = judge.pairwise.against == "all" or task.primary_metric == "judge_win_rate"
            pairs = 2 * (len(spec.baselines) if every else 1)
        n_items = len(loaded.examples) * ((len(spec.contenders) if judge.rubric else 0) + pairs)
        with progress_task(progress, f"judge · {task.name}", n_items) as advance:
            outcome: JudgeOutcome = run_task_judge(
                judge,
                models[key],
                loaded.examples,
                outputs,
                candidate=spec.candidate or spec.contenders[-1].name,
                baselines=[b.name for b in spec.baselines],
                primary_metric=task.primary_metric or task.metrics[0],
                metrics=task.metrics,
                metric_scores=metric_scores,
                seed=spec.seed,
                alpha=spec.thresholds.alpha,
                n_resamples=spec.bootstrap,
                progress=advance,
                where=f"tasks.{idx}.judge",
            )
        if outcome.result is not None:
            outcome.result.warnings.extend(self_judging(judge.model, spec))
            if judge.pairwise is not None and judge.pairwise.human_labels is not None:
                _attach_human_labels(outcome.result.pairwise, judge.pairwise.human_labels,
                                     task.name, loaded.examples, outputs, spec)  # fmt: skip
        state.judge[task.name] = outcome
    for m in models.values():
        m.close()
