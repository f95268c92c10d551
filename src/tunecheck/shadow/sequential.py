"""The always-valid sequential test of ``tunecheck ab``: the mixture SPRT (mSPRT).

Why mSPRT and not a group-sequential design with alpha spending: people look at an
A/B dashboard whenever they like, as often as they like, and stop when they like.
A group-sequential design is valid only for the looks it planned (their number, and
with Lan-DeMets spending at least the maximum information); the mSPRT of Johari,
Koomen, Pekelis and Walsh ("Always Valid Inference", Operations Research 2022;
"Peeking at A/B Tests", KDD 2017) is valid under *any* peeking and stopping rule,
has a closed form, and needs no schedule. Its price is power: at a fixed sample
size it detects less than a single fixed-horizon test, so :mod:`tunecheck.shadow.plan`
sizes the test for the sequential rule itself.

The statistic, for the difference in means ``theta`` with estimate ``theta_hat`` of
variance ``V`` (``s_a^2/n_a + s_b^2/n_b``, plug-in) and a normal mixing
distribution ``N(0, tau^2)`` over the alternative::

    Lambda_n = sqrt(V / (V + tau^2)) * exp(tau^2 theta_hat^2 / (2 V (V + tau^2)))

``Lambda_n`` is a non-negative martingale under the null, so by Ville's inequality
``P(sup_n Lambda_n >= 1/alpha) <= alpha``: the always-valid p-value
``p_n = min(1, min_{k<=n} 1/Lambda_k)`` may be read at every look. Inverting the test
gives an always-valid confidence sequence ``theta_hat +/- half_width``.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def mixture_lr(theta_hat, variance, tau2: float, theta0: float = 0.0):
    """``Lambda`` for each (estimate, variance) pair (numpy broadcasting)."""
    v = np.asarray(variance, dtype=float)
    d = np.asarray(theta_hat, dtype=float) - theta0
    return np.sqrt(v / (v + tau2)) * np.exp(tau2 * d * d / (2.0 * v * (v + tau2)))


def log_mixture_lr(theta_hat, variance, tau2: float, theta0: float = 0.0):
    """``log Lambda`` (no overflow for huge samples)."""
    v = np.asarray(variance, dtype=float)
    d = np.asarray(theta_hat, dtype=float) - theta0
    return 0.5 * np.log(v / (v + tau2)) + tau2 * d * d / (2.0 * v * (v + tau2))


def always_valid_p(theta_hats, variances, tau2: float):
    """Running always-valid p-values along the last axis (one entry per look)."""
    log_lr = log_mixture_lr(theta_hats, variances, tau2)
    p = np.minimum(1.0, np.exp(-np.maximum(log_lr, -700.0)))
    return np.minimum.accumulate(p, axis=-1)


def half_width(variance, tau2: float, alpha: float = 0.05):
    """Half-width of the always-valid (1 - alpha) confidence sequence at variance ``V``."""
    v = np.asarray(variance, dtype=float)
    return np.sqrt(v * (v + tau2) / tau2 * (2.0 * np.log(1.0 / alpha) + np.log((v + tau2) / v)))


def final_look_power(theta: float, variance: float, tau2: float, alpha: float = 0.05) -> float:
    """P(the mSPRT rejects at a look of variance ``V`` | true difference ``theta``).

    A lower bound on the power of the whole sequential test up to that look (it can
    also have rejected earlier), hence a safe basis for planning.
    """
    c = float(half_width(variance, tau2, alpha))
    s = float(np.sqrt(variance))
    return float(stats.norm.sf((c - theta) / s) + stats.norm.cdf((-c - theta) / s))


def default_tau2(sd: float, effect: float = 0.1) -> float:
    """Mixing variance when no MDE is given: effects around ``effect`` standard deviations."""
    return float((effect * sd) ** 2)
