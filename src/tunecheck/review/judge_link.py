"""An LLM judge's verdicts per example, to compare the judge with the human reviewers.

A run with a pairwise ``judge:`` keeps its verdicts in the stored result:
:func:`judge_verdicts_from_run` reads them (the verdict in both orders; one that flips with
the order is a tie, as the judge counts it). ``tunecheck review status RUN`` uses them
automatically. ``--judge FILE`` reads another judge's verdicts from JSON Lines: one object
per example with ``example_id`` (or ``id``) and ``winner`` — ``candidate``, ``baseline``
or ``tie``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunecheck.errors import DataError
from tunecheck.review.stats import WINNERS, Agreement, judge_human_agreement

if TYPE_CHECKING:
    from tunecheck.results import RunResult
    from tunecheck.review.reviews import ReviewSummary
    from tunecheck.store import Store

_OUTCOME = {"win": "candidate", "loss": "baseline", "tie": "tie"}


def judge_verdicts_from_run(
    result: dict[str, Any] | RunResult, *, task: str, candidate: str, baseline: str
) -> dict[str, str]:
    """``example id -> winner`` from a stored run's pairwise judge of ``candidate`` vs ``baseline``.

    Empty when the run has no such judgement. Judge errors are left out (never a win).
    """
    from tunecheck.results import RunResult

    run = result if isinstance(result, RunResult) else RunResult.model_validate(result)
    for t in run.tasks:
        if t.name != task or t.judge is None:
            continue
        for pw in t.judge.pairwise:
            if pw.candidate == candidate and pw.baseline == baseline:
                return {v.id: _OUTCOME[v.outcome] for v in pw.verdicts if v.outcome in _OUTCOME}
    return {}


def load_judge_verdicts(path: str | Path) -> dict[str, str]:
    """``example id -> winner`` from a JSONL file; errors name the file and line."""
    from tunecheck.data.formats import jsonl_objects

    out: dict[str, str] = {}
    for where, row in jsonl_objects(path, what="the judge verdicts"):
        ex_id = row.get("example_id", row.get("id"))
        winner = row.get("winner")
        if ex_id is None:
            raise DataError("no `example_id` (or `id`)", where=where)
        if winner not in WINNERS:
            raise DataError(
                f"`winner` is {winner!r}",
                where=where,
                hint=f"use one of {', '.join(WINNERS)} (from the candidate's point of view)",
            )
        out[str(ex_id)] = winner
    return out


def reviews_with_judge(store: Store, run_id: str, result: RunResult) -> dict[str, Any]:
    """What the run page and the HTML report show of the run's reviews: ``reviews`` (their
    summaries, newest first) and ``judge_agreement`` (review id -> the judge–human agreement,
    for each review whose pair the run's own pairwise judge also judged)."""
    from tunecheck.review.reviews import reviews_of, summarize

    reviews: list[ReviewSummary] = []
    agreement: dict[str, Agreement] = {}
    for r in reviews_of(store, run_id):
        s = summarize(store, r["id"])
        reviews.append(s)
        verdicts = judge_verdicts_from_run(
            result, task=s.task, candidate=s.candidate, baseline=s.baseline
        )
        if verdicts:
            agreement[s.review_id] = judge_human_agreement(s.per_example, verdicts)
    return {"reviews": reviews, "judge_agreement": agreement}
