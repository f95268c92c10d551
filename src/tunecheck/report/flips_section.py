"""The "flipped examples" part of the terminal and Markdown reports (JSON has the full list)."""

from __future__ import annotations

from tunecheck.flips import FlipList, FlippedExample
from tunecheck.results import TaskResult

#: flipped examples shown each way in the terminal and Markdown reports
CAP = 10


def _score(x: float | None) -> str:
    return "error" if x is None else f"{x:.3g}"


def _output(task: TaskResult, example_id: str, contender: str, width: int = 60) -> str:
    ex = next((e for e in task.examples if e.id == example_id), None)
    text = ex.outputs.get(contender) if ex else None
    if text is None:
        return "(no answer)"
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def summary(flips: FlipList) -> str:
    """One line: how many flipped each way, on which metric."""
    return (
        f"{len(flips.broken)} example(s) broken and {len(flips.fixed)} fixed by {flips.after} "
        f"vs {flips.before} on {flips.metric} (of {flips.n})"
    )


def rows(task: TaskResult, cap: int = CAP) -> list[tuple[str, FlippedExample, str, str]]:
    """(kind, flip, baseline output, candidate output): broken worst first, then fixed."""
    flips = task.flips
    if flips is None:
        return []
    out = []
    for kind, items in (("broken", flips.broken), ("fixed", flips.fixed)):
        for f in items[:cap]:
            out.append(
                (kind, f, _output(task, f.id, flips.before), _output(task, f.id, flips.after))
            )
    return out


def more(task: TaskResult, cap: int = CAP) -> str:
    """The note about the rows left out (empty when nothing was left out)."""
    flips = task.flips
    if flips is None:
        return ""
    hidden = max(len(flips.broken) - cap, 0) + max(len(flips.fixed) - cap, 0)
    return f"{hidden} more in report.json (tasks[].flips)" if hidden else ""
