"""Paired statistics vs statsmodels/scipy, bootstrap coverage, fast vs index bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import permutation_test
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from tunecheck import stats
from tunecheck.metrics import ClassCodes, MetricScores


def _binary(name: str, values: np.ndarray, ids: list[str]) -> MetricScores:
    return MetricScores(name, float(values.mean()), values, ids, "binary")


@pytest.mark.parametrize(
    ("b", "c"), [(0, 0), (1, 0), (5, 5), (10, 3), (3, 17), (40, 61), (200, 150)]
)
def test_mcnemar_equals_statsmodels_exact(b, c):
    table = [[50, b], [c, 30]]
    expected = mcnemar(table, exact=True).pvalue
    assert stats.mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def _scipy_perm(a, b, n_resamples, seed=0):
    res = permutation_test(
        (a, b),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_resamples,
        alternative="two-sided",
        rng=seed,
    )
    return res.pvalue


def test_permutation_test_exact_equals_scipy():
    rng = np.random.default_rng(1)
    for _ in range(5):
        a, b = rng.random(11), rng.random(11)
        b[:3] = a[:3]  # zero differences are part of the null too
        assert stats.paired_permutation_test(a, b, n_resamples=10_000) == pytest.approx(
            _scipy_perm(a, b, 10_000), abs=1e-12
        )


@pytest.mark.parametrize("levels", [None, 5])
def test_permutation_test_monte_carlo_close_to_scipy(levels):
    rng = np.random.default_rng(2)
    a = rng.normal(0.5, 0.2, 60)
    b = a - 0.05 + rng.normal(0, 0.15, 60)
    if levels:  # few distinct differences: the compressed (binomial) path
        a, b = np.round(a * levels) / levels, np.round(b * levels) / levels
    ours = stats.paired_permutation_test(a, b, n_resamples=20_000, seed=3)
    ref = _scipy_perm(a, b, 20_000)
    se = np.sqrt(ref * (1 - ref) / 20_000) * 2
    assert abs(ours - ref) < 4 * se + 1e-3


@pytest.mark.slow
def test_holm_equals_statsmodels():
    rng = np.random.default_rng(4)
    for m in (1, 2, 7, 30):
        p = rng.random(m) ** 3
        assert stats.holm(p) == pytest.approx(multipletests(p, method="holm")[1], abs=1e-15)
    p = np.array([0.01, np.nan, 0.04, 0.03])
    out = stats.holm(p)
    assert np.isnan(out[1])
    assert out[[0, 2, 3]] == pytest.approx(multipletests(p[[0, 2, 3]], method="holm")[1])


def test_bootstrap_interval_covers_true_difference_binary():
    """Paired binary outcomes with a known true accuracy difference of 0.10."""
    rng = np.random.default_rng(11)
    # P(a=1,b=1)=.55, P(a=1,b=0)=.20, P(a=0,b=1)=.10, P(a=0,b=0)=.15 -> true delta = .10
    probs, true_delta, n, sims = [0.55, 0.20, 0.10, 0.15], 0.10, 150, 1000
    cells = np.array([[1, 1], [1, 0], [0, 1], [0, 0]], dtype=float)
    covered = 0
    for s in range(sims):
        pairs = cells[rng.choice(4, size=n, p=probs)]
        r = stats.bootstrap_mean_diff(pairs[:, 0], pairs[:, 1], n_resamples=2000, seed=s)
        covered += r.ci_low <= true_delta <= r.ci_high
    assert 0.93 <= covered / sims <= 0.97


def test_bootstrap_interval_covers_true_difference_continuous():
    rng = np.random.default_rng(12)

    def draw(n):
        a = rng.beta(4, 2, n)
        return a, np.clip(a - 0.03 + rng.normal(0, 0.1, n), 0, 1)

    big_a, big_b = draw(2_000_000)
    true_delta = float(np.mean(big_a - big_b))  # ~0.03, shifted a little by the clipping
    covered, sims = 0, 600
    for s in range(sims):
        a, b = draw(120)
        r = stats.bootstrap_mean_diff(a, b, n_resamples=2000, seed=s)
        covered += r.ci_low <= true_delta <= r.ci_high
    assert r.method == "index"  # every difference is distinct
    assert 0.93 <= covered / sims <= 0.97


def test_pattern_bootstrap_matches_index_bootstrap_binary():
    rng = np.random.default_rng(5)
    a = (rng.random(800) < 0.7).astype(float)
    b = np.where(rng.random(800) < 0.8, a, 1 - a)
    fast = stats.bootstrap_mean_diff(a, b, n_resamples=20_000, seed=1, method="patterns")
    slow = stats.bootstrap_mean_diff(a, b, n_resamples=20_000, seed=2, method="index")
    assert fast.method == "patterns" and slow.method == "index"
    assert fast.delta == slow.delta
    assert fast.se == pytest.approx(slow.se, rel=0.03)
    assert fast.ci_low == pytest.approx(slow.ci_low, abs=0.15 * slow.se)
    assert fast.ci_high == pytest.approx(slow.ci_high, abs=0.15 * slow.se)


def test_pattern_bootstrap_matches_index_bootstrap_macro_f1():
    rng = np.random.default_rng(6)
    n, k = 600, 6
    gold = rng.choice(k, n, p=[0.4, 0.2, 0.15, 0.1, 0.1, 0.05])
    pa = np.where(rng.random(n) < 0.75, gold, rng.integers(-1, k, n))
    pb = np.where(rng.random(n) < 0.65, gold, rng.integers(-1, k, n))
    fast = stats.bootstrap_macro_f1_diff(
        pa, pb, gold, k, n_resamples=6000, seed=1, method="patterns"
    )
    slow = stats.bootstrap_macro_f1_diff(pa, pb, gold, k, n_resamples=6000, seed=2, method="index")
    assert fast.delta == slow.delta
    assert fast.se == pytest.approx(slow.se, rel=0.05)
    assert fast.ci_low == pytest.approx(slow.ci_low, abs=0.2 * slow.se)
    assert fast.ci_high == pytest.approx(slow.ci_high, abs=0.2 * slow.se)


def _macro_f1_rows(pred: np.ndarray, gold: np.ndarray, k: int) -> np.ndarray:
    """Plain one-hot macro-F1 per row (an independent reference, checked against sklearn)."""
    p1 = pred[..., None] == np.arange(k)
    g1 = gold[None, :, None] == np.arange(k)
    tp = (p1 & g1).sum(1)
    denom = p1.sum(1) + g1.sum(1)
    present = denom > 0
    return np.where(present, 2 * tp / np.maximum(denom, 1), 0).sum(1) / present.sum(1)


def test_macro_f1_permutation_matches_a_plain_swap_loop():
    """The cell-binomial randomisation test vs swapping per example (Monte-Carlo agreement)."""
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(8)
    n, k, draws = 80, 3, 20_000
    gold = rng.integers(0, k, n)
    pa = np.where(rng.random(n) < 0.7, gold, rng.integers(0, k, n))
    pb = np.where(rng.random(n) < 0.55, gold, rng.integers(0, k, n))
    observed = f1_score(gold, pa, average="macro") - f1_score(gold, pb, average="macro")
    assert _macro_f1_rows(pa[None], gold, k)[0] == pytest.approx(
        f1_score(gold, pa, average="macro")
    )
    swap = rng.random((draws, n)) < 0.5
    null = _macro_f1_rows(np.where(swap, pb, pa), gold, k) - _macro_f1_rows(
        np.where(swap, pa, pb), gold, k
    )
    greater = (np.sum(null >= observed - 1e-12) + 1) / (draws + 1)
    less = (np.sum(null <= observed + 1e-12) + 1) / (draws + 1)
    loop_p = min(1.0, 2 * min(greater, less))
    ours = stats.permutation_test_macro_f1(pa, pb, gold, k, n_resamples=20_000, seed=0)
    assert 0.001 < loop_p < 0.5  # a p-value in the interesting range
    assert abs(ours - loop_p) < 4 * np.sqrt(2 * loop_p * (1 - loop_p) / draws) + 1e-3


def test_mde_and_n_required_are_consistent():
    for n, psi in [(50, 0.2), (200, 0.1), (1000, 0.3)]:
        mde = stats.mde_paired_binary(n, psi)
        assert abs(stats.n_required_paired_binary(mde, psi) - n) <= 1
    # more examples detect smaller differences
    assert stats.mde_paired_binary(400, 0.2) < stats.mde_paired_binary(100, 0.2)
    assert stats.n_required_paired_binary(0, 0.2) is None
    # continuous: n_required scales the SE correctly back to n at the MDE
    se = 0.02
    assert stats.n_required_from_se(stats.mde_from_se(se), se, 300) == 300


def test_compare_pairs_by_id_and_reports_noise_in_plain_words():
    ids = [f"e{i}" for i in range(50)]
    rng = np.random.default_rng(9)
    base = (rng.random(50) < 0.6).astype(float)
    cand = base.copy()
    cand[:3] = 1 - cand[:3]
    # the candidate failed on two examples: they are missing from its scores
    c = _binary(
        "accuracy", np.delete(cand, [10, 11]), [i for j, i in enumerate(ids) if j not in (10, 11)]
    )
    b = _binary("accuracy", base, ids)
    comp = stats.compare(c, b, n_resamples=2000)
    assert comp.n == 48
    keep = np.ones(50, bool)
    keep[[10, 11]] = False
    assert comp.delta == pytest.approx(cand[keep].mean() - base[keep].mean())
    b_only = int(((cand == 0) & (base == 1))[keep].sum())
    c_only = int(((cand == 1) & (base == 0))[keep].sum())
    assert (comp.candidate_only, comp.baseline_only) == (c_only, b_only)
    assert comp.p_value == pytest.approx(stats.mcnemar_exact(c_only, b_only))
    assert comp.test == "mcnemar_exact" and not comp.significant
    assert "swing on 48 examples is not meaningful" in comp.note
    assert comp.n_required and comp.n_required > 48


def test_compare_corpus_metric_uses_recomputed_subset_values():
    rng = np.random.default_rng(10)
    n, k = 300, 4
    gold = rng.integers(0, k, n)
    pa = np.where(rng.random(n) < 0.85, gold, (gold + 1) % k)
    pb = np.where(rng.random(n) < 0.6, gold, (gold + 1) % k)
    ids = [str(i) for i in range(n)]
    classes = list("abcd")

    def scores(pred):
        from tunecheck.metrics.base import macro_f1_codes

        return MetricScores(
            "macro_f1", macro_f1_codes(pred, gold, k), (pred == gold).astype(float), ids, "corpus",
            corpus=ClassCodes(pred, gold, classes),
        )  # fmt: skip

    comp = stats.compare(scores(pa), scores(pb), n_resamples=3000)
    assert comp.test == "permutation_swap" and comp.significant and comp.delta > 0.2
    assert comp.ci_low < comp.delta < comp.ci_high
    sliced = stats.compare_slices(
        {"macro_f1": scores(pa)}, {"macro_f1": scores(pb)}, {"even": ids[::2], "odd": ids[1::2]},
        n_resamples=1000,
    )  # fmt: skip
    assert [c.slice for c in sliced] == ["even", "odd"]
    assert sliced[0].n == 150
    raw = [c.p_value for c in sliced]
    assert [c.p_adjusted for c in sliced] == pytest.approx(
        list(multipletests(raw, method="holm")[1])
    )
