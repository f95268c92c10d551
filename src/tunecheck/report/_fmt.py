"""Table helpers shared by the terminal and Markdown reports (numbers: :mod:`tunecheck.formatting`)."""

from __future__ import annotations

from tunecheck.formatting import ci_pct, ci_pts, mde_pts, pct, pts, pval, value
from tunecheck.results import ProbeResult, TaskResult, Verdict
from tunecheck.stats import Comparison

__all__ = [
    "ci_pct",
    "ci_pts",
    "lower_better",
    "mde_pts",
    "pct",
    "probe_status",
    "pts",
    "pval",
    "role",
    "task_rows",
    "value",
    "verdict_title",
]


def probe_status(p: ProbeResult) -> str:
    """``FAIL (regression)``, ``warning (inconclusive)``, ``ok``, ``uninformative``."""
    if p.gate in ("regression", "inconclusive"):
        return f"{p.status} ({p.gate})"
    return p.status


def verdict_title(v: Verdict) -> str:
    """``DEPLOY-pending-review``, or ``DEPLOY (capabilities not checked)``."""
    marks = f" ({'; '.join(v.qualifiers)})" if v.qualifiers else ""
    return v.label + marks


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


def lower_better(task: TaskResult, metric: str) -> bool:
    """Whether ``metric`` is lower-is-better in this task (from its comparisons)."""
    return any(c.metric == metric and not c.higher_is_better for c in task.comparisons)


def length_line(task: TaskResult) -> str:
    """Each contender's mean output length, e.g. ``base 23.1 words / 30.0 tokens``."""
    if not task.lengths:
        return ""
    parts = []
    sources = sorted({s.tokens_from for s in task.lengths})
    for s in task.lengths:
        words = "n/a" if s.mean_words is None else f"{s.mean_words:.1f}"
        tokens = "n/a" if s.mean_tokens is None else f"{s.mean_tokens:.1f}"
        parts.append(f"{s.contender} {words} words / {tokens} tokens")
    return "mean output length: " + "; ".join(parts) + f" (tokens: {', '.join(sources)})"


def length_rows(task: TaskResult) -> list[tuple[str, str, str, str, str, str]]:
    """(metric, raw Δ pts, Δ at equal length pts, its CI, its p, note) vs the strongest baseline."""
    rows = []
    for a in task.length_adjusted:
        if a.baseline != task.strongest_baseline:
            continue
        per_word = "" if a.per_word is None else f"{a.per_word * 100:+.2f} pts per extra word; "
        rows.append(
            (
                a.metric,
                pts(a.raw_delta),
                pts(a.adjusted_delta),
                ci_pts(a.adjusted_ci_low, a.adjusted_ci_high),
                pval(a.adjusted_p),
                per_word + a.note,
            )
        )
    return rows
