"""Judge verdicts from a file, to compare an LLM judge with the human reviewers.

Until the pairwise judge writes its verdicts to the store, ``tunecheck review status RUN
--judge FILE`` reads them from JSON Lines: one object per example with ``example_id``
(or ``id``) and ``winner`` — ``candidate``, ``baseline`` or ``tie``.
"""

from __future__ import annotations

import json
from pathlib import Path

from tunecheck.errors import DataError
from tunecheck.review.stats import WINNERS


def load_judge_verdicts(path: str | Path) -> dict[str, str]:
    """``example id -> winner`` from a JSONL file; errors name the file and line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise DataError(f"cannot read the judge verdicts: {err}", where=str(path)) from None
    out: dict[str, str] = {}
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"not JSON: {err.msg}", where=where) from None
        if not isinstance(row, dict):
            raise DataError("expected a JSON object per line", where=where)
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
