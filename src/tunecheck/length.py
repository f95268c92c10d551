"""The length confound: longer outputs can inflate recall-based metrics and judges.

Every report shows each contender's mean output length, and every metric gain gets
a length-adjusted comparison: the paired regression

    d_i = a + b * (len_cand_i - len_base_i) + e_i

of the per-example score difference ``d_i`` on the per-example length difference
(in words), by ordinary least squares with heteroskedasticity-robust (HC3) standard
errors and normal p-values, exactly as ``statsmodels``' ``OLS(...).fit(cov_type="HC3")``
(a test checks it). ``a`` is the gain expected between two outputs of *equal*
length. When the raw gain is significant but ``a`` is not (or points the other
way), the gain is explained by longer outputs, and the verdict does not DEPLOY on it.

Corpus metrics (BLEU, chrF, TER) enter with their per-example sentence scores.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field
from scipy import stats as sps

from tunecheck.metrics.base import MetricScores, metric_info
from tunecheck.stats import Comparison, pair_scores

_TOKEN = re.compile(r"\w+|[^\w\s]")
FALLBACK_TOKENIZER = r"regex \w+|[^\w\s] (words and punctuation marks)"


def count_words(text: str) -> int:
    """Whitespace-separated words."""
    return len(text.split())


def count_tokens(text: str) -> int:
    """Fallback token count when the backend reports none: words and punctuation marks."""
    return len(_TOKEN.findall(text))


class LengthStats(BaseModel):
    """One contender's output lengths on one task (answered examples only)."""

    contender: str
    n: int
    mean_words: float | None
    mean_tokens: float | None
    tokens_from: str = Field(
        description="'model tokenizer' (completion tokens reported by the backend) or the "
        "fallback tokenizer"
    )


def length_stats(
    contender: str, outputs: Sequence[str | None], completion_tokens: Sequence[int | None] | None
) -> LengthStats:
    """Mean words and tokens of the answered outputs; model tokens when every one is known."""
    answered = [i for i, o in enumerate(outputs) if o is not None]
    words = [count_words(str(outputs[i])) for i in answered]
    model_tokens = [completion_tokens[i] for i in answered] if completion_tokens else []
    if answered and model_tokens and all(t is not None for t in model_tokens):
        tokens = [float(t) for t in model_tokens if t is not None]
        source = "model tokenizer"
    else:
        tokens = [float(count_tokens(str(outputs[i]))) for i in answered]
        source = FALLBACK_TOKENIZER
    return LengthStats(
        contender=contender,
        n=len(answered),
        mean_words=float(np.mean(words)) if words else None,
        mean_tokens=float(np.mean(tokens)) if tokens else None,
        tokens_from=source,
    )


class OLSResult(BaseModel):
    """Intercept and slope of ``y = a + b x`` with HC3 standard errors (normal inference)."""

    n: int
    intercept: float
    slope: float
    intercept_se: float
    slope_se: float
    intercept_p: float
    slope_p: float


def ols_hc3(y: np.ndarray, x: np.ndarray) -> OLSResult | None:
    """OLS of ``y`` on ``[1, x]`` with HC3 robust covariance; ``None`` when ``x`` is constant.

    Matches ``statsmodels.api.OLS(y, add_constant(x)).fit(cov_type="HC3")``: params,
    bse and (normal) pvalues.
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    n = len(y)
    if n < 3 or np.ptp(x) == 0:
        return None
    design = np.column_stack([np.ones(n), x])
    xtx_inv = np.linalg.inv(design.T @ design)
    beta = xtx_inv @ design.T @ y
    resid = y - design @ beta
    leverage = np.einsum("ij,jk,ik->i", design, xtx_inv, design)
    if np.any(leverage >= 1 - 1e-12):
        return None  # HC3 is undefined with a point of leverage 1
    omega = (resid / (1 - leverage)) ** 2
    cov = xtx_inv @ (design.T * omega) @ design @ xtx_inv
    se = np.sqrt(np.maximum(np.diag(cov), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, beta / np.where(se > 0, se, 1), np.where(beta == 0, 0.0, np.inf))
    p = 2 * sps.norm.sf(np.abs(z))
    return OLSResult(
        n=n, intercept=float(beta[0]), slope=float(beta[1]), intercept_se=float(se[0]),
        slope_se=float(se[1]), intercept_p=float(p[0]), slope_p=float(p[1]),
    )  # fmt: skip


class LengthAdjusted(BaseModel):
    """A metric's gain over one baseline, adjusted for the difference in output length."""

    metric: str
    baseline: str
    n: int
    higher_is_better: bool = True
    mean_length_diff_words: float | None = Field(description="candidate minus baseline, words")
    raw_delta: float | None
    raw_significant: bool
    adjusted_delta: float | None = Field(
        description="regression intercept: the expected delta at equal output length"
    )
    adjusted_ci_low: float | None = None
    adjusted_ci_high: float | None = None
    adjusted_p: float | None = None
    per_word: float | None = Field(None, description="slope: score delta per extra word")
    per_word_p: float | None = None
    explained_by_length: bool = Field(
        description="the raw gain is significant but the length-adjusted one is not "
        "(length-sensitive metrics only; see MetricInfo.length_sensitive)"
    )
    note: str = ""


def length_adjusted(
    comparison: Comparison,
    candidate: MetricScores,
    baseline: MetricScores,
    cand_words: dict[str, int],
    base_words: dict[str, int],
    *,
    alpha: float = 0.05,
) -> LengthAdjusted:
    """The paired length regression for one comparison (see the module docstring)."""
    cand, base = pair_scores(candidate, baseline)
    ids = cand.example_ids
    diff = cand.per_example - base.per_example
    dlen = np.array([cand_words[i] - base_words[i] for i in ids], dtype=float)
    gain, _, _ = comparison.improvement()
    raw_better = bool(comparison.significant and gain is not None and gain > 0)
    common = {
        "metric": comparison.metric,
        "baseline": comparison.baseline,
        "n": len(ids),
        "higher_is_better": comparison.higher_is_better,
        "mean_length_diff_words": float(dlen.mean()) if len(ids) else None,
        "raw_delta": comparison.delta,
        "raw_significant": comparison.significant,
    }
    fit = ols_hc3(diff, dlen) if len(ids) else None
    if fit is None:
        if len(ids) < 3:
            note = "too few examples for a length adjustment"
        elif not dlen.any():
            note = "equal output lengths on every example: no adjustment needed"
        else:
            note = (
                "the same length difference on every example: length and gain cannot be separated"
            )
        return LengthAdjusted(**common, adjusted_delta=None, explained_by_length=False, note=note)
    z = float(sps.norm.ppf(1 - alpha / 2))
    lo, hi = fit.intercept - z * fit.intercept_se, fit.intercept + z * fit.intercept_se
    adjusted_gain = fit.intercept if comparison.higher_is_better else -fit.intercept
    adjusted_real = fit.intercept_p < alpha and adjusted_gain > 0
    sensitive = metric_info(comparison.metric).length_sensitive
    explained = raw_better and not adjusted_real and sensitive
    if raw_better and not adjusted_real and not sensitive:
        note = (
            "not significant at equal length, but this metric scores a parsed answer, where a "
            "length difference follows from the answer rather than inflating it: reported only"
        )
    elif explained:
        p_text = "p<0.001" if fit.intercept_p < 0.001 else f"p={fit.intercept_p:.3f}"
        worse = fit.intercept_p < alpha and adjusted_gain < 0
        note = (
            f"the gain is explained by longer outputs: at equal length the expected delta is "
            f"{fit.intercept:+.4f} ({p_text}{', worse' if worse else ''}); the candidate writes "
            f"{dlen.mean():+.1f} words more on average"
        )
    elif raw_better:
        note = "the gain holds at equal output length"
    else:
        note = ""
    return LengthAdjusted(
        **common,
        adjusted_delta=fit.intercept,
        adjusted_ci_low=lo,
        adjusted_ci_high=hi,
        adjusted_p=fit.intercept_p,
        per_word=fit.slope,
        per_word_p=fit.slope_p,
        explained_by_length=explained,
        note=note,
    )


def words_by_id(ids: Sequence[str], outputs: Sequence[str | None]) -> dict[str, int]:
    """Word count per example id (answered examples only)."""
    return {i: count_words(o) for i, o in zip(ids, outputs, strict=True) if o is not None}
