"""Results over time: run summaries, run-to-run comparison and a candidate's history.

Everything is read from the store's stored results (no model call). Comparing two
runs pairs their candidates' per-example scores on the primary metric, so it needs
both runs evaluated on the same locked test set (same lock hash); otherwise
:class:`LockMismatchError`. The paired test is :func:`tunecheck.stats.compare`, the
same one a run uses between contenders.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field
from sqlalchemy import select

from tunecheck.errors import TunecheckError
from tunecheck.flips import FlipList, flips_between
from tunecheck.results import RunResult, TaskResult
from tunecheck.stats import Comparison, compare
from tunecheck.store import Store
from tunecheck.store.schema import RunRow

__all__ = [
    "HistoryEntry",
    "HistoryReport",
    "LockMismatchError",
    "RunComparison",
    "RunSummary",
    "compare_results",
    "compare_runs",
    "history",
    "plot_history",
    "run_summaries",
    "task_lock",
]


class LockMismatchError(TunecheckError):
    """Two runs were not evaluated on the same locked test set: no paired comparison."""


class RunSummary(BaseModel):
    """One row of ``tunecheck runs``: a run's task, candidate, primary metric and verdict."""

    id: str
    created_at: str | None
    status: str
    spec: str | None = Field(None, description="spec name (the first task's name)")
    spec_path: str | None = None
    spec_hash: str | None = None
    lock_hash: str | None = None
    task: str | None = None
    candidate: str | None = None
    baseline: str | None = Field(None, description="the strongest baseline")
    metric: str | None = None
    value: float | None = Field(None, description="the candidate's primary metric")
    baseline_value: float | None = None
    delta: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    higher_is_better: bool = True
    verdict: str | None = None


def _summaries_for(row: RunRow) -> list[RunSummary]:
    base = {
        "id": row.id,
        "created_at": row.created_at.isoformat(timespec="seconds") if row.created_at else None,
        "status": row.status,
        "spec": row.name,
        "spec_path": row.spec_path,
        "spec_hash": row.spec_hash,
        "lock_hash": row.lock_hash,
        "verdict": row.verdict,
    }
    if not row.result_json:
        return [RunSummary(**base)]
    result = RunResult.model_validate(row.result_json)
    out = []
    for task in result.tasks:
        comp = task.comparison()
        out.append(
            RunSummary(
                **{**base, "lock_hash": task_lock(result, task.name)},
                task=task.name,
                candidate=task.candidate,
                baseline=task.strongest_baseline,
                metric=task.primary_metric,
                value=comp.candidate_value,
                baseline_value=comp.baseline_value,
                delta=comp.delta,
                ci_low=comp.ci_low,
                ci_high=comp.ci_high,
                p_value=comp.p_adjusted if comp.p_adjusted is not None else comp.p_value,
                higher_is_better=comp.higher_is_better,
            )
        )
    return out or [RunSummary(**base)]


def run_summaries(
    store: Store,
    *,
    spec: str | None = None,
    task: str | None = None,
    candidate: str | None = None,
    limit: int | None = 50,
) -> list[RunSummary]:
    """Runs newest first, one row per task, filtered by spec (name, path or hash prefix),
    task and candidate name."""
    out: list[RunSummary] = []
    with store.engine.connect() as conn:
        rows = conn.execute(select(RunRow).order_by(RunRow.created_at.desc(), RunRow.id))
        for row in rows:
            if spec and not _spec_matches(row, spec):
                continue
            for s in _summaries_for(row):  # type: ignore[arg-type]
                if task and s.task != task:
                    continue
                if candidate and s.candidate != candidate:
                    continue
                out.append(s)
            if limit is not None and len(out) >= limit:
                break
    return out[:limit] if limit is not None else out


def _spec_matches(row: Any, spec: str) -> bool:
    if row.name == spec or (row.spec_hash or "").startswith(spec):
        return True
    if row.spec_path:
        path = Path(row.spec_path)
        given = Path(spec)
        return path == given or path.name == spec or path.resolve() == given.resolve()
    return False


# --------------------------------------------------------------------------- compare


class RunComparison(BaseModel):
    """Run B's candidate vs run A's on the examples both scored (same locked test set)."""

    run_a: str
    run_b: str
    candidate_a: str
    candidate_b: str
    task: str
    metric: str
    lock_hash: str | None
    note: str = ""
    comparison: Comparison = Field(description="B minus A, paired per example")
    flips: FlipList = Field(description="broken: worse in B than in A (worst first); fixed: better")

    @property
    def worse(self) -> bool:
        """B is significantly worse than A (in the metric's direction)."""
        gain = self.comparison.improvement()[0]
        return bool(self.comparison.significant and gain is not None and gain < 0)


def _pick_task(result: RunResult, name: str | None, run_id: str) -> TaskResult:
    if not result.tasks:
        raise TunecheckError(f"run {run_id} has no task results")
    if name is None:
        return result.tasks[0]
    for t in result.tasks:
        if t.name == name:
            return t
    raise TunecheckError(
        f"run {run_id} has no task {name!r}", hint=f"its tasks: {[t.name for t in result.tasks]}"
    )


def compare_results(
    a: RunResult,
    b: RunResult,
    *,
    task: str | None = None,
    alpha: float = 0.05,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> RunComparison:
    """Paired comparison of two stored results' candidates (B minus A) on one task."""
    from tunecheck.metrics import MetricScores
    from tunecheck.metrics.base import MetricKind

    ta = _pick_task(a, task, a.run_id)
    tb = _pick_task(b, ta.name, b.run_id)
    la, lb = task_lock(a, ta.name), task_lock(b, tb.name)
    if la != lb:
        raise LockMismatchError(
            f"runs {a.run_id} and {b.run_id} were not evaluated on the same locked test set "
            f"(lock {str(la)[:12]} vs {str(lb)[:12]})",
            hint="compare runs of the same lock (two checkpoints or two fine-tunes evaluated on "
            "one `tunecheck split`); re-run the older spec on the current lock to compare",
        )
    note = "" if la else "neither run recorded a lock: paired on the example ids both share"
    metric = ta.primary_metric
    if tb.primary_metric != metric and metric not in tb.metrics:
        raise TunecheckError(
            f"run {b.run_id} has no metric {metric!r} on task {ta.name!r}",
            hint="compare runs scored with the same primary metric",
        )
    sa = {e.id: e.scores.get(ta.candidate, {}).get(metric) for e in ta.examples}
    sb = {e.id: e.scores.get(tb.candidate, {}).get(metric) for e in tb.examples}
    ids = [i for i in sa if i in sb and sa[i] is not None and sb[i] is not None]
    if not ids:
        raise TunecheckError(
            f"runs {a.run_id} and {b.run_id} share no scored example of task {ta.name!r}",
            hint="were they stored without per-example outcomes?",
        )
    higher = next((c.higher_is_better for c in ta.comparisons if c.metric == metric), True)
    if any(c.metric == metric and c.kind == "corpus" for c in ta.comparisons):
        note = (note + "; " if note else "") + (
            f"{metric} is a corpus-level metric: runs are compared on its per-example "
            "(sentence-level) scores"
        )
    va = np.array([sa[i] for i in ids], dtype=float)
    vb = np.array([sb[i] for i in ids], dtype=float)
    kind: MetricKind = (
        "binary" if np.isin(np.concatenate([va, vb]), (0.0, 1.0)).all() else "continuous"
    )
    comp = compare(
        MetricScores(metric, float(vb.mean()), vb, ids, kind, higher_is_better=higher),
        MetricScores(metric, float(va.mean()), va, ids, kind, higher_is_better=higher),
        alpha=alpha, n_resamples=n_resamples, seed=seed,
        candidate_name=b.run_id, baseline_name=a.run_id,
    )  # fmt: skip
    flips = flips_between(
        sa, sb, before_name=a.run_id, after_name=b.run_id, metric=metric,
        higher_is_better=higher, ids=ids,
    )  # fmt: skip
    return RunComparison(
        run_a=a.run_id, run_b=b.run_id, candidate_a=ta.candidate, candidate_b=tb.candidate,
        task=ta.name, metric=metric, lock_hash=la, note=note, comparison=comp, flips=flips,
    )  # fmt: skip


def task_lock(result: RunResult, task: str) -> str | None:
    """The lock hash ``task`` was evaluated on: its own data block's (schema 2), else the
    run's (the first task's lock; all a schema-1 report records)."""
    own = next((d.lock_sha256 for d in result.data if d.task == task and d.lock_sha256), None)
    return own or result.lock_hash


def load_result(store: Store, run_id: str) -> RunResult:
    """A stored run's result (a unique id prefix is enough); refuses runs without one."""
    run = store.get_run(run_id)
    if not run.result:
        raise TunecheckError(
            f"run {run.id} has no stored result (status: {run.status})",
            hint="re-run its spec with `tunecheck run` to complete it",
        )
    return RunResult.model_validate(run.result)


def compare_runs(store: Store, run_a: str, run_b: str, **kwargs: Any) -> RunComparison:
    """:func:`compare_results` on two stored runs (unique id prefixes accepted)."""
    return compare_results(load_result(store, run_a), load_result(store, run_b), **kwargs)


# --------------------------------------------------------------------------- history


class HistoryEntry(BaseModel):
    """One run in a task's history, oldest first."""

    run_id: str
    created_at: str | None
    candidate: str
    value: float | None
    baseline: str
    baseline_value: float | None
    delta: float | None
    ci_low: float | None
    ci_high: float | None
    verdict: str | None
    vs_last_deploy: str | None = Field(None, description="the DEPLOY run this one is compared with")
    deploy_delta: float | None = Field(None, description="this run minus the last DEPLOY, paired")
    deploy_ci_low: float | None = None
    deploy_ci_high: float | None = None
    deploy_p_value: float | None = None
    regression: bool = Field(
        False, description="significantly worse than the last DEPLOY on the same examples"
    )


class HistoryReport(BaseModel):
    """A task's candidate metric across runs on one locked test set."""

    task: str
    metric: str
    lock_hash: str | None
    higher_is_better: bool = True
    entries: list[HistoryEntry]

    @property
    def regressions(self) -> list[HistoryEntry]:
        return [e for e in self.entries if e.regression]


def history(
    store: Store,
    *,
    task: str | None = None,
    lock: str | None = None,
    alpha: float = 0.05,
    n_resamples: int = 10_000,
) -> HistoryReport:
    """The candidate's primary metric and delta over the runs of ``task`` (default: the task
    of the newest completed run), oldest first, each later run paired against the last
    DEPLOY before it. Runs on different locks are refused unless ``lock`` (a hash prefix)
    picks one."""
    results: list[RunResult] = []
    with store.engine.connect() as conn:
        rows = list(conn.execute(select(RunRow).order_by(RunRow.created_at, RunRow.id)))
    for row in rows:
        if row.result_json:
            results.append(RunResult.model_validate(row.result_json))
    if not results:
        raise TunecheckError(
            "no completed run in the store", hint="`tunecheck run tunecheck.yaml` makes one"
        )
    if task is None:
        task = results[-1].tasks[0].name if results[-1].tasks else None
    chosen = [r for r in results if any(t.name == task for t in r.tasks)]
    if not chosen:
        known = sorted({t.name for r in results for t in r.tasks})
        raise TunecheckError(f"no completed run of task {task!r}", hint=f"tasks stored: {known}")
    if lock:
        chosen = [r for r in chosen if (task_lock(r, str(task)) or "").startswith(lock)]
        if not chosen:
            raise LockMismatchError(f"no run of task {task!r} on a lock starting {lock!r}")
    locks: dict[str | None, int] = {}
    for r in chosen:
        own = task_lock(r, str(task))
        locks[own] = locks.get(own, 0) + 1
    if len(locks) > 1:
        listed = ", ".join(f"{str(k)[:12]} ({n} runs)" for k, n in locks.items())
        raise LockMismatchError(
            f"the runs of task {task!r} were evaluated on different locked test sets: {listed}",
            hint="a history pairs runs on the same examples; pick one with --lock HASH_PREFIX",
        )
    entries: list[HistoryEntry] = []
    last_deploy: RunResult | None = None
    metric = ""
    higher = True
    for r in chosen:
        t = _pick_task(r, task, r.run_id)
        comp = t.comparison()
        metric, higher = t.primary_metric, comp.higher_is_better
        entry = HistoryEntry(
            run_id=r.run_id,
            created_at=r.created_at.isoformat(timespec="seconds"),
            candidate=t.candidate,
            value=comp.candidate_value,
            baseline=t.strongest_baseline,
            baseline_value=comp.baseline_value,
            delta=comp.delta,
            ci_low=comp.ci_low,
            ci_high=comp.ci_high,
            verdict=r.verdict.decision if r.verdict else None,
        )
        if last_deploy is not None:
            rc = compare_results(last_deploy, r, task=task, alpha=alpha, n_resamples=n_resamples)
            entry.vs_last_deploy = last_deploy.run_id
            entry.deploy_delta = rc.comparison.delta
            entry.deploy_ci_low = rc.comparison.ci_low
            entry.deploy_ci_high = rc.comparison.ci_high
            entry.deploy_p_value = rc.comparison.p_value
            entry.regression = rc.worse
        if entry.verdict == "DEPLOY":
            last_deploy = r
        entries.append(entry)
    return HistoryReport(
        task=str(task), metric=metric, lock_hash=task_lock(chosen[0], str(task)),
        higher_is_better=higher, entries=entries,
    )  # fmt: skip


def plot_history(report: HistoryReport, path: str | Path) -> Path:
    """A PNG trend chart: the candidate's and the strongest baseline's primary metric per
    run, the delta with its 95% interval, DEPLOY runs and regressions marked."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise TunecheckError(
            "--plot needs matplotlib", hint="pip install 'tunecheck[tracking]' or matplotlib"
        ) from None
    path = Path(path)
    entries = report.entries
    x = np.arange(len(entries))
    labels = [e.run_id[:8] for e in entries]

    def arr(values: Sequence[float | None]) -> np.ndarray:
        return np.array([math.nan if v is None else v for v in values], dtype=float)

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(6.0, 0.6 * len(entries) + 3), 6),
                                      sharex=True)  # fmt: skip
    top.plot(x, arr([e.value for e in entries]), "o-", label="candidate")
    top.plot(x, arr([e.baseline_value for e in entries]), "s--", color="grey",
             label="strongest baseline")  # fmt: skip
    deploy = [i for i, e in enumerate(entries) if e.verdict == "DEPLOY"]
    if deploy:
        top.scatter(x[deploy], arr([entries[i].value for i in deploy]), s=140,
                    facecolors="none", edgecolors="green", label="DEPLOY")  # fmt: skip
    bad = [i for i, e in enumerate(entries) if e.regression]
    if bad:
        top.scatter(x[bad], arr([entries[i].value for i in bad]), marker="x", s=120,
                    color="red", label="worse than last DEPLOY")  # fmt: skip
    top.set_ylabel(report.metric + ("" if report.higher_is_better else " (lower is better)"))
    top.set_title(f"task {report.task} · lock {str(report.lock_hash)[:12]}")
    top.legend(loc="best", fontsize="small")
    delta = arr([e.delta for e in entries])
    low = arr([e.ci_low for e in entries])
    high = arr([e.ci_high for e in entries])
    bottom.errorbar(x, delta, yerr=[delta - low, high - delta], fmt="o", capsize=4)
    bottom.axhline(0.0, color="grey", linewidth=0.8)
    bottom.set_ylabel("Δ vs baseline (95% CI)")
    bottom.set_xticks(x, labels, rotation=45, ha="right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
