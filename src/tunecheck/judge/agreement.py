"""Judge calibration against people: how often does the judge agree with human labels?

Input: JSON lines, one pairwise comparison per line::

    {"id": "7", "human": "a", "judge": "b", "judge_swapped": "b"}
    {"id": "8", "human": ["a", "a", "tie"], "judge": "a"}

``human`` is one label or a list of several annotators' labels (``"a"``, ``"b"`` or
``"tie"``, any case); ``null`` marks a row nobody labelled yet (skipped, counted). ``judge`` is the judge's verdict; ``judge_swapped`` (optional) the
verdict with the two outputs' positions swapped, already expressed in the original
a/b labelling. Optional ``length_a`` / ``length_b`` (words) or ``output_a`` / ``output_b``
enable the verbosity check. ``judge`` may be ``null`` or ``"error"`` for a judgement
that could not be parsed: counted, never agreement or disagreement.

Rules (documented in the README):

* the human label is the annotators' majority; a row without a strict majority
  (``["a", "b"]``, or ``a``/``b``/``tie`` once each) is left out and counted;
* with ``judge_swapped`` the judge's label is the two orders combined as in a run:
  the same verdict in both orders, else ``tie``;
* ties are a class of their own: accuracy is exact 3-way agreement (a judge ``tie``
  against a human ``a`` is a disagreement), Cohen's kappa is over the three classes.

Every figure comes with a 95% percentile bootstrap interval (rows resampled).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from tunecheck.errors import DataError

LABELS = ("a", "b", "tie")
_CODE = {label: i for i, label in enumerate(LABELS)}
TIE_RULE = (
    "human label = strict majority of annotators (rows without one are left out); a judge "
    "with both orders counts only a verdict that survives the swap (else tie); ties are a "
    "third class: accuracy is exact 3-way agreement"
)


class Estimate(BaseModel):
    """A figure with its 95% bootstrap interval and the rows it is computed on."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0


class AgreementRow(BaseModel):
    """One parsed input row."""

    id: str
    human: list[str]
    judge: str | None
    judge_swapped: str | None = None
    length_a: int | None = None
    length_b: int | None = None


class AgreementResult(BaseModel):
    """Judge-human agreement on a labelled sample (see the module docs for the rules)."""

    n: int = Field(description="rows in the file")
    n_used: int = Field(description="rows with a human majority and a judge verdict")
    n_judge_errors: int
    n_no_majority: int
    n_unlabelled: int = Field(0, description='rows with `"human": null` (not yet reviewed)')
    annotators: int = Field(description="most annotators on one row")
    accuracy: Estimate
    macro_f1: Estimate
    cohen_kappa: Estimate = Field(description="judge vs the human majority, 3 classes")
    fleiss_kappa: Estimate | None = Field(
        None, description="among annotators (rows with the usual number of annotators)"
    )
    position_consistency: Estimate | None = Field(
        None, description="share of rows where the judge's verdict survives the swap"
    )
    judge_tie_share: Estimate
    human_tie_share: Estimate
    judge_prefers_longer: Estimate | None = Field(
        None, description="decisive judge verdicts that chose the longer output"
    )
    humans_prefer_longer: Estimate | None = Field(
        None, description="decisive human majorities that chose the longer output"
    )
    label_counts: dict[str, dict[str, int]] = Field(
        description="human majority / judge label counts over the rows used"
    )
    confusion: list[list[int]] = Field(description="rows: human a/b/tie; columns: judge a/b/tie")
    tie_rule: str = TIE_RULE
    resamples: int
    seed: int


def _label(value: Any, where: str, field: str, *, allow_error: bool = False) -> str | None:
    if value is None and allow_error:
        return None
    if isinstance(value, str):
        norm = value.strip().lower()
        if norm in _CODE:
            return norm
        if allow_error and norm in ("error", ""):
            return None
    allowed = '"a", "b" or "tie"' + (' (or null / "error")' if allow_error else "")
    raise DataError(f"field `{field}` must be {allowed}, not {value!r}", where=where)


def parse_row(obj: Any, where: str) -> AgreementRow:
    """Validate one input row (errors name the file line and the field)."""
    if not isinstance(obj, dict):
        raise DataError("each line must be a JSON object", where=where)
    for key in ("human", "judge"):
        if key not in obj:
            raise DataError(f"missing field `{key}`", where=where)
    human = obj["human"]
    humans = [] if human is None else human if isinstance(human, list) else [human]
    if isinstance(human, list) and not human:
        raise DataError("field `human` is an empty list", where=where)
    labels = [_label(h, where, "human") for h in humans]
    lengths: dict[str, int | None] = {"a": None, "b": None}
    for side in ("a", "b"):
        if obj.get(f"length_{side}") is not None:
            lengths[side] = int(obj[f"length_{side}"])
        elif isinstance(obj.get(f"output_{side}"), str):
            lengths[side] = len(obj[f"output_{side}"].split())
    extra: dict[str, Any] = {}
    if "judge_swapped" in obj:  # present but null / "error": the swapped judgement failed
        extra["judge_swapped"] = _label(
            obj["judge_swapped"], where, "judge_swapped", allow_error=True
        )
    return AgreementRow(
        id=str(obj.get("id", where)),
        human=[lab for lab in labels if lab is not None],
        judge=_label(obj["judge"], where, "judge", allow_error=True),
        length_a=lengths["a"],
        length_b=lengths["b"],
        **extra,
    )


def load_rows(path: str | Path) -> list[AgreementRow]:
    """Read an agreement file (JSON lines); a bad line is a :class:`DataError` naming it."""
    from tunecheck.data.formats import jsonl_objects

    path = Path(path)
    if not path.exists():
        raise DataError("file not found", where=str(path))
    rows = [parse_row(obj, where) for where, obj in jsonl_objects(path, what="the agreement file")]
    if not rows:
        raise DataError("no rows", where=str(path))
    return rows


def majority(labels: Sequence[str]) -> str | None:
    """The strict majority label, or None when the top labels tie."""
    counts = Counter(labels).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return None
    return counts[0][0]


def effective_judge(row: AgreementRow) -> str | None:
    """The judge's label, combining both orders when the swapped verdict is given."""
    if row.judge is None:
        return None
    if "judge_swapped" in row.model_fields_set and row.judge_swapped is None:
        return None  # the swapped judgement failed: no usable verdict
    if row.judge_swapped is None:
        return row.judge
    return row.judge if row.judge == row.judge_swapped else "tie"


# --------------------------------------------------------------------------- statistics


def _kappa_from_cm(cm: np.ndarray) -> np.ndarray:
    """Cohen's kappa for each confusion matrix in ``cm`` (shape (B, k, k))."""
    total = cm.sum(axis=(1, 2))
    po = np.trace(cm, axis1=1, axis2=2) / total
    pe = (cm.sum(axis=2) * cm.sum(axis=1)).sum(axis=1) / total**2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pe < 1, (po - pe) / (1 - pe), np.nan)


def _macro_f1_from_cm(cm: np.ndarray) -> np.ndarray:
    """Macro-F1 over the classes present (in truth or prediction), like scikit-learn."""
    tp = np.diagonal(cm, axis1=1, axis2=2)
    pred = cm.sum(axis=1)
    true = cm.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(pred + true > 0, 2 * tp / (pred + true), 0.0)
    present = (pred + true) > 0
    return (f1 * present).sum(axis=1) / np.maximum(present.sum(axis=1), 1)


def fleiss_from_counts(counts: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Fleiss' kappa from per-row category counts (n, k), each row with the same raters.

    ``weights`` (B, n): how often each row is drawn in each resample (None: once each).
    """
    counts = np.asarray(counts, dtype=float)
    m = counts.sum(axis=1)[0]
    w = np.ones((1, len(counts))) if weights is None else weights
    n_rows = w.sum(axis=1)
    p_i = ((counts**2).sum(axis=1) - m) / (m * (m - 1))
    p_bar = w @ p_i / n_rows
    p_j = (w @ counts) / (n_rows[:, None] * m)
    p_e = (p_j**2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(p_e < 1, (p_bar - p_e) / (1 - p_e), np.nan)


def _estimate(value: float, boots: np.ndarray, n: int) -> Estimate:
    boots = boots[np.isfinite(boots)]
    if not np.isfinite(value):
        return Estimate(value=None, n=n)
    lo, hi = np.quantile(boots, [0.025, 0.975]) if len(boots) else (np.nan, np.nan)
    return Estimate(
        value=float(value),
        ci_low=float(lo) if np.isfinite(lo) else None,
        ci_high=float(hi) if np.isfinite(hi) else None,
        n=n,
    )


def _share(flags: np.ndarray, weights: np.ndarray) -> tuple[float, np.ndarray]:
    flags = flags.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(flags.mean()) if len(flags) else float("nan"), (weights @ flags) / weights.sum(
            axis=1
        )


def _weights(rng: np.random.Generator, resamples: int, n: int) -> np.ndarray:
    """Per-row draw counts of ``resamples`` bootstrap resamples (B, n)."""
    if n == 0:
        return np.zeros((resamples, 0))
    return rng.multinomial(n, np.full(n, 1 / n), size=resamples).astype(float)


def agreement(
    rows: Iterable[AgreementRow | dict[str, Any]], *, resamples: int = 2000, seed: int = 0
) -> AgreementResult:
    """Judge-human agreement with 95% bootstrap intervals (rules in the module docs)."""
    parsed = [
        r if isinstance(r, AgreementRow) else parse_row(r, f"row {i + 1}")
        for i, r in enumerate(rows)
    ]
    rng = np.random.default_rng(seed)
    used_h, used_j = [], []
    used_rows: list[AgreementRow] = []
    errors = no_majority = unlabelled = 0
    for r in parsed:
        if not r.human:
            unlabelled += 1
            continue
        h = majority(r.human)
        j = effective_judge(r)
        if j is None:
            errors += 1
            continue
        if h is None:
            no_majority += 1
            continue
        used_h.append(_CODE[h])
        used_j.append(_CODE[j])
        used_rows.append(r)
    h_arr = np.asarray(used_h, dtype=int)
    j_arr = np.asarray(used_j, dtype=int)
    n = len(h_arr)
    w = _weights(rng, resamples, n)
    cells = np.zeros((n, 9))
    cells[np.arange(n), h_arr * 3 + j_arr] = 1
    cm = cells.sum(axis=0).reshape(1, 3, 3)
    cm_b = (w @ cells).reshape(resamples, 3, 3)
    acc = np.trace(cm, axis1=1, axis2=2) / max(n, 1)
    acc_b = np.trace(cm_b, axis1=1, axis2=2) / max(n, 1)

    result: dict[str, Any] = {
        "accuracy": _estimate(acc[0] if n else np.nan, acc_b, n),
        "macro_f1": _estimate(
            _macro_f1_from_cm(cm)[0] if n else np.nan, _macro_f1_from_cm(cm_b), n
        ),
        "cohen_kappa": _estimate(_kappa_from_cm(cm)[0] if n else np.nan, _kappa_from_cm(cm_b), n),
    }
    tie = _CODE["tie"]
    v, b = _share(j_arr == tie, w)
    result["judge_tie_share"] = _estimate(v, b, n)
    v, b = _share(h_arr == tie, w)
    result["human_tie_share"] = _estimate(v, b, n)

    # Fleiss' kappa among annotators: rows with the usual (most common) number of annotators
    sizes = Counter(len(r.human) for r in parsed if r.human)
    raters = max(sizes) if sizes else 0
    fleiss = None
    usual = sizes.most_common(1)[0][0] if sizes else 0
    if usual >= 2:
        group = [r for r in parsed if len(r.human) == usual]
        counts = np.array([[r.human.count(lab) for lab in LABELS] for r in group], dtype=float)
        wf = _weights(rng, resamples, len(group))
        fleiss = _estimate(
            fleiss_from_counts(counts)[0], fleiss_from_counts(counts, wf), len(group)
        )

    # position consistency: rows judged in both orders
    swapped = [r for r in parsed if r.judge is not None and r.judge_swapped is not None]
    consistency = None
    if swapped:
        flags = np.array([r.judge == r.judge_swapped for r in swapped])
        v, b = _share(flags, _weights(rng, resamples, len(swapped)))
        consistency = _estimate(v, b, len(swapped))

    # verbosity: decisive verdicts on rows whose outputs differ in length
    judge_longer = humans_longer = None
    sized = [
        (r.length_a > r.length_b, hh, jj)
        for r, hh, jj in zip(used_rows, used_h, used_j, strict=True)
        if r.length_a is not None and r.length_b is not None and r.length_a != r.length_b
    ]
    if sized:
        longer = np.array([_CODE["a"] if a_longer else _CODE["b"] for a_longer, _, _ in sized])
        jj = np.array([x for _, _, x in sized])
        hh = np.array([x for _, x, _ in sized])
        for name, labels in (("judge", jj), ("humans", hh)):
            decisive = labels != tie
            flags = labels[decisive] == longer[decisive]
            v, b = _share(flags, _weights(rng, resamples, len(flags)))
            est = _estimate(v, b, len(flags))
            if name == "judge":
                judge_longer = est
            else:
                humans_longer = est

    return AgreementResult(
        n=len(parsed),
        n_used=n,
        n_judge_errors=errors,
        n_no_majority=no_majority,
        n_unlabelled=unlabelled,
        annotators=raters,
        fleiss_kappa=fleiss,
        position_consistency=consistency,
        judge_prefers_longer=judge_longer,
        humans_prefer_longer=humans_longer,
        label_counts={
            "human": {lab: int((h_arr == i).sum()) for i, lab in enumerate(LABELS)},
            "judge": {lab: int((j_arr == i).sum()) for i, lab in enumerate(LABELS)},
        },
        confusion=cm[0].astype(int).tolist(),
        resamples=resamples,
        seed=seed,
        **result,
    )


def agreement_file(path: str | Path, *, resamples: int = 2000, seed: int = 0) -> AgreementResult:
    """:func:`agreement` on a JSON-lines file."""
    return agreement(load_rows(path), resamples=resamples, seed=seed)
