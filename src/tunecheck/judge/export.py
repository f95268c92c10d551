"""A run's pairwise judgements as agreement rows, for people to label.

``tunecheck judge export RUN_ID -o pairs.jsonl`` writes one row per judged example:
the input, ``output_a`` (the candidate) and ``output_b`` (the baseline), the judge's
verdict with the candidate shown first (``judge``) and with the baseline shown first
(``judge_swapped``), both in that a/b labelling, and ``"human": null``. Reviewers fill in
``human`` ("a", "b" or "tie", or a list for several people); ``tunecheck judge agreement``
then reports the judge's agreement with them for that run (unlabelled rows are skipped).
"""

from __future__ import annotations

from typing import Any

from tunecheck.errors import TunecheckError

_SIDE = {"candidate": "a", "baseline": "b", "tie": "tie"}


def export_rows(result: dict[str, Any], *, task: str | None = None) -> list[dict[str, Any]]:
    """Agreement rows from a stored run result (``RunResult`` as JSON)."""
    from tunecheck.results import RunResult

    run = RunResult.model_validate(result)
    tasks = [t for t in run.tasks if task is None or t.name == task]
    if task is not None and not tasks:
        raise TunecheckError(
            f"run {run.run_id} has no task {task!r}; tasks: {[t.name for t in run.tasks]}"
        )
    rows = []
    for t in tasks:
        if t.judge is None or not t.judge.pairwise:
            continue
        examples = {e.id: e for e in t.examples}
        for pw in t.judge.pairwise:
            for v in pw.verdicts:
                ex = examples.get(v.id)
                rows.append(
                    {
                        "id": v.id if len(t.judge.pairwise) == 1 else f"{v.id}|{pw.baseline}",
                        "task": t.name,
                        "candidate": pw.candidate,
                        "baseline": pw.baseline,
                        "output_a": ex.outputs.get(pw.candidate) if ex else None,
                        "output_b": ex.outputs.get(pw.baseline) if ex else None,
                        "judge": _SIDE[v.first] if v.first else None,
                        "judge_swapped": _SIDE[v.second] if v.second else None,
                        "human": None,
                    }
                )
    if not rows:
        raise TunecheckError(
            f"run {run.run_id} has no pairwise judgements to export",
            hint="add a `judge:` block with `pairwise:` to the task and run it",
        )
    return rows
