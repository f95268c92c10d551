"""The judge as a blind check: does a pairwise judgement confirm the candidate's gain?

A blind check compares the candidate's and the strongest baseline's outputs without
knowing which is which. A person does it in the review app; the pairwise judge does the
same thing when it judged both orders (the labels it sees are positions, not names). The
verdict's "pending review" state can be satisfied by :func:`judge_blind_check`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from tunecheck.judge.report import LOW_CONSISTENCY

if TYPE_CHECKING:
    from tunecheck.results import TaskResult


class BlindCheck(BaseModel):
    """The outcome of a completed blind check of one task."""

    task: str
    by: str  # "judge" here; "person" from the review app
    baseline: str
    n: int
    win_rate: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    position_consistency: float | None
    confirms: bool
    reason: str


def judge_blind_check(task: TaskResult, *, alpha: float = 0.05) -> BlindCheck | None:
    """The judge's blind check of ``task`` vs its strongest baseline (None: not judged pairwise).

    It confirms the gain when the candidate's win rate is above one half beyond noise
    (sign test below ``alpha`` and the interval above 0.5) and the judge's verdicts are
    mostly stable under a swap of positions (consistency at least 70%).
    """
    judge = task.judge
    pw = judge.pairwise_vs(task.strongest_baseline) if judge is not None else None
    if pw is None or judge is None:
        return None
    consistent = pw.position_consistency is not None and pw.position_consistency >= LOW_CONSISTENCY
    wins = (
        pw.win_rate is not None
        and pw.win_rate > 0.5
        and pw.p_value is not None
        and pw.p_value < alpha
        and pw.ci_low is not None
        and pw.ci_low > 0.5
    )
    if not consistent:
        reason = "the judge's verdicts change with the order too often to count as a blind check"
    elif not wins:
        reason = f"the judge does not prefer {task.candidate} beyond noise"
    else:
        reason = f"the judge prefers {task.candidate} blind, in both orders"
    return BlindCheck(
        task=task.name,
        by=f"judge {judge.model}",
        baseline=pw.baseline,
        n=pw.n,
        win_rate=pw.win_rate,
        ci_low=pw.ci_low,
        ci_high=pw.ci_high,
        p_value=pw.p_value,
        position_consistency=pw.position_consistency,
        confirms=consistent and wins,
        reason=reason,
    )
