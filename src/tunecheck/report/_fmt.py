"""Number formatting shared by the terminal and Markdown reports."""

from __future__ import annotations

from tunecheck.results import TaskResult
from tunecheck.stats import Comparison


def value(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def pts(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:+.1f}"


def ci_pts(lo: float | None, hi: float | None) -> str:
    if lo is None or hi is None:
        return "n/a"
    return f"[{lo * 100:+.1f}, {hi * 100:+.1f}]"


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:+.1f}%"


def ci_pct(lo: float | None, hi: float | None) -> str:
    if lo is None or hi is None:
        return "n/a"
    return f"[{lo * 100:+.1f}, {hi * 100:+.1f}]"


def pval(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def mde_pts(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.1f} pts"


def task_rows(task: TaskResult) -> list[tuple[str, str, str, Comparison | None]]:
    """(contender, metric, value, comparison vs the strongest baseline or None) rows."""
    rows = []
    order = [task.candidate, task.strongest_baseline] + [
        b for b in task.baselines if b != task.strongest_baseline
    ]
    for name in order:
        contender = task.contender(name)
        for metric in task.metrics:
            comp = task.comparison(metric) if name == task.candidate else None
            rows.append((name, metric, value(contender.metrics.get(metric)), comp))
    return rows


def role(task: TaskResult, name: str) -> str:
    if name == task.candidate:
        return f"{name} (candidate)"
    if name == task.strongest_baseline:
        return f"{name} (strongest baseline)"
    return name
