"""Converters for the PandaLM human-annotated test set (WeOpenML/PandaLM, Apache-2.0).

``testset-v1.json`` holds 999 comparisons (instruction, input, response1, response2) with
three annotators' labels (0 = tie, 1 = response 1 better, 2 = response 2 better);
``gpt-3.5-turbo-testset-v1.json`` and ``pandalm-7b-testset-v1.json`` hold the stored
verdicts of two judges, joined on ``idx`` (GPT: "1", "2", "Tie" or "garbage"; PandaLM:
0, 1, 2). :func:`convert` turns them into :mod:`tunecheck.judge.agreement` rows
(response1 = a, response2 = b). The judges were run in one order only, so there is no
``judge_swapped``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from tunecheck.errors import DataError

_HUMAN = {0: "tie", 1: "a", 2: "b"}
_VERDICT_KEYS = ("gpt_result", "pandalm_result")


def _verdict(value: Any, garbage: str, where: str) -> str | None:
    text = str(value).strip().lower()
    if text in ("1", "2"):
        return "a" if text == "1" else "b"
    if text in ("0", "tie"):
        return "tie"
    if text == "garbage":
        return "tie" if garbage == "tie" else None
    raise DataError(f"unknown verdict {value!r}", where=where)


def _load(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", where=str(path))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"not valid JSON: {err.msg} (line {err.lineno})", where=str(path)) from None
    if not isinstance(data, list):
        raise DataError("expected a JSON list of records", where=str(path))
    return data


def convert(
    testset: str | Path,
    verdicts: str | Path,
    *,
    garbage: Literal["tie", "error"] = "tie",
) -> list[dict[str, Any]]:
    """Agreement rows from the PandaLM test set and one judge's stored verdicts.

    ``garbage`` (GPT-3.5 answers PandaLM could not parse): ``"tie"`` as PandaLM's own
    ``compute_metrics.py`` counts them, or ``"error"`` to leave them out as judge errors.
    """
    tests = _load(testset)
    judged = {row.get("idx"): row for row in _load(verdicts)}
    rows = []
    for i, t in enumerate(tests):
        where = f"{testset}[{i}]"
        try:
            idx = t["idx"]
            human = [_HUMAN[int(t[f"annotator{k}"])] for k in (1, 2, 3)]
        except (KeyError, ValueError, TypeError) as err:
            raise DataError(f"bad test-set record: {err!r}", where=where) from None
        v = judged.get(idx)
        if v is None:
            raise DataError(f"no verdict for idx {idx}", where=str(verdicts))
        key = next((k for k in _VERDICT_KEYS if k in v), None)
        if key is None:
            raise DataError(
                f"record idx {idx} has none of {list(_VERDICT_KEYS)}", where=str(verdicts)
            )
        rows.append(
            {
                "id": str(idx),
                "human": human,
                "judge": _verdict(v[key], garbage, f"{verdicts} idx {idx}"),
                "length_a": len(str(t.get("response1", "")).split()),
                "length_b": len(str(t.get("response2", "")).split()),
            }
        )
    return rows


def write_jsonl(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Write rows as JSON lines (the ``tunecheck judge agreement`` input)."""
    path = Path(path)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path
