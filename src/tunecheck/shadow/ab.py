"""``tunecheck ab analyze``: the difference between two variants, tested so that
peeking is allowed, and refused when the traffic split itself is broken.

Input: one event per row (JSONL, CSV or Parquet) with ``unit_id``, ``variant`` and
``outcome`` (0/1, true/false, or any number), optionally ``timestamp``. Several rows
of one unit in one variant are averaged (the unit is what was randomised); a unit
seen in both variants is reported, counted and excluded. Units enter the sequential
test in order of their first event (by ``timestamp`` when present, else file order).

Reported: per-variant means, the difference (treatment - control) with a 95%
fixed-horizon interval (Newcombe's score interval for rates, Welch's t for means),
the always-valid mSPRT p-value and confidence sequence
(:mod:`tunecheck.shadow.sequential`), and the sample-ratio-mismatch check: a
chi-square goodness-of-fit test of the unit counts against the designed split
(``p < 0.001``, the usual threshold, means the split is broken and nothing is
concluded).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from tunecheck.errors import DataError
from tunecheck.shadow import sequential
from tunecheck.shadow.plan import best_tau2

SRM_THRESHOLD = 0.001
_CONTROL_NAMES = ("control", "production", "a", "baseline")
_TRUE = {"true", "yes", "1", "1.0"}
_FALSE = {"false", "no", "0", "0.0"}


@dataclass
class SRMCheck:
    """Sample-ratio mismatch: are the unit counts compatible with the designed split?"""

    control: int
    treatment: int
    expected_treatment_share: float
    observed_treatment_share: float
    chi2: float
    p_value: float
    mismatch: bool


@dataclass
class ABResult:
    """Everything ``tunecheck ab analyze`` reports (``to_dict`` for ``--json``)."""

    path: str
    control: str
    treatment: str
    outcome: str  # binary | continuous
    events: int
    units_control: int
    units_treatment: int
    mean_control: float
    mean_treatment: float
    difference: float
    ci_low: float
    ci_high: float
    relative_lift: float | None
    seq_p_value: float
    seq_ci_low: float
    seq_ci_high: float
    tau: float
    alpha: float
    srm: SRMCheck
    decision: str
    reason: str
    both_variants: int = 0
    both_variants_examples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Events:
    """Per-unit outcomes of the two variants, in order of first appearance."""

    control: str
    treatment: str
    values: np.ndarray  # per unit
    is_treatment: np.ndarray  # per unit, bool
    events: int
    binary: bool
    both_variants: list[str]


def _outcome(value: Any, where: str) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if math.isnan(float(value)) or math.isinf(float(value)):
            raise DataError(f"outcome {value!r} is not a finite number", where=where)
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return 1.0
        if text in _FALSE:
            return 0.0
        try:
            x = float(text)
        except ValueError:
            x = math.nan
        if math.isfinite(x):
            return x
    raise DataError(
        f"outcome {value!r} is not a number or true/false",
        where=where,
        hint="use 0/1 (or true/false) for conversions, a number for continuous outcomes",
    )


def _time_key(value: Any) -> tuple[int, Any]:
    """A sort key for a ``timestamp``: numbers (epoch seconds, also as text in CSV) by
    value, so 9 comes before 10; anything else (ISO dates, datetimes) as text; empty last."""
    if value is None or value == "":
        return (2, "")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value))
    text = str(value).strip()
    try:
        return (0, float(text))
    except ValueError:
        return (1, text)


def load_events(
    path: str | Path, *, control: str | None = None, treatment: str | None = None
) -> Events:
    """Read and validate an events file (errors name the file and line)."""
    from tunecheck.data.formats import read_table

    table = read_table(path)
    if not table.rows:
        raise DataError("no events in the file", where=str(path))
    for col in ("unit_id", "variant", "outcome"):
        if col not in table.columns:
            raise DataError(
                f"the events file has no {col!r} column (columns: {', '.join(table.columns)})",
                where=str(path),
                hint="each event needs unit_id, variant and outcome",
            )
    has_time = "timestamp" in table.columns
    per_unit: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    first: dict[str, tuple[tuple[int, Any], int]] = {}
    for i, row in enumerate(table.rows):
        where = table.where(i)
        unit, variant = row.get("unit_id"), row.get("variant")
        if unit is None or str(unit).strip() == "":
            raise DataError("empty unit_id", where=where)
        if variant is None or str(variant).strip() == "":
            raise DataError("empty variant", where=where)
        if row.get("outcome") is None or row.get("outcome") == "":
            raise DataError("empty outcome", where=where)
        unit, variant = str(unit), str(variant)
        per_unit[unit][variant].append(_outcome(row["outcome"], where))
        key = (_time_key(row.get("timestamp")) if has_time else (0, 0.0), i)
        if unit not in first or key < first[unit]:
            first[unit] = key
    variants = sorted({v for d in per_unit.values() for v in d})
    control, treatment = _pick(variants, control, treatment, str(path))
    both = sorted(u for u, d in per_unit.items() if len(d) > 1)
    order = sorted((u for u, d in per_unit.items() if len(d) == 1), key=lambda u: first[u])
    values = np.array([np.mean(next(iter(per_unit[u].values()))) for u in order])
    is_t = np.array([next(iter(per_unit[u])) == treatment for u in order], dtype=bool)
    raw = [x for d in per_unit.values() for xs in d.values() for x in xs]
    binary = all(x in (0.0, 1.0) for x in raw) and all(v in (0.0, 1.0) for v in values)
    return Events(control, treatment, values, is_t, len(table.rows), binary, both)


def _pick(
    variants: list[str], control: str | None, treatment: str | None, where: str
) -> tuple[str, str]:
    if len(variants) != 2:
        raise DataError(
            f"expected exactly two variants, found {len(variants)}: {', '.join(variants)}",
            where=where,
            hint="analyse two variants at a time (filter the file first)",
        )
    if control is None and treatment is not None:
        control = next(v for v in variants if v != treatment)
    if control is None:
        named = [v for v in variants if v.lower() in _CONTROL_NAMES]
        if len(named) != 1:
            raise DataError(
                f"cannot tell the control from the treatment among {variants}",
                where=where,
                hint="name it with --control",
            )
        control = named[0]
    if control not in variants:
        raise DataError(
            f"--control {control!r} is not a variant of the file ({variants})", where=where
        )
    treatment = treatment or next(v for v in variants if v != control)
    if treatment not in variants or treatment == control:
        raise DataError(
            f"--treatment {treatment!r} is not the other variant ({variants})", where=where
        )
    return control, treatment


def srm_check(n_control: int, n_treatment: int, expected_share: float) -> SRMCheck:
    """Chi-square goodness of fit of the unit counts to the designed split."""
    total = n_control + n_treatment
    expected = [total * (1 - expected_share), total * expected_share]
    chi2, p = stats.chisquare([n_control, n_treatment], expected)
    return SRMCheck(
        control=n_control,
        treatment=n_treatment,
        expected_treatment_share=expected_share,
        observed_treatment_share=n_treatment / total if total else math.nan,
        chi2=float(chi2),
        p_value=float(p),
        mismatch=bool(p < SRM_THRESHOLD),
    )


def newcombe_interval(
    x1: int, n1: int, x0: int, n0: int, alpha: float = 0.05
) -> tuple[float, float]:
    """Newcombe's hybrid score interval for ``p1 - p0`` (from two Wilson intervals)."""
    z = stats.norm.isf(alpha / 2)

    def wilson(x: int, n: int) -> tuple[float, float]:
        p = x / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        return centre - half, centre + half

    p1, p0 = x1 / n1, x0 / n0
    l1, u1 = wilson(x1, n1)
    l0, u0 = wilson(x0, n0)
    d = p1 - p0
    return d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2), d + math.sqrt(
        (u1 - p1) ** 2 + (p0 - l0) ** 2
    )


def sequential_path(
    values: np.ndarray, is_treatment: np.ndarray, min_units: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """(difference, variance) after each unit, from cumulative sums (nan until both arms
    have ``min_units`` units and a positive variance)."""
    t = is_treatment.astype(float)
    c = 1.0 - t
    n_t, n_c = np.cumsum(t), np.cumsum(c)
    s_t, s_c = np.cumsum(values * t), np.cumsum(values * c)
    q_t, q_c = np.cumsum(values * values * t), np.cumsum(values * values * c)
    with np.errstate(divide="ignore", invalid="ignore"):
        m_t, m_c = s_t / n_t, s_c / n_c
        var_t = np.maximum(q_t / n_t - m_t * m_t, 0.0) * n_t / np.maximum(n_t - 1, 1)
        var_c = np.maximum(q_c / n_c - m_c * m_c, 0.0) * n_c / np.maximum(n_c - 1, 1)
        v = var_t / n_t + var_c / n_c
    ok = (n_t >= min_units) & (n_c >= min_units) & (v > 0)
    return np.where(ok, m_t - m_c, np.nan), np.where(ok, v, np.nan)


def analyze(
    path: str | Path,
    *,
    control: str | None = None,
    treatment: str | None = None,
    expected_share: float = 0.5,
    alpha: float = 0.05,
    mde: float | None = None,
    tau: float | None = None,
    higher_is_better: bool = True,
) -> ABResult:
    """Analyse an events file (see the module docstring)."""
    if not 0 < expected_share < 1:
        raise DataError(f"--expected-split must be strictly between 0 and 1, got {expected_share}")
    ev = load_events(path, control=control, treatment=treatment)
    x_t, x_c = ev.values[ev.is_treatment], ev.values[~ev.is_treatment]
    n_t, n_c = len(x_t), len(x_c)
    srm = srm_check(n_c, n_t, expected_share)
    base: dict[str, Any] = dict(
        path=str(path),
        control=ev.control,
        treatment=ev.treatment,
        outcome="binary" if ev.binary else "continuous",
        events=ev.events,
        units_control=n_c,
        units_treatment=n_t,
        alpha=alpha,
        srm=srm,
        both_variants=len(ev.both_variants),
        both_variants_examples=ev.both_variants[:10],
    )
    if n_t < 2 or n_c < 2:
        raise DataError(
            f"too few units to compare ({n_c} in {ev.control}, {n_t} in {ev.treatment})",
            where=str(path),
        )
    m_t, m_c = float(x_t.mean()), float(x_c.mean())
    diff = m_t - m_c
    if ev.binary:
        lo, hi = newcombe_interval(int(x_t.sum()), n_t, int(x_c.sum()), n_c, alpha)
    else:
        ci = stats.ttest_ind(x_t, x_c, equal_var=False).confidence_interval(1 - alpha)
        lo, hi = float(ci.low), float(ci.high)
    var_c = float(x_c.var(ddof=1))
    var_t = float(x_t.var(ddof=1))
    if tau is not None:
        tau2 = tau * tau
    elif mde is not None:
        # the mixture `ab plan` chose: control variance now, treatment variance at the MDE
        if ev.binary:
            p_t = min(max(m_c + mde, 1e-6), 1 - 1e-6)
            planned_var_t = p_t * (1 - p_t)
        else:
            planned_var_t = var_c
        tau2 = best_tau2(
            mde, max(var_c, 1e-12), max(planned_var_t, 1e-12), expected_share, alpha, 0.8
        )
    else:
        tau2 = sequential.default_tau2(math.sqrt(max(var_c, var_t, 1e-12)))
    d_path, v_path = sequential_path(ev.values, ev.is_treatment)
    valid = ~np.isnan(v_path)
    if valid.any():
        p_seq = float(sequential.always_valid_p(d_path[valid], v_path[valid], tau2)[-1])
        v_now = float(v_path[valid][-1])
        hw = float(sequential.half_width(v_now, tau2, alpha))
    else:
        p_seq, hw = 1.0, math.inf
    decision, reason = _decide(srm, p_seq, diff if higher_is_better else -diff, alpha, ev)
    return ABResult(
        **base,
        mean_control=m_c,
        mean_treatment=m_t,
        difference=diff,
        ci_low=lo,
        ci_high=hi,
        relative_lift=diff / m_c if m_c else None,
        seq_p_value=p_seq,
        seq_ci_low=diff - hw,
        seq_ci_high=diff + hw,
        tau=math.sqrt(tau2),
        decision=decision,
        reason=reason,
    )


def _decide(srm: SRMCheck, p_seq: float, diff: float, alpha: float, ev: Events) -> tuple[str, str]:
    if srm.mismatch:
        return (
            "NO CONCLUSION",
            f"sample ratio mismatch: {srm.treatment}/{srm.control + srm.treatment} units in "
            f"{ev.treatment} ({srm.observed_treatment_share:.2%}) on a "
            f"{srm.expected_treatment_share:.0%} design, chi-square p = {srm.p_value:.2g} "
            f"< {SRM_THRESHOLD}: the assignment or the logging is broken; fix it before "
            "reading any difference",
        )
    if p_seq < alpha:
        better = "better" if diff > 0 else "worse"
        return (
            f"{ev.treatment.upper()} {better.upper()}",
            f"always-valid p = {p_seq:.3g} < {alpha}: the difference holds whenever you looked",
        )
    return (
        "KEEP RUNNING",
        f"always-valid p = {p_seq:.3g} >= {alpha}: no difference established yet "
        "(safe to look again later)",
    )
