"""The content of each viewer page as plain template data (shared by the app and the report)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from markupsafe import Markup

from tunecheck.errors import TunecheckError
from tunecheck.report import _fmt
from tunecheck.results import RunResult, TaskResult
from tunecheck.store import Store
from tunecheck.viewer.charts import Interval, Series, interval_chart, line_chart
from tunecheck.viewer.data import PAGE_SIZE, RunCache, RunData, TaskView, render_input
from tunecheck.viewer.diff import word_diff

FILTER_LABELS = {
    "all": "all",
    "broken": "broken by the fine-tune",
    "fixed": "fixed by the fine-tune",
    "differ": "outputs differ",
    "errors": "errors / invalid",
}


def _status(comp: Any) -> str:
    if comp.delta is None:
        return "neutral"
    if comp.significant:
        return "good" if comp.delta > 0 else "bad"
    return "neutral"


def headline(result: RunResult) -> dict[str, Any]:
    """The candidate's primary metric on the first task and its delta vs the strongest baseline."""
    if not result.tasks:
        return {}
    task = result.tasks[0]
    comp = task.comparison()
    return {
        "task": task.name,
        "metric": task.primary_metric,
        "value": _fmt.value(task.contender(task.candidate).metrics.get(task.primary_metric)),
        "delta": _fmt.pts(comp.delta),
        "ci": _fmt.ci_pts(comp.ci_low, comp.ci_high),
        "p": _fmt.pval(comp.p_adjusted if comp.p_adjusted is not None else comp.p_value),
        "raw": comp,
        "baseline": task.strongest_baseline,
    }


def _summary(
    store: Store, cache: RunCache, run_id: str
) -> tuple[dict[str, Any], str | None] | None:
    """A finished run's headline and spec name, remembered: they never change, and reading
    every run in full (its examples) on each visit of the runs page would not scale."""
    if run_id in cache.headlines:
        return cache.headlines[run_id]
    raw = store.get_run(run_id).result
    if not raw:
        return None
    try:
        # the headline needs the first task's numbers, not its thousands of examples
        tasks = raw.get("tasks") or []
        light = RunResult.model_validate(
            {**raw, "tasks": [{**tasks[0], "examples": []}] if tasks else []}
        )
    except ValueError:  # pydantic's ValidationError: an unreadable result has no headline
        return None
    found = (headline(light), light.spec_name)
    cache.headlines[run_id] = found
    return found


def runs_page(store: Store, cache: RunCache, limit: int = 200) -> dict[str, Any]:
    """Every stored run with its headline numbers, and the delta's trend per task."""
    rows = []
    trends: dict[str, list[tuple[str, Any]]] = {}
    for run in store.list_runs(limit):
        entry: dict[str, Any] = {"run": run, "head": {}}
        if run.finished_at and run.status not in ("running",):
            found = _summary(store, cache, run.id)
            if found is not None:
                entry["head"], spec_name = found
                entry["spec"] = spec_name or run.name
                if entry["head"]:
                    trends.setdefault(entry["head"]["task"], []).append(
                        (run.created_at, entry["head"]["raw"])
                    )
        rows.append(entry)
    charts = {}
    for task, points in trends.items():
        points = sorted(points, key=lambda p: p[0])
        xs = list(range(len(points)))
        charts[task] = line_chart(
            [
                Series(
                    f"Δ {points[-1][1].metric} vs strongest baseline",
                    xs,
                    [p[1].delta if p[1].delta is not None else math.nan for p in points],
                    [p[1].ci_low for p in points],
                    [p[1].ci_high for p in points],
                )
            ],
            x_ticks=[(x, str(p[0])[5:16]) for x, p in zip(xs, points, strict=True)][-8:],
            zero_line=True,
            x_label="run",
            height=200,
        )
    return {"rows": rows, "trends": charts}


def _task_tables(task: TaskResult) -> dict[str, Any]:
    comps = [c for c in task.comparisons if c.baseline == task.strongest_baseline]
    delta_chart = interval_chart(
        [
            Interval(
                f"{c.metric} vs {c.baseline}", c.delta, c.ci_low, c.ci_high,
                note=f"p={_fmt.pval(c.p_adjusted if c.p_adjusted is not None else c.p_value)}",
                status=_status(c),
            )
            for c in task.comparisons
        ],
        title=f"{task.name}: candidate minus baseline",
    )  # fmt: skip
    slice_chart = (
        interval_chart(
            [
                Interval(f"{c.slice} · {c.metric}", c.delta, c.ci_low, c.ci_high, status=_status(c))
                for c in task.slice_comparisons
                if c.metric == task.primary_metric
            ],
            title="per slice",
        )
        if task.slice_comparisons
        else None
    )
    from tunecheck.code.report import sandbox_warnings

    return {"rows": _fmt.task_rows(task), "comps": comps, "delta_chart": delta_chart,
            "slice_chart": slice_chart, "sandbox_warnings": sandbox_warnings(task)}  # fmt: skip


def _probe_chart(result: RunResult) -> Markup | None:
    if not result.probes:
        return None
    th = result.thresholds
    return interval_chart(
        [
            Interval(
                f"{p.name} ({p.metric})", p.rel_change, p.rel_ci_low, p.rel_ci_high,
                # an uninformative probe (floor/ceiling) is neither good nor bad: neutral, with why
                note=p.note_uninformative or "",
                status={"ok": "good", "warning": "warn", "FAIL": "bad"}.get(p.status, "neutral"),
            )
            for p in result.probes
        ],
        unit="%",
        thresholds=[(-th.warn, f"warn −{th.warn:.0%}"), (-th.fail, f"fail −{th.fail:.0%}")],
        title="relative change of each probe (fine-tuned vs base)",
    )  # fmt: skip


_SKIP_KEYS = ("epoch", "step", "learning_rate", "grad_norm", "total_flos")


def trainer_state_path(data: RunData) -> Path | None:
    """The run's linked ``trainer_state.json``: ``meta.trainer_state``, else next to the
    candidate's model folder or adapter (a checkpoint or the Trainer's output_dir)."""
    from tunecheck.provenance import adapter_path

    linked = data.result.meta.get("trainer_state")
    if linked and Path(linked).exists():
        return Path(linked)
    cand = data.result.candidate
    for c in data.run.contenders:
        if c.name != cand and cand is not None:
            continue
        adapter = adapter_path(c.model)
        for ref in ([adapter] if adapter else []) + [Path(c.model.split(":", 1)[-1])]:
            for folder in (ref, ref.parent):
                with_state = folder / "trainer_state.json"
                if folder.name and with_state.is_file():
                    return with_state
    return None


def _trainer_state(data: RunData) -> Any:
    """The candidate's training log: a linked file, else the ``trainer_state.json`` the run
    recorded (the spec's ``training:`` path or the adapter folder; kept in the result, so
    the curves survive the checkpoint folder being moved), else one found on disk."""
    from tunecheck.training.curves import TrainerState, load_trainer_state

    linked = data.result.meta.get("trainer_state")
    info = data.result.training
    recorded = getattr(info, "trainer_state", None)
    if not (linked and Path(linked).exists()) and isinstance(recorded, dict):
        history = recorded.get("log_history")
        if isinstance(history, list) and all(isinstance(e, dict) for e in history):
            meta = {k: v for k, v in recorded.items() if k != "log_history"}
            return TrainerState(log_history=history, meta=meta, source=info.source)
    path = trainer_state_path(data)
    if path is None:
        return None
    try:
        return load_trainer_state(path)
    except TunecheckError:
        return None


def training_charts(data: RunData) -> list[Markup]:
    """Loss curves and the task metrics logged during training (e.g. by ``TunecheckCallback``)."""
    state = _trainer_state(data)
    if state is None:
        return []
    keys = sorted(
        {
            k
            for e in state.log_history
            for k, v in e.items()
            if isinstance(v, int | float)
            and k not in _SKIP_KEYS
            and "runtime" not in k
            and "per_second" not in k
            and not k.startswith("train_")
        }
    )
    loss = [k for k in keys if "loss" in k]
    other = [k for k in keys if "loss" not in k]
    charts = []
    for group, label in ((loss, "loss"), (other, "task metrics")):
        series = []
        for k in group:
            curve, _ = state.series(k)
            if len(curve):
                series.append(Series(k, curve.steps.tolist(), curve.values.tolist()))
        if series:
            charts.append(line_chart(series, x_label="step", y_label=label))
    return charts


def example_rows(view: TaskView, indices: list[int], baseline: str) -> list[dict[str, Any]]:
    """The example browser's cards: outputs side by side, differences marked, scores."""
    task = view.task
    cand = task.candidate
    others = [baseline] + [b for b in task.baselines if b != baseline]
    rows = []
    for i in indices:
        ex = task.examples[i]
        c_text = ex.outputs.get(cand)
        columns = []
        c_marked = None
        for b in others:
            b_text = ex.outputs.get(b)
            old, new = word_diff(b_text, c_text)
            if c_marked is None:
                c_marked = new
            columns.append({"name": b, "text": b_text, "marked": old, "scores": ex.scores.get(b, {}),
                            "invalid": ex.id in view.invalid.get(b, ())})  # fmt: skip
        columns.insert(
            0,
            {"name": cand, "text": c_text, "marked": c_marked, "scores": ex.scores.get(cand, {}),
             "invalid": ex.id in view.invalid.get(cand, ()), "candidate": True},
        )  # fmt: skip
        rows.append(
            {"id": ex.id, "slices": ex.slices, "input": view.inputs.get(ex.id, ""),
             "reference": render_input(ex.reference), "flip": view.flips[baseline][i],
             "columns": columns, "error": view.has_error[i]}
        )  # fmt: skip
    return rows


def run_page(
    data: RunData,
    *,
    task: str | None = None,
    kind: str = "all",
    baseline: str | None = None,
    slice_: str | None = None,
    query: str | None = None,
    page: int = 1,
    page_size: int = PAGE_SIZE,
) -> dict[str, Any]:
    """Verdict, tables, charts and one page of the example browser."""
    result = data.result
    view = data.task(task)
    t = view.task
    baseline = baseline or t.strongest_baseline
    selected = view.select(kind=kind, baseline=baseline, slice_=slice_, query=query)
    pages = max(1, math.ceil(len(selected) / page_size))
    page = min(max(1, page), pages)
    shown = selected[(page - 1) * page_size : page * page_size]
    return {
        "data": data,
        "run": data.run,
        "result": result,
        "fmt": _fmt,
        "tasks": {x.name: _task_tables(x) for x in result.tasks},
        "probe_chart": _probe_chart(result),
        "training": training_charts(data),
        "view": view,
        "task": t,
        "baseline": baseline,
        "filters": FILTER_LABELS,
        "counts": view.counts(baseline),
        "kind": kind,
        "slice": slice_ or "",
        "query": query or "",
        "slices": sorted({s for ex in t.examples for s in ex.slices}),
        "n_selected": len(selected),
        "page": page,
        "pages": pages,
        "examples": example_rows(view, shown, baseline),
    }


def compare_page(store: Store, cache: RunCache, a: str, b: str, task: str | None = None,
                 alpha: float = 0.05) -> dict[str, Any]:  # fmt: skip
    """Two runs on the same locked test set: the candidate's flips between them, paired test."""
    from tunecheck.history import compare_results

    ra, rb = cache.get(a), cache.get(b)
    # the pairing, the test and the flips are tunecheck.history's, as in `tunecheck compare`
    rc = compare_results(ra.result, rb.result, task=task, alpha=alpha)
    ta, tb = ra.task(rc.task), rb.task(rc.task)
    metric, note, comp = rc.metric, rc.note, rc.comparison
    sa = {e.id: e.scores.get(ta.task.candidate, {}).get(metric) for e in ta.examples}
    sb = {e.id: e.scores.get(tb.task.candidate, {}).get(metric) for e in tb.examples}
    ids = [i for i in sa if i in sb and sa[i] is not None and sb[i] is not None]
    by_a = {e.id: e for e in ta.examples}
    by_b = {e.id: e for e in tb.examples}
    worse = [f.id for f in rc.flips.broken]
    better = [f.id for f in rc.flips.fixed]

    def rows(which: list[str]) -> list[dict[str, Any]]:
        out = []
        for i in which:
            oa = by_a[i].outputs.get(ta.task.candidate)
            ob = by_b[i].outputs.get(tb.task.candidate)
            old, new = word_diff(oa, ob)
            out.append({"id": i, "input": ta.inputs.get(i, ""),
                        "reference": render_input(by_a[i].reference),
                        "a": old, "b": new, "sa": sa[i], "sb": sb[i]})  # fmt: skip
        return out

    return {"a": ra, "b": rb, "metric": metric, "note": note, "comp": comp, "fmt": _fmt,
            "worse": rows(worse), "better": rows(better), "n": len(ids),
            "chart": interval_chart([Interval(f"{metric}: B − A", comp.delta, comp.ci_low,
                                              comp.ci_high, status=_status(comp))])}  # fmt: skip
