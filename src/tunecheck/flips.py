"""Examples that flipped: where one side scored better than the other on the same example.

One module for every consumer: the reports (candidate vs the strongest baseline),
the viewer's example filters, ``tunecheck compare`` and ``tunecheck history``
(one run's candidate vs another's). A missing score (backend error) counts as the
worst possible score, so an example the candidate failed to answer is "broken".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    # results imports this module: the type only, for the checker
    from tunecheck.results import TaskResult

Flip = Literal["broken", "fixed"]

__all__ = ["Flip", "FlipList", "FlippedExample", "flip_kind", "flips_between", "task_flips"]


class FlippedExample(BaseModel):
    """One example whose score differs between two sides."""

    id: str
    before: float | None = Field(description="the reference side's score (baseline, or run A)")
    after: float | None = Field(description="the other side's score (candidate, or run B)")
    change: float = Field(description="improvement (after - before, oriented: positive is better)")


class FlipList(BaseModel):
    """Examples that got worse (``broken``, worst first) and better (``fixed``, best first)."""

    before: str = Field(description="the reference side (a baseline, or run A)")
    after: str = Field(description="the other side (the candidate, or run B)")
    metric: str
    higher_is_better: bool = True
    n: int = Field(description="examples compared")
    broken: list[FlippedExample] = Field(default_factory=list)
    fixed: list[FlippedExample] = Field(default_factory=list)


def _ordered(value: float | None, higher_is_better: bool) -> float:
    if value is None or not math.isfinite(value):
        return -math.inf
    return value if higher_is_better else -value


def flip_kind(
    after: float | None, before: float | None, higher_is_better: bool = True
) -> Flip | None:
    """``broken`` when ``after`` scored worse than ``before``, ``fixed`` when better."""
    a, b = _ordered(after, higher_is_better), _ordered(before, higher_is_better)
    return "broken" if a < b else "fixed" if a > b else None


def flips_between(
    before: Mapping[str, float | None],
    after: Mapping[str, float | None],
    *,
    before_name: str,
    after_name: str,
    metric: str,
    higher_is_better: bool = True,
    ids: Sequence[str] | None = None,
) -> FlipList:
    """Every example (of ``ids``, default: those in both maps) whose score changed."""
    ids = [i for i in (ids if ids is not None else before) if i in before and i in after]
    broken: list[FlippedExample] = []
    fixed: list[FlippedExample] = []
    for i in ids:
        kind = flip_kind(after[i], before[i], higher_is_better)
        if kind is None:
            continue
        a, b = _ordered(after[i], higher_is_better), _ordered(before[i], higher_is_better)
        change = a - b
        # a missing score is -inf: keep the change finite (a full-scale loss) for sorting/JSON
        if not math.isfinite(change):
            change = math.copysign(1.0, change)
        item = FlippedExample(id=i, before=before[i], after=after[i], change=change)
        (broken if kind == "broken" else fixed).append(item)
    broken.sort(key=lambda f: (f.change, f.id))
    fixed.sort(key=lambda f: (-f.change, f.id))
    return FlipList(
        before=before_name, after=after_name, metric=metric, higher_is_better=higher_is_better,
        n=len(ids), broken=broken, fixed=fixed,
    )  # fmt: skip


def task_flips(
    task: TaskResult, baseline: str | None = None, metric: str | None = None
) -> FlipList:
    """The candidate vs ``baseline`` (default: the strongest) on ``metric`` (default: primary)
    of a :class:`~tunecheck.results.TaskResult`, from its per-example outcomes."""
    metric = metric or task.primary_metric
    baseline = baseline or task.strongest_baseline
    cand = task.candidate
    higher = True
    for comp in getattr(task, "comparisons", []):
        if comp.metric == metric:
            higher = comp.higher_is_better
            break
    examples = task.examples
    return flips_between(
        {e.id: e.scores.get(baseline, {}).get(metric) for e in examples},
        {e.id: e.scores.get(cand, {}).get(metric) for e in examples},
        before_name=baseline,
        after_name=cand,
        metric=metric,
        higher_is_better=higher,
        ids=[e.id for e in examples],
    )
