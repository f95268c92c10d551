"""Paired statistics: bootstrap intervals, McNemar, permutation tests, Holm, detectable effects.

Every comparison is *paired*: candidate and baseline are scored on the same
examples, and it is the per-example differences that are resampled.

Speed. A paired bootstrap only needs, for each resample, how many times each
distinct per-example *outcome pattern* was drawn. Binary metrics have four
patterns ((1,1), (1,0), (0,1), (0,0)); macro-F1 has one pattern per
(candidate prediction, baseline prediction, gold label) cell. Drawing the pattern
counts from a multinomial gives exactly the same sampling distribution as drawing
``n`` indices with replacement, at a cost that no longer grows with ``n``. The
plain index-matrix bootstrap stays available (``method="index"``) as the reference.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from tunecheck.metrics.base import AdditiveStats, ClassCodes, MetricScores

Method = Literal["auto", "patterns", "index"]
POWER = 0.8
_CHUNK_CELLS = 4_000_000  # max elements of one resample block held in memory


# --------------------------------------------------------------------------- bootstrap


@dataclass
class BootstrapResult:
    """Observed delta, percentile interval, bootstrap standard error and the method used."""

    delta: float
    ci_low: float
    ci_high: float
    se: float
    method: str
    n_resamples: int


def _interval(delta: float, deltas: np.ndarray, alpha: float, method: str) -> BootstrapResult:
    low, high = np.quantile(deltas, [alpha / 2, 1 - alpha / 2])
    return BootstrapResult(
        delta=float(delta),
        ci_low=float(low),
        ci_high=float(high),
        se=float(np.std(deltas, ddof=1)) if len(deltas) > 1 else 0.0,
        method=method,
        n_resamples=len(deltas),
    )


def _chunks(total: int, width: int) -> list[int]:
    size = max(1, _CHUNK_CELLS // max(width, 1))
    return [min(size, total - start) for start in range(0, total, size)]


def _index_counts(rng: np.random.Generator, rows: int, n: int) -> np.ndarray:
    """``rows`` index resamples of ``n`` items, as per-item draw counts (rows × n)."""
    idx = rng.integers(0, n, size=(rows, n))
    flat = idx + (np.arange(rows)[:, None] * n)
    return np.bincount(flat.ravel(), minlength=rows * n).reshape(rows, n).astype(float)


def bootstrap_mean_diff(
    a: np.ndarray,
    b: np.ndarray,
    *,
    n_resamples: int = 10_000,
    alpha: float = 0.05,
    seed: int = 0,
    method: Method = "auto",
) -> BootstrapResult:
    """Paired bootstrap of ``mean(a) - mean(b)`` (per-example scores on the same examples).

    ``patterns`` resamples the counts of the distinct per-example differences with one
    multinomial draw per resample; ``index`` draws an index matrix (the textbook way).
    ``auto`` uses patterns unless there are too many distinct differences.
    """
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = len(d)
    if n == 0:
        nan = float("nan")
        return BootstrapResult(nan, nan, nan, nan, "none", 0)
    rng = np.random.default_rng(seed)
    values, counts = np.unique(d, return_counts=True)
    if method == "auto":
        # compression pays only when many examples share a difference (binary: at most 3)
        few = len(values) <= max(3, n // 4)
        method = "patterns" if few and len(values) * n_resamples <= 50_000_000 else "index"
    if method == "patterns":
        draws = rng.multinomial(n, counts / n, size=n_resamples)
        deltas = draws @ values / n
    else:
        deltas = np.empty(n_resamples)
        start = 0
        for rows in _chunks(n_resamples, n):
            idx = rng.integers(0, n, size=(rows, n))
            deltas[start : start + rows] = d[idx].mean(axis=1)
            start += rows
    return _interval(float(d.mean()), deltas, alpha, method)


class _ClassCells:
    """Distinct (pred_a, pred_b, gold) cells with sparse maps from cell counts to F1 inputs."""

    def __init__(self, pred_a: np.ndarray, pred_b: np.ndarray, gold: np.ndarray, n_classes: int):
        from scipy import sparse

        k = n_classes + 1  # code -1 (invalid) is shifted to 0
        code = ((pred_a + 1) * k + (pred_b + 1)) * n_classes + gold
        uniq, self.counts = np.unique(code, return_counts=True)
        self.gold = uniq % n_classes
        pb = (uniq // n_classes) % k - 1
        pa = (uniq // n_classes) // k - 1
        self.n_classes = n_classes

        def indicator(rows_mask: np.ndarray, cols: np.ndarray) -> sparse.csr_matrix:
            rows = np.flatnonzero(rows_mask)
            data = np.ones(len(rows))
            return sparse.csr_matrix(
                (data, (rows, cols[rows])), shape=(len(uniq), n_classes)
            ).T.tocsr()

        everything = np.ones(len(uniq), dtype=bool)
        self.true = indicator(everything, self.gold)
        self.tp_a = indicator(pa == self.gold, self.gold)
        self.tp_b = indicator(pb == self.gold, self.gold)
        self.pred_a = indicator(pa >= 0, np.maximum(pa, 0))
        self.pred_b = indicator(pb >= 0, np.maximum(pb, 0))

    @staticmethod
    def macro(tp: np.ndarray, n_pred: np.ndarray, n_true: np.ndarray) -> np.ndarray:
        denom = n_pred + n_true
        present = denom > 0
        f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=present)
        macro_f1: np.ndarray = f1.sum(axis=1) / np.maximum(present.sum(axis=1), 1)
        return macro_f1

    def delta(self, w: np.ndarray) -> np.ndarray:
        """Macro-F1(a) - macro-F1(b) for each row of cell weights ``w`` (B × cells)."""
        wt = w.T
        n_true = (self.true @ wt).T
        fa = self.macro((self.tp_a @ wt).T, (self.pred_a @ wt).T, n_true)
        fb = self.macro((self.tp_b @ wt).T, (self.pred_b @ wt).T, n_true)
        diff: np.ndarray = fa - fb
        return diff

    def swapped_delta(self, s: np.ndarray) -> np.ndarray:
        """The delta when ``s`` of each cell's examples have their two predictions swapped."""
        keep = (self.counts[None, :] - s).T
        st = s.T
        n_true = (self.true @ (keep + st)).T
        tp_a = (self.tp_a @ keep + self.tp_b @ st).T
        tp_b = (self.tp_b @ keep + self.tp_a @ st).T
        pr_a = (self.pred_a @ keep + self.pred_b @ st).T
        pr_b = (self.pred_b @ keep + self.pred_a @ st).T
        diff: np.ndarray = self.macro(tp_a, pr_a, n_true) - self.macro(tp_b, pr_b, n_true)
        return diff


def _macro_rows(pred: np.ndarray, gold: np.ndarray, n_classes: int) -> np.ndarray:
    """Macro-F1 of each row of a (rows × n) matrix of resampled predictions/labels."""
    rows = pred.shape[0]
    offset = (np.arange(rows) * n_classes)[:, None]
    size = rows * n_classes
    valid = pred >= 0
    n_true = np.bincount((gold + offset).ravel(), minlength=size).reshape(rows, n_classes)
    n_pred = np.bincount((pred + offset)[valid], minlength=size).reshape(rows, n_classes)
    hit = valid & (pred == gold)
    tp = np.bincount((gold + offset)[hit], minlength=size).reshape(rows, n_classes)
    return _ClassCells.macro(tp.astype(float), n_pred.astype(float), n_true.astype(float))


def bootstrap_macro_f1_diff(
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    gold: np.ndarray,
    n_classes: int,
    *,
    n_resamples: int = 10_000,
    alpha: float = 0.05,
    seed: int = 0,
    method: Method = "auto",
) -> BootstrapResult:
    """Paired bootstrap of macro-F1(a) - macro-F1(b), recomputing F1 on every resample."""
    from tunecheck.metrics.base import macro_f1_codes

    n = len(gold)
    if n == 0:
        nan = float("nan")
        return BootstrapResult(nan, nan, nan, nan, "none", 0)
    observed = macro_f1_codes(pred_a, gold, n_classes) - macro_f1_codes(pred_b, gold, n_classes)
    rng = np.random.default_rng(seed)
    deltas = np.empty(n_resamples)
    if method in ("auto", "patterns"):
        cells = _ClassCells(pred_a, pred_b, gold, n_classes)
        p = cells.counts / n
        start = 0
        for rows in _chunks(n_resamples, len(p)):
            w = rng.multinomial(n, p, size=rows).astype(float)
            deltas[start : start + rows] = cells.delta(w)
            start += rows
        method = "patterns"
    else:
        start = 0
        for rows in _chunks(n_resamples, n * 3):
            idx = rng.integers(0, n, size=(rows, n))
            g = gold[idx]
            deltas[start : start + rows] = _macro_rows(pred_a[idx], g, n_classes) - _macro_rows(
                pred_b[idx], g, n_classes
            )
            start += rows
    return _interval(observed, deltas, alpha, method)


def bootstrap_additive_diff(
    stats_a: np.ndarray,
    stats_b: np.ndarray,
    score: Callable[[np.ndarray], np.ndarray],
    *,
    n_resamples: int = 10_000,
    alpha: float = 0.05,
    seed: int = 0,
) -> BootstrapResult:
    """Paired bootstrap of a corpus metric computed from summed per-example statistics."""
    n = len(stats_a)
    if n == 0:
        nan = float("nan")
        return BootstrapResult(nan, nan, nan, nan, "none", 0)
    observed = float(
        score(stats_a.sum(0, keepdims=True))[0] - score(stats_b.sum(0, keepdims=True))[0]
    )
    rng = np.random.default_rng(seed)
    deltas = np.empty(n_resamples)
    start = 0
    for rows in _chunks(n_resamples, n):
        w = _index_counts(rng, rows, n)
        deltas[start : start + rows] = score(w @ stats_a) - score(w @ stats_b)
        start += rows
    return _interval(observed, deltas, alpha, "index")


def paired_bootstrap(
    candidate: MetricScores,
    baseline: MetricScores,
    *,
    n_resamples: int = 10_000,
    alpha: float = 0.05,
    seed: int = 0,
    method: Method = "auto",
) -> BootstrapResult:
    """Bootstrap interval of candidate minus baseline; both must be aligned on the same ids."""
    _check_aligned(candidate, baseline)
    ca, cb = candidate.corpus, baseline.corpus
    if candidate.kind == "corpus" and isinstance(ca, ClassCodes) and isinstance(cb, ClassCodes):
        pa, pb, gold, k = _common_codes(ca, cb)
        return bootstrap_macro_f1_diff(
            pa, pb, gold, k, method=method, n_resamples=n_resamples, alpha=alpha, seed=seed
        )
    if (
        candidate.kind == "corpus"
        and isinstance(ca, AdditiveStats)
        and isinstance(cb, AdditiveStats)
    ):
        return bootstrap_additive_diff(
            ca.stats, cb.stats, ca.score, n_resamples=n_resamples, alpha=alpha, seed=seed
        )
    return bootstrap_mean_diff(
        candidate.per_example,
        baseline.per_example,
        method=method,
        n_resamples=n_resamples,
        alpha=alpha,
        seed=seed,
    )


# --------------------------------------------------------------------------- tests


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test on the ``b + c`` discordant pairs."""
    from scipy.stats import binom

    n = int(b) + int(c)
    if n == 0:
        return 1.0
    return float(min(1.0, 2.0 * binom.cdf(min(b, c), n, 0.5)))


def _two_sided(null: np.ndarray, observed: float, adjustment: int) -> float:
    # scipy.stats.permutation_test's rule: twice the smaller one-sided p-value, with a
    # relative tolerance so that ties computed in a different order still count
    gamma = abs(np.finfo(float).eps * 100 * observed)
    less = (np.count_nonzero(null <= observed + gamma) + adjustment) / (len(null) + adjustment)
    greater = (np.count_nonzero(null >= observed - gamma) + adjustment) / (len(null) + adjustment)
    return float(min(1.0, 2 * min(less, greater)))


def paired_permutation_test(
    a: np.ndarray, b: np.ndarray, n_resamples: int = 10_000, seed: int = 0
) -> float:
    """Two-sided sign-flip permutation test of ``mean(a - b) == 0``.

    Exact (all ``2**n`` sign patterns) when that is no more than ``n_resamples``, like
    ``scipy.stats.permutation_test(..., permutation_type="samples")``; Monte Carlo otherwise.
    """
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = len(d)
    if n == 0:
        return 1.0
    observed = float(d.mean())
    if 2**n <= n_resamples:
        signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
        return _two_sided(signs @ d / n, observed, 0)
    rng = np.random.default_rng(seed)
    values, counts = np.unique(d, return_counts=True)
    if len(values) * n_resamples <= 50_000_000:
        flipped = rng.binomial(counts, 0.5, size=(n_resamples, len(values)))
        null = (counts - 2 * flipped) @ values / n
    else:
        null = np.empty(n_resamples)
        start = 0
        for rows in _chunks(n_resamples, n):
            signs = 1 - 2 * rng.integers(0, 2, size=(rows, n))
            null[start : start + rows] = signs @ d / n
            start += rows
    return _two_sided(null, observed, 1)


def permutation_test_macro_f1(
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    gold: np.ndarray,
    n_classes: int,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> float:
    """Approximate randomisation test of macro-F1(a) == macro-F1(b): swap each pair's predictions."""
    from tunecheck.metrics.base import macro_f1_codes

    if len(gold) == 0:
        return 1.0
    observed = macro_f1_codes(pred_a, gold, n_classes) - macro_f1_codes(pred_b, gold, n_classes)
    cells = _ClassCells(pred_a, pred_b, gold, n_classes)
    rng = np.random.default_rng(seed)
    null = np.empty(n_resamples)
    start = 0
    for rows in _chunks(n_resamples, len(cells.counts)):
        s = rng.binomial(cells.counts, 0.5, size=(rows, len(cells.counts))).astype(float)
        null[start : start + rows] = cells.swapped_delta(s)
        start += rows
    return _two_sided(null, observed, 1)


def permutation_test_additive(
    stats_a: np.ndarray,
    stats_b: np.ndarray,
    score: Callable[[np.ndarray], np.ndarray],
    n_resamples: int = 10_000,
    seed: int = 0,
) -> float:
    """Approximate randomisation test for a corpus metric built from summed statistics."""
    n = len(stats_a)
    if n == 0:
        return 1.0
    total_a, total_b = stats_a.sum(0), stats_b.sum(0)
    observed = float(score(total_a[None])[0] - score(total_b[None])[0])
    diff = stats_b - stats_a
    rng = np.random.default_rng(seed)
    null = np.empty(n_resamples)
    start = 0
    for rows in _chunks(n_resamples, n):
        s = rng.integers(0, 2, size=(rows, n)).astype(float)
        moved = s @ diff
        null[start : start + rows] = score(total_a + moved) - score(total_b - moved)
        start += rows
    return _two_sided(null, observed, 1)


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (same as statsmodels ``multipletests(method="holm")``).

    NaN entries (comparisons that could not be tested) stay NaN and are not counted.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out


# --------------------------------------------------------------------------- power


def _z(alpha: float, power: float) -> tuple[float, float]:
    from scipy.stats import norm

    return float(norm.ppf(1 - alpha / 2)), float(norm.ppf(power))


def n_required_paired_binary(
    delta: float, discordant_rate: float, *, alpha: float = 0.05, power: float = POWER
) -> int | None:
    """Examples needed for McNemar to detect ``delta`` (Connor 1987), given the discordant rate.

    ``None`` when ``delta`` is 0 (no sample size detects no difference).
    """
    delta = abs(delta)
    if delta == 0:
        return None
    za, zb = _z(alpha, power)
    psi = max(discordant_rate, delta)
    n = (za * math.sqrt(psi) + zb * math.sqrt(max(psi - delta**2, 0.0))) ** 2 / delta**2
    return math.ceil(n)


def mde_paired_binary(
    n: int, discordant_rate: float, *, alpha: float = 0.05, power: float = POWER
) -> float:
    """Smallest accuracy difference McNemar detects with ``power`` on ``n`` pairs (Connor 1987).

    ``discordant_rate`` is the share of examples where exactly one contender is right;
    when none were observed, one discordant pair is assumed (an optimistic floor).
    """
    from scipy.optimize import brentq

    if n <= 0:
        return float("nan")
    psi = max(discordant_rate, 1.0 / n)
    za, zb = _z(alpha, power)

    def gap(delta: float) -> float:
        return (za * math.sqrt(psi) + zb * math.sqrt(max(psi - delta**2, 0.0))) / delta - math.sqrt(
            n
        )

    hi = math.sqrt(psi)
    if gap(hi) > 0:  # not even the largest possible difference is detectable
        return float(min(1.0, (za + zb) * math.sqrt(psi / n)))
    return float(brentq(gap, 1e-12, hi))


def mde_from_se(se: float, *, alpha: float = 0.05, power: float = POWER) -> float:
    """Minimum detectable effect of a roughly normal estimate with standard error ``se``."""
    za, zb = _z(alpha, power)
    return (za + zb) * se


def n_required_from_se(
    delta: float, se: float, n: int, *, alpha: float = 0.05, power: float = POWER
) -> int | None:
    """Examples needed to detect ``delta``, scaling a standard error measured on ``n`` examples.

    ``None`` when ``delta`` is 0 or nothing was measured.
    """
    if delta == 0 or n == 0:
        return None
    if se == 0:
        return n
    return math.ceil(n * (mde_from_se(se, alpha=alpha, power=power) / abs(delta)) ** 2)


# --------------------------------------------------------------------------- compare


class Comparison(BaseModel):
    """Paired comparison of one metric between a candidate and a baseline on shared examples.

    ``delta = candidate_value - baseline_value``, both computed on the ``n`` examples
    both contenders answered. ``discordant`` (binary metrics): examples only the
    candidate got right / only the baseline got right. ``mde``: the smallest
    difference this many examples could detect (80% power, ``alpha``);
    ``n_required``: examples needed to detect the observed delta.
    """

    metric: str
    kind: str
    higher_is_better: bool = Field(
        True, description="the metric's direction; False: a negative delta is an improvement"
    )
    candidate: str = "candidate"
    baseline: str = "baseline"
    slice: str | None = None
    n: int
    candidate_value: float | None
    baseline_value: float | None
    delta: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float
    p_value: float | None
    p_adjusted: float | None = None
    test: str
    significant: bool
    candidate_only: int | None = None
    baseline_only: int | None = None
    mde: float | None = None
    n_required: int | None = None
    note: str = ""
    bootstrap: str = ""

    def improvement(self) -> tuple[float | None, float | None, float | None]:
        """``(gain, low, high)``: delta and interval oriented so that positive means better."""
        if self.higher_is_better:
            return self.delta, self.ci_low, self.ci_high

        def flip(x: float | None) -> float | None:
            return None if x is None else -x

        return flip(self.delta), flip(self.ci_high), flip(self.ci_low)


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _check_aligned(a: MetricScores, b: MetricScores) -> None:
    if a.example_ids != b.example_ids:
        raise ValueError("paired statistics need both contenders scored on the same example ids")


def _common_codes(a: ClassCodes, b: ClassCodes) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Both contenders' codes on one class list (they agree unless classes were derived apart)."""
    if a.classes == b.classes:
        return a.predictions, b.predictions, a.labels, len(a.classes)
    classes = sorted(set(a.classes) | set(b.classes))
    pos = {c: i for i, c in enumerate(classes)}

    def remap(codes: np.ndarray, names: list[str]) -> np.ndarray:
        table = np.array([pos[c] for c in names] + [-1])
        return table[np.where(codes < 0, len(names), codes)]

    return (
        remap(a.predictions, a.classes),
        remap(b.predictions, b.classes),
        remap(a.labels, a.classes),
        len(classes),
    )


def points(x: float | None, value_scale: bool = True) -> str:
    """A difference in points (×100) for 0-1 metrics, e.g. ``+12.4 pts``."""
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x * 100:+.1f} pts" if value_scale else f"{x:+.3g}"


def noise_note(
    delta: float | None, mde: float | None, n: int, n_required: int | None, alpha: float
) -> str:
    """Plain words on whether the observed delta is within what this test set can detect."""
    if n < 2:
        return f"only {n} paired example(s): nothing can be concluded"
    if delta is None or mde is None:
        return ""
    if abs(delta) < mde:
        swing = f"±{abs(delta) * 100:.1f}-point"
        text = (
            f"a {swing} swing on {n} examples is not meaningful: this test set can only "
            f"detect differences of about {mde * 100:.1f} points (80% power, alpha {alpha:g})"
        )
        if n_required and delta != 0:
            text += f"; about {n_required} examples would be needed to detect {abs(delta) * 100:.1f} points"
        return text
    return f"this test set can detect differences of about {mde * 100:.1f} points or more"


def pair_scores(
    candidate: MetricScores, baseline: MetricScores
) -> tuple[MetricScores, MetricScores]:
    """Both metrics restricted to the examples both contenders answered (candidate's order)."""
    theirs = set(baseline.example_ids)
    ids = [i for i in candidate.example_ids if i in theirs]
    if ids == candidate.example_ids and ids == baseline.example_ids:
        return candidate, baseline
    return candidate.subset(ids), baseline.subset(ids)


def compare(
    candidate: MetricScores,
    baseline: MetricScores,
    *,
    alpha: float = 0.05,
    n_resamples: int = 10_000,
    seed: int = 0,
    candidate_name: str = "candidate",
    baseline_name: str = "baseline",
    slice_name: str | None = None,
) -> Comparison:
    """Paired comparison of one metric: delta, bootstrap CI, p-value, MDE and a plain note.

    Pairs by example id (only examples both contenders answered). Test: McNemar's exact
    test for binary scores, sign-flip permutation for continuous ones, approximate
    randomisation (swap the pair's outputs, recompute) for corpus metrics.
    """
    if candidate.name != baseline.name:
        raise ValueError(f"cannot compare metric {candidate.name!r} with {baseline.name!r}")
    cand, base = pair_scores(candidate, baseline)
    n = cand.n
    common = {
        "metric": candidate.name,
        "kind": candidate.kind,
        "higher_is_better": candidate.higher_is_better,
        "candidate": candidate_name,
        "baseline": baseline_name,
        "slice": slice_name,
        "n": n,
        "confidence": 1 - alpha,
    }
    if n == 0:
        return Comparison(
            **common, candidate_value=None, baseline_value=None, delta=None, ci_low=None,
            ci_high=None, p_value=None, test="none", significant=False,
            note="no example was answered by both contenders",
        )  # fmt: skip
    boot = paired_bootstrap(cand, base, n_resamples=n_resamples, alpha=alpha, seed=seed)
    delta = boot.delta
    cand_only = base_only = None
    perm_seed = seed + 1
    if cand.kind == "binary":
        cand_only = int(((cand.per_example == 1) & (base.per_example == 0)).sum())
        base_only = int(((cand.per_example == 0) & (base.per_example == 1)).sum())
        p = mcnemar_exact(cand_only, base_only)
        test = "mcnemar_exact"
        rate = (cand_only + base_only) / n
        mde = mde_paired_binary(n, rate, alpha=alpha)
        n_req = n_required_paired_binary(delta, max(rate, 1 / n), alpha=alpha)
    elif cand.kind == "corpus":
        if isinstance(cand.corpus, ClassCodes) and isinstance(base.corpus, ClassCodes):
            pa, pb, gold, k = _common_codes(cand.corpus, base.corpus)
            p = permutation_test_macro_f1(pa, pb, gold, k, n_resamples, perm_seed)
        else:
            assert isinstance(cand.corpus, AdditiveStats) and isinstance(base.corpus, AdditiveStats)
            p = permutation_test_additive(
                cand.corpus.stats, base.corpus.stats, cand.corpus.score, n_resamples, perm_seed
            )
        test = "permutation_swap"
        mde = mde_from_se(boot.se, alpha=alpha)
        n_req = n_required_from_se(delta, boot.se, n, alpha=alpha)
    else:
        p = paired_permutation_test(cand.per_example, base.per_example, n_resamples, perm_seed)
        test = "permutation_sign_flip"
        sd = float(np.std(cand.per_example - base.per_example, ddof=1)) if n > 1 else 0.0
        mde = mde_from_se(sd / math.sqrt(n), alpha=alpha)
        n_req = n_required_from_se(delta, sd / math.sqrt(n), n, alpha=alpha)
    n_req_out = n_req
    return Comparison(
        **common,
        candidate_value=_finite(cand.value),
        baseline_value=_finite(base.value),
        delta=_finite(delta),
        ci_low=_finite(boot.ci_low),
        ci_high=_finite(boot.ci_high),
        p_value=_finite(p),
        test=test,
        significant=bool(p < alpha),
        candidate_only=cand_only,
        baseline_only=base_only,
        mde=_finite(mde),
        n_required=n_req_out,
        note=noise_note(delta, _finite(mde), n, n_req_out, alpha),
        bootstrap=f"{boot.method}, {boot.n_resamples} resamples, seed {seed}",
    )


def compare_slices(
    candidate: Mapping[str, MetricScores],
    baseline: Mapping[str, MetricScores],
    slices: Mapping[str, Sequence[str]],
    *,
    alpha: float = 0.05,
    n_resamples: int = 10_000,
    seed: int = 0,
    candidate_name: str = "candidate",
    baseline_name: str = "baseline",
) -> list[Comparison]:
    """Every metric on every slice (``slice -> example ids``), Holm-adjusted across all of them."""
    out: list[Comparison] = []
    for slice_name, ids in sorted(slices.items()):
        for name, cand in candidate.items():
            keep = set(ids)
            c_ids = [i for i in cand.example_ids if i in keep]
            b_ids = [i for i in baseline[name].example_ids if i in keep]
            out.append(
                compare(
                    cand.subset(c_ids),
                    baseline[name].subset(b_ids),
                    alpha=alpha,
                    n_resamples=n_resamples,
                    seed=seed,
                    candidate_name=candidate_name,
                    baseline_name=baseline_name,
                    slice_name=slice_name,
                )
            )
    apply_holm(out)
    return out


def apply_holm(comparisons: Sequence[Comparison]) -> None:
    """Fill ``p_adjusted`` of comparisons tested together (one family) with Holm's method."""
    adjusted = holm([c.p_value if c.p_value is not None else np.nan for c in comparisons])
    for comp, p in zip(comparisons, adjusted, strict=True):
        comp.p_adjusted = _finite(float(p))
