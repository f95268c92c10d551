"""Pairwise judging arithmetic: both orders -> one outcome, the win rate, its interval, a sign test.

Per example the judge sees the candidate first (as A) and, separately, the baseline
first. Both verdicts are mapped back to the original labelling; when they agree that is
the outcome, anything else (a flip, or a tie in one order only) is a tie. Scores: win 1,
tie 0.5, loss 0. The win rate's interval is a paired bootstrap over examples; the
p-value is the exact two-sided sign test (binomial, p = 0.5) on wins vs losses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tunecheck.judge.parsing import Winner
from tunecheck.judge.result import Outcome, PairwiseResult, PairwiseVerdict, Side, VerbosityBias
from tunecheck.stats import Comparison, bootstrap_mean_diff

SCORE = {"win": 1.0, "tie": 0.5, "loss": 0.0}
# the candidate's outcome when both orders name the same side
_OUTCOME: dict[Side, Outcome] = {"candidate": "win", "baseline": "loss", "tie": "tie"}


def side_of(winner: Winner, candidate_first: bool) -> Side:
    """Map a positional verdict (A/B/tie) to candidate/baseline/tie."""
    if winner == "tie":
        return "tie"
    if winner == "A":
        return "candidate" if candidate_first else "baseline"
    return "baseline" if candidate_first else "candidate"


def combine(first: Side | None, second: Side | None) -> tuple[Outcome, bool | None]:
    """(outcome, consistent) from the two orders' verdicts; a missing verdict is an error."""
    if first is None or second is None:
        return "error", None
    if first == second:
        return _OUTCOME[first], True
    return "tie", False


def sign_test(wins: int, losses: int) -> float | None:
    """Exact two-sided sign test on wins vs losses (scipy's binomial test, p = 0.5)."""
    if wins + losses == 0:
        return None
    from scipy.stats import binomtest

    return float(binomtest(wins, wins + losses, 0.5, alternative="two-sided").pvalue)


def words(text: str | None) -> int:
    return len((text or "").split())


def verbosity_bias(
    verdicts: Sequence[PairwiseVerdict],
    cand_out: dict[str, str | None],
    base_out: dict[str, str | None],
    metric: str | None,
    cand_metric: dict[str, float],
    base_metric: dict[str, float],
) -> VerbosityBias:
    """How often the judge picks the longer output, next to how often the metric does."""
    judge_longer = judge_n = 0
    metric_longer = metric_n = 0
    for v in verdicts:
        lc, lb = words(cand_out.get(v.id)), words(base_out.get(v.id))
        if lc == lb:
            continue
        cand_longer = lc > lb
        if v.outcome in ("win", "loss"):
            judge_n += 1
            judge_longer += (v.outcome == "win") == cand_longer
        if metric is not None and v.id in cand_metric and v.id in base_metric:
            sc, sb = cand_metric[v.id], base_metric[v.id]
            if sc != sb and math.isfinite(sc) and math.isfinite(sb):
                metric_n += 1
                metric_longer += (sc > sb) == cand_longer
    jp = judge_longer / judge_n if judge_n else None
    mp = metric_longer / metric_n if metric_n else None
    note = ""
    if jp is not None and mp is not None:
        gap = jp - mp
        if gap > 0.15:
            note = (
                f"the judge prefers the longer output {jp:.0%} of the time but {metric} does only "
                f"{mp:.0%}: possible verbosity bias"
            )
    elif jp is not None and jp > 0.75:
        note = f"the judge prefers the longer output {jp:.0%} of the time (no metric to compare)"
    return VerbosityBias(
        n=judge_n,
        judge_prefers_longer=jp,
        metric=metric,
        metric_n=metric_n,
        metric_prefers_longer=mp,
        note=note,
    )


def summarise(
    candidate: str,
    baseline: str,
    verdicts: list[PairwiseVerdict],
    *,
    first_a: int,
    decisive_single: int,
    verbosity: VerbosityBias,
    alpha: float,
    n_resamples: int,
    seed: int,
) -> tuple[PairwiseResult, np.ndarray, list[str]]:
    """The pairwise result plus the candidate's per-example scores (and their ids)."""
    scored = [v for v in verdicts if v.outcome != "error"]
    ids = [v.id for v in scored]
    s = np.array([SCORE[v.outcome] for v in scored], dtype=float)
    wins = sum(v.outcome == "win" for v in scored)
    losses = sum(v.outcome == "loss" for v in scored)
    ties = len(scored) - wins - losses
    inconsistent = sum(v.consistent is False for v in scored)
    p = sign_test(wins, losses)
    win_rate = ci_low = ci_high = None
    if len(s):
        win_rate = float(s.mean())
        boot = bootstrap_mean_diff(s, 1.0 - s, n_resamples=n_resamples, alpha=alpha, seed=seed)
        # delta = 2w - 1, so the win-rate interval is (delta + 1) / 2
        ci_low, ci_high = (boot.ci_low + 1) / 2, (boot.ci_high + 1) / 2
    result = PairwiseResult(
        candidate=candidate,
        baseline=baseline,
        n=len(scored),
        wins=wins,
        losses=losses,
        ties=ties,
        inconsistent=inconsistent,
        errors=len(verdicts) - len(scored),
        win_rate=win_rate,
        ci_low=ci_low,
        ci_high=ci_high,
        confidence=1 - alpha,
        p_value=p,
        significant=p is not None and p < alpha,
        position_consistency=(len(scored) - inconsistent) / len(scored) if scored else None,
        first_position_rate=first_a / decisive_single if decisive_single else None,
        verbosity=verbosity,
        verdicts=verdicts,
    )
    return result, s, ids


def comparison(
    result: PairwiseResult, s: np.ndarray, *, alpha: float, seed: int, n_resamples: int
) -> Comparison:
    """``judge_win_rate`` as a paired comparison: candidate's win share vs the baseline's.

    ``delta`` = win rate - loss-side rate = 2 x win rate - 1 (the net preference); the
    interval is the paired bootstrap, the p-value the sign test.
    """
    from tunecheck.stats import mde_from_se, n_required_from_se, noise_note

    n = len(s)
    if n == 0:
        return Comparison(
            metric="judge_win_rate", kind="preference", candidate=result.candidate,
            baseline=result.baseline, n=0, candidate_value=None, baseline_value=None,
            delta=None, ci_low=None, ci_high=None, confidence=1 - alpha, p_value=None,
            test="none", significant=False, note="no example was judged in both orders",
        )  # fmt: skip
    d = 2 * s - 1
    se = float(np.std(d, ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    delta = float(d.mean())
    mde = mde_from_se(se, alpha=alpha) if se > 0 else None
    n_req = n_required_from_se(delta, se, n, alpha=alpha) if se > 0 else None
    assert result.ci_low is not None and result.ci_high is not None
    return Comparison(
        metric="judge_win_rate",
        kind="preference",
        candidate=result.candidate,
        baseline=result.baseline,
        n=n,
        candidate_value=result.win_rate,
        baseline_value=1 - result.win_rate if result.win_rate is not None else None,
        delta=delta,
        ci_low=2 * result.ci_low - 1,
        ci_high=2 * result.ci_high - 1,
        confidence=1 - alpha,
        p_value=result.p_value,
        test="sign_test",
        significant=result.significant,
        candidate_only=result.wins,
        baseline_only=result.losses,
        mde=mde,
        n_required=n_req,
        note=noise_note(delta, mde, n, n_req, alpha),
        bootstrap=f"percentile, {n_resamples} resamples, seed {seed}",
    )
