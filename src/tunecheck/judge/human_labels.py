"""People's labels attached to a run: judge-human agreement reported by ``tunecheck run``.

``judge.pairwise.human_labels: FILE`` in a task points at JSON lines in either of two
formats, both written by tunecheck:

* a blind review's labels, ``tunecheck review export RUN --format jsonl``: one row per
  reviewer and item, ``example_id`` and ``winner`` (``candidate`` / ``baseline`` / ``tie``;
  ``skip`` is ignored), with ``task``, ``candidate`` and ``baseline``;
* a filled-in ``tunecheck judge export`` file: ``id`` and ``human`` (``"a"`` = the
  candidate, ``"b"`` = the baseline, ``"tie"``, a list of several people's labels, or
  ``null`` when nobody labelled the row yet).

Several reviewers of one example become that example's list of annotators. Rows match a
pairwise judgement by example id, and by ``task`` / ``candidate`` / ``baseline`` when the
row has them. Because judgements are cached, re-running a reviewed spec with the labels
attached costs no model call and adds the agreement (with bootstrap intervals, as
``tunecheck judge agreement``) to the run's result and report.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunecheck.errors import DataError
from tunecheck.judge.agreement import AgreementResult, AgreementRow, _label, agreement
from tunecheck.judge.result import PairwiseResult

_WINNER = {"candidate": "a", "baseline": "b", "tie": "tie"}
_SIDE = {"candidate": "a", "baseline": "b", "tie": "tie"}


@dataclass
class HumanLabels:
    """Labels read from one file: ``(task, candidate, baseline) -> example id -> labels``.

    ``None`` in the key matches any task / contender (a row that does not say).
    """

    path: str
    rows: int = 0
    labels: dict[tuple[str | None, str | None, str | None], dict[str, list[str]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )

    def for_pair(self, task: str, candidate: str, baseline: str) -> dict[str, list[str]]:
        """Example id -> the people's labels (a = candidate) for this judged pair."""
        out: dict[str, list[str]] = defaultdict(list)
        for (t, c, b), per_id in self.labels.items():
            if t not in (None, task) or c not in (None, candidate) or b not in (None, baseline):
                continue
            for ex_id, labels in per_id.items():
                out[ex_id].extend(labels)
        return dict(out)


def _opt_str(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise DataError(f"field `{key}` must be a string, not {value!r}", where=where)
    return value


def load_human_labels(path: str | Path) -> HumanLabels:
    """Read a labels file (see the module docs); a bad line is a :class:`DataError` naming it."""
    from tunecheck.data.formats import jsonl_objects

    path = Path(path)
    out = HumanLabels(path=str(path))
    hint = "export them with `tunecheck review export RUN --format jsonl -o FILE`"
    for where, obj in jsonl_objects(path, what="the human labels", hint=hint):
        task = _opt_str(obj, "task", where)
        cand = _opt_str(obj, "candidate", where)
        base = _opt_str(obj, "baseline", where)
        if "winner" in obj:  # a review export row: one reviewer's label
            ex_id = obj.get("example_id", obj.get("id"))
            winner = obj["winner"]
            if winner == "skip":
                labels: list[str] = []
            elif winner in _WINNER:
                labels = [_WINNER[winner]]
            else:
                raise DataError(
                    f"field `winner` must be candidate, baseline, tie or skip, not {winner!r}",
                    where=where,
                )
        elif "human" in obj:  # a filled-in `tunecheck judge export` row
            ex_id = obj.get("id")
            human = obj["human"]
            raw = [] if human is None else human if isinstance(human, list) else [human]
            labels = [str(_label(h, where, "human")) for h in raw]
            if isinstance(ex_id, str) and base and ex_id.endswith(f"|{base}"):
                ex_id = ex_id[: -len(base) - 1]  # export's id when several baselines were judged
        else:
            raise DataError(
                "a row needs `winner` (a review export) or `human` (a judge export)",
                where=where,
                hint="export a review with `tunecheck review export RUN --format jsonl`",
            )
        if ex_id is None:
            raise DataError("missing field `example_id` (or `id`)", where=where)
        out.rows += 1
        out.labels[(task, cand, base)][str(ex_id)].extend(labels)
    if not out.rows:
        raise DataError("no rows", where=str(path))
    return out


def pair_agreement(
    pw: PairwiseResult,
    labels: HumanLabels,
    *,
    task: str,
    outputs: Mapping[str, Mapping[str, Any]],
    resamples: int,
    seed: int,
) -> AgreementResult:
    """The judge's verdicts in ``pw`` against the people's labels for the same examples.

    a = the candidate, b = the baseline; the judge's label is its two orders combined (a
    flip is a tie), a judge error counts as an error; examples nobody labelled count as
    unlabelled. ``outputs``: contender -> example id -> output, for the verbosity figures.
    """
    people = labels.for_pair(task, pw.candidate, pw.baseline)
    rows = []
    for v in pw.verdicts:
        a = outputs.get(pw.candidate, {}).get(v.id)
        b = outputs.get(pw.baseline, {}).get(v.id)
        rows.append(
            AgreementRow(
                id=v.id,
                human=people.get(v.id, []),
                judge=_SIDE[v.first] if v.first else None,
                judge_swapped=_SIDE[v.second] if v.second else None,
                length_a=len(str(a).split()) if a is not None else None,
                length_b=len(str(b).split()) if b is not None else None,
            )
        )
    return agreement(rows, resamples=resamples, seed=seed)
