"""Sample sizes for an A/B test: the fixed-horizon z-test and the sequential mSPRT.

The fixed-horizon numbers follow statsmodels' ``NormalIndPower`` exactly (Cohen's
``h = 2 asin(sqrt(p1)) - 2 asin(sqrt(p0))`` for rates, ``d = mde / sd`` for means,
two-sided, both tails counted); a test checks them against statsmodels. The
sequential number is the smallest total sample at which the mSPRT
(:mod:`tunecheck.shadow.sequential`) rejects with the requested power *at that look
alone*; peeking earlier can only add rejections, so the real power is at least that.
Its mixing variance ``tau^2`` is chosen to make that sample as small as possible for
the planned MDE, and ``tunecheck ab analyze --mde`` uses the same rule.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from scipy import optimize, stats

from tunecheck.errors import TunecheckError
from tunecheck.shadow.sequential import final_look_power


class PlanError(TunecheckError):
    """Impossible planning inputs."""


@dataclass
class Plan:
    """What ``tunecheck ab plan`` prints."""

    outcome: str  # binary | continuous
    baseline: float
    mde: float
    alpha: float
    power: float
    treatment_share: float
    effect_size: float
    fixed_n_control: int
    fixed_n_treatment: int
    fixed_n_total: int
    sequential_n_total: int
    sequential_n_control: int
    sequential_n_treatment: int
    tau: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check(alpha: float, power: float, share: float, mde: float) -> None:
    if not 0 < alpha < 1:
        raise PlanError(f"--alpha must be between 0 and 1, got {alpha}")
    if not 0 < power < 1:
        raise PlanError(f"--power must be between 0 and 1, got {power}")
    if not 0 < share < 1:
        raise PlanError(f"--split must be strictly between 0 and 1, got {share}")
    if mde == 0:
        raise PlanError("--mde must not be 0", hint="the smallest difference worth detecting")


def normal_ind_power(effect: float, n1: float, ratio: float, alpha: float) -> float:
    """Power of the two-sided two-sample z-test (statsmodels' NormalIndPower.power)."""
    crit = stats.norm.isf(alpha / 2)
    nobs = n1 * ratio / (1 + ratio)
    shift = abs(effect) * math.sqrt(nobs)
    return float(stats.norm.sf(crit - shift) + stats.norm.cdf(-crit - shift))


def solve_n1(effect: float, ratio: float, alpha: float, power: float) -> float:
    """Control-arm size reaching ``power`` (not rounded)."""
    return optimize.brentq(
        lambda n: normal_ind_power(effect, n, ratio, alpha) - power, 1e-6, 1e12, xtol=1e-10
    )


def sequential_total(
    mde: float, var_c: float, var_t: float, share: float, alpha: float, power: float, tau2: float
) -> float:
    """Total units at which the mSPRT's final-look power reaches ``power``."""

    def gap(n: float) -> float:
        v = var_c / (n * (1 - share)) + var_t / (n * share)
        return final_look_power(mde, v, tau2, alpha) - power

    return optimize.brentq(gap, 2.0, 1e13, xtol=1e-6)


def best_tau2(
    mde: float, var_c: float, var_t: float, share: float, alpha: float, power: float
) -> float:
    """The mixing variance that needs the fewest units to detect ``mde``."""
    scale = mde * mde

    def total(log_k: float) -> float:
        return sequential_total(mde, var_c, var_t, share, alpha, power, scale * math.exp(log_k))

    res = optimize.minimize_scalar(total, bounds=(math.log(1e-3), math.log(1e3)), method="bounded")
    return scale * math.exp(res.x)


def _plan(
    outcome: str,
    baseline: float,
    mde: float,
    effect: float,
    var_c: float,
    var_t: float,
    alpha: float,
    power: float,
    share: float,
) -> Plan:
    ratio = share / (1 - share)
    n1 = solve_n1(effect, ratio, alpha, power)
    fixed_c = math.ceil(n1 - 1e-9)
    fixed_t = math.ceil(n1 * ratio - 1e-9)
    tau2 = best_tau2(mde, var_c, var_t, share, alpha, power)
    seq = sequential_total(mde, var_c, var_t, share, alpha, power, tau2)
    seq_c = math.ceil(seq * (1 - share))
    seq_t = math.ceil(seq * share)
    return Plan(
        outcome=outcome,
        baseline=baseline,
        mde=mde,
        alpha=alpha,
        power=power,
        treatment_share=share,
        effect_size=effect,
        fixed_n_control=fixed_c,
        fixed_n_treatment=fixed_t,
        fixed_n_total=fixed_c + fixed_t,
        sequential_n_total=seq_c + seq_t,
        sequential_n_control=seq_c,
        sequential_n_treatment=seq_t,
        tau=math.sqrt(tau2),
    )


def plan_binary(
    baseline_rate: float, mde: float, *, alpha: float = 0.05, power: float = 0.8, share: float = 0.5
) -> Plan:
    """Sizes to detect a change of ``mde`` (absolute, e.g. 0.02) from ``baseline_rate``."""
    _check(alpha, power, share, mde)
    p0, p1 = baseline_rate, baseline_rate + mde
    if not 0 < p0 < 1 or not 0 < p1 < 1:
        raise PlanError(
            f"--baseline-rate {p0} with --mde {mde} gives a rate outside (0, 1)",
            hint="the baseline rate and baseline + mde must both be proportions",
        )
    h = 2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p0))
    return _plan("binary", p0, mde, h, p0 * (1 - p0), p1 * (1 - p1), alpha, power, share)


def plan_continuous(
    sd: float,
    mde: float,
    *,
    baseline_mean: float = 0.0,
    alpha: float = 0.05,
    power: float = 0.8,
    share: float = 0.5,
) -> Plan:
    """Sizes to detect a change of ``mde`` in a mean with standard deviation ``sd``."""
    _check(alpha, power, share, mde)
    if sd <= 0:
        raise PlanError(f"--sd must be positive, got {sd}")
    return _plan("continuous", baseline_mean, mde, mde / sd, sd * sd, sd * sd, alpha, power, share)
