"""Review statistics against the reference libraries (scipy, scikit-learn, statsmodels)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss
from statsmodels.stats.proportion import proportion_confint

from tunecheck.review.reviews import stratified_sample
from tunecheck.review.stats import (
    cohen_kappa,
    combine,
    fleiss_kappa,
    judge_human_agreement,
    reviewer_agreement,
    win_rate,
)


@pytest.mark.parametrize(
    ("wins", "losses", "ties"), [(14, 6, 3), (30, 30, 0), (1, 0, 5), (0, 9, 1)]
)
def test_win_rate_is_the_sign_test_with_an_exact_interval(
    wins: int, losses: int, ties: int
) -> None:
    items = ["candidate"] * wins + ["baseline"] * losses + ["tie"] * ties + [None] * 2
    w = win_rate(items)
    assert (w.wins, w.losses, w.ties, w.n_items) == (wins, losses, ties, wins + losses + ties)
    assert w.win_rate == pytest.approx(wins / (wins + losses))
    # the sign test is a two-sided binomial test at 1/2; Clopper-Pearson = statsmodels "beta"
    assert w.p_value == pytest.approx(binomtest(wins, wins + losses, 0.5).pvalue)
    lo, hi = proportion_confint(wins, wins + losses, alpha=0.05, method="beta")
    assert (w.ci_low, w.ci_high) == (pytest.approx(lo), pytest.approx(hi))


def test_win_rate_without_a_preference_is_undefined() -> None:
    w = win_rate(["tie", "tie", None])
    assert w.win_rate is None and w.p_value is None and w.ties == 2


def test_majority_of_reviewers_per_item() -> None:
    assert combine(["candidate", "candidate", "baseline"]) == "candidate"
    assert combine(["candidate", "baseline"]) == "tie"
    assert combine(["tie", "baseline"]) == "baseline"
    assert combine(["skip"]) is None


def test_cohen_kappa_matches_scikit_learn() -> None:
    rng = np.random.default_rng(4)
    cats = ["candidate", "baseline", "tie"]
    a = list(rng.choice(cats, 80))
    b = [x if rng.random() < 0.7 else str(rng.choice(cats)) for x in a]
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    assert cohen_kappa(["tie"] * 5, ["tie"] * 5) is None  # one shared category: undefined


def test_fleiss_kappa_matches_statsmodels() -> None:
    rng = np.random.default_rng(9)
    cats = ["candidate", "baseline", "tie"]
    truth = rng.choice(cats, 50)
    rows = [[t if rng.random() < 0.6 else str(rng.choice(cats)) for _ in range(3)] for t in truth]
    table, _ = aggregate_raters(np.array([[cats.index(x) for x in r] for r in rows]))
    assert fleiss_kappa(rows) == pytest.approx(sm_fleiss(table, method="fleiss"))


def test_reviewer_agreement_uses_items_every_reviewer_judged() -> None:
    labels = {
        "r1": {"e1": "candidate", "e2": "baseline", "e3": "tie", "e4": "candidate"},
        "r2": {"e1": "candidate", "e2": "candidate", "e3": "tie", "e4": "skip"},
    }
    agree = reviewer_agreement(labels)
    assert agree.method == "cohen" and agree.n_items == 3
    a = ["candidate", "baseline", "tie"]
    b = ["candidate", "candidate", "tie"]
    assert agree.kappa == pytest.approx(cohen_kappa_score(a, b))
    assert agree.percent_agreement == pytest.approx(2 / 3)
    labels["r3"] = {"e1": "candidate", "e2": "baseline", "e3": "baseline"}
    assert reviewer_agreement(labels).method == "fleiss"
    assert reviewer_agreement({"r1": labels["r1"]}) is None


def test_judge_human_agreement() -> None:
    human = {"e1": "candidate", "e2": "baseline", "e3": "tie", "e4": None, "e5": "candidate"}
    judge = {"e1": "candidate", "e2": "candidate", "e3": "tie", "e4": "baseline"}
    agree = judge_human_agreement(human, judge)
    assert agree.n_items == 3 and agree.percent_agreement == pytest.approx(2 / 3)
    assert agree.kappa == pytest.approx(
        cohen_kappa_score(["candidate", "baseline", "tie"], ["candidate", "candidate", "tie"])
    )
    with pytest.raises(ValueError, match="judge verdicts"):
        judge_human_agreement(human, {"e1": "A"})


def test_stratified_sample_gives_each_slice_its_share() -> None:
    ids = [f"e{i}" for i in range(300)]
    strata = {i: ("rare" if k < 30 else "common" if k < 240 else None) for k, i in enumerate(ids)}
    picked = stratified_sample(ids, strata, 60, random.Random(1))
    assert len(picked) == len(set(picked)) == 60
    counts = {s: sum(strata[i] == s for i in picked) for s in ("rare", "common", None)}
    assert counts == {"rare": 6, "common": 42, None: 12}
    assert sorted(stratified_sample(ids[:10], strata, 60, random.Random(1))) == sorted(ids[:10])
