"""A/B statistics checked against their references (statsmodels, scipy, numerical
integration) and by simulation: the sequential test under continuous peeking."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from tunecheck.shadow import sequential
from tunecheck.shadow.ab import newcombe_interval, srm_check
from tunecheck.shadow.plan import plan_binary, plan_continuous

LOOK = 100  # units between looks


@pytest.mark.parametrize(
    ("baseline", "mde", "share", "alpha", "power"),
    [(0.3, 0.02, 0.5, 0.05, 0.8), (0.05, 0.01, 0.5, 0.05, 0.9), (0.6, -0.03, 0.1, 0.01, 0.8)],
)
def test_fixed_horizon_plan_matches_statsmodels(baseline, mde, share, alpha, power) -> None:
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    plan = plan_binary(baseline, mde, alpha=alpha, power=power, share=share)
    ratio = share / (1 - share)
    n1 = NormalIndPower().solve_power(
        proportion_effectsize(baseline + mde, baseline), alpha=alpha, power=power, ratio=ratio
    )
    assert plan.fixed_n_control == math.ceil(n1)
    assert plan.fixed_n_treatment == math.ceil(n1 * ratio)
    # the sequential test needs more units than one fixed look, never fewer
    assert plan.sequential_n_total > plan.fixed_n_total


def test_continuous_plan_matches_statsmodels() -> None:
    from statsmodels.stats.power import NormalIndPower

    plan = plan_continuous(sd=12.0, mde=1.5, alpha=0.05, power=0.8)
    n1 = NormalIndPower().solve_power(1.5 / 12.0, alpha=0.05, power=0.8, ratio=1.0)
    assert plan.fixed_n_control == math.ceil(n1) == plan.fixed_n_treatment


def test_mixture_likelihood_ratio_matches_numerical_integration() -> None:
    # Lambda = integral of N(theta_hat; theta, V) / N(theta_hat; 0, V) dN(theta; 0, tau^2)
    for theta_hat, v, tau2 in [(0.01, 1e-4, 4e-4), (-0.05, 4e-4, 1e-4), (0.0, 1e-3, 1e-2)]:

        def integrand(theta, theta_hat=theta_hat, v=v, tau2=tau2):
            lr = stats.norm.pdf(theta_hat, theta, math.sqrt(v)) / stats.norm.pdf(
                theta_hat, 0, math.sqrt(v)
            )
            return lr * stats.norm.pdf(theta, 0, math.sqrt(tau2))

        ref, _ = integrate.quad(integrand, -1, 1, points=[0, theta_hat], limit=200)
        assert float(sequential.mixture_lr(theta_hat, v, tau2)) == pytest.approx(ref, rel=1e-6)
        # the confidence sequence is exactly where Lambda crosses 1/alpha
        hw = float(sequential.half_width(v, tau2, 0.05))
        assert float(sequential.mixture_lr(hw, v, tau2)) == pytest.approx(20.0, rel=1e-9)


def test_newcombe_interval_matches_statsmodels() -> None:
    from statsmodels.stats.proportion import confint_proportions_2indep

    for x1, n1, x0, n0 in [(330, 1000, 300, 1000), (5, 40, 0, 37), (990, 1000, 980, 1010)]:
        ref = confint_proportions_2indep(x1, n1, x0, n0, method="newcomb", compare="diff")
        assert newcombe_interval(x1, n1, x0, n0) == pytest.approx(ref, abs=1e-12)


def _simulate_paths(p_c: float, p_t: float, looks: int, reps: int, seed: int):
    """Cumulative (difference, variance) at each look: LOOK/2 units per arm per look."""
    rng = np.random.default_rng(seed)
    half = LOOK // 2
    s_c = np.cumsum(rng.binomial(half, p_c, size=(reps, looks)), axis=1)
    s_t = np.cumsum(rng.binomial(half, p_t, size=(reps, looks)), axis=1)
    n = half * np.arange(1, looks + 1)
    m_c, m_t = s_c / n, s_t / n
    v = (m_c * (1 - m_c) + m_t * (1 - m_t)) / (n - 1)  # unbiased per-arm variances / n
    return m_t - m_c, np.maximum(v, 1e-12), n


def _mc_se(p: float, reps: int) -> float:
    return math.sqrt(max(p * (1 - p), 1e-4) / reps)


def test_no_difference_with_a_look_every_100_units_keeps_false_positives_under_5pct() -> None:
    reps, looks = 4000, 100  # 10,000 units, a look after every 100
    tau2 = plan_binary(0.3, 0.02).tau ** 2
    d, v, n = _simulate_paths(0.3, 0.3, looks, reps, seed=1)
    p_seq = sequential.always_valid_p(d, v, tau2)
    fpr_seq = float((p_seq[:, -1] < 0.05).mean())
    # the naive analyst: a t-test at every look, stop at the first p < 0.05
    t = d / np.sqrt(v)
    p_t = 2 * stats.t.sf(np.abs(t), df=2 * n - 2)
    fpr_t = float((p_t < 0.05).any(axis=1).mean())
    print(f"false positives with 100 looks: mSPRT {fpr_seq:.3f}, repeated t-tests {fpr_t:.3f}")
    assert fpr_seq + 3 * _mc_se(fpr_seq, reps) <= 0.05
    assert fpr_t - 3 * _mc_se(fpr_t, reps) > 0.05  # peeking with plain tests breaks alpha
    assert fpr_t > 3 * fpr_seq


def test_true_effect_at_the_planned_mde_is_found_with_80pct_power_at_the_planned_n() -> None:
    plan = plan_binary(0.3, 0.02, alpha=0.05, power=0.8)
    looks = math.ceil(plan.sequential_n_total / LOOK)
    reps = 2000
    d, v, _ = _simulate_paths(0.3, 0.32, looks, reps, seed=2)
    p_seq = sequential.always_valid_p(d, v, plan.tau**2)
    power = float((p_seq[:, -1] < 0.05).mean())
    print(f"power at the planned {plan.sequential_n_total} units: {power:.3f}")
    assert power - 3 * _mc_se(power, reps) >= 0.80


def test_srm_flags_a_48_52_split_and_matches_scipy() -> None:
    check = srm_check(9600, 10400, 0.5)  # 48/52 of 20,000 units on a 50/50 design
    expected = 10000
    chi2 = (9600 - expected) ** 2 / expected + (10400 - expected) ** 2 / expected
    assert check.chi2 == pytest.approx(chi2)
    assert check.p_value == pytest.approx(stats.chi2.sf(chi2, df=1), rel=1e-9)
    assert check.mismatch
    # a designed 10% split that arrives as 10% is fine; as 11% of 20,000 it is not
    assert not srm_check(18000, 2000, 0.1).mismatch
    assert srm_check(17800, 2200, 0.1).mismatch


def test_srm_false_alarms_and_detection_by_simulation() -> None:
    rng = np.random.default_rng(3)
    reps, n = 20000, 20000
    fair = rng.binomial(n, 0.5, size=reps)
    chi2 = (2 * fair - n) ** 2 / n
    false_alarm = float((stats.chi2.sf(chi2, 1) < 0.001).mean())
    assert false_alarm <= 0.001 + 3 * _mc_se(0.001, reps)
    broken = rng.binomial(n, 0.52, size=200)
    flagged = [srm_check(n - int(b), int(b), 0.5).mismatch for b in broken]
    assert np.mean(flagged) >= 0.95
