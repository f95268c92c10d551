"""Statistics of a blind review: human win rate (paired sign test), reviewer and judge agreement.

Each reviewed item is one paired comparison of the candidate and the baseline on the
same example, so the win rate is tested with the sign test: among the items with a
preference, the number won by the candidate is Binomial(n, 1/2) under "no
difference" (ties are reported, not counted). The interval is Clopper-Pearson's
exact interval of that proportion. Several reviewers are first combined per item
(the majority; an even split is a tie) so that items, not labels, are the unit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
from pydantic import BaseModel, Field
from scipy.stats import binomtest

WINNERS = ("candidate", "baseline", "tie")


class WinRate(BaseModel):
    """The candidate's win rate among the items where a preference was given."""

    n_items: int = Field(description="items with at least one non-skip judgement")
    wins: int
    losses: int
    ties: int
    win_rate: float | None = Field(description="wins / (wins + losses)")
    ci_low: float | None = Field(description="Clopper-Pearson interval of the win rate")
    ci_high: float | None
    p_value: float | None = Field(description="two-sided exact sign test (binomial, p=1/2)")
    confidence: float = 0.95


def combine(winners: Sequence[str]) -> str | None:
    """One item's verdict from its reviewers' judgements: the majority, an even split a tie."""
    votes = [w for w in winners if w in WINNERS]
    if not votes:
        return None
    score = sum(1 if w == "candidate" else -1 if w == "baseline" else 0 for w in votes)
    return "candidate" if score > 0 else "baseline" if score < 0 else "tie"


def win_rate(per_item: Sequence[str | None], confidence: float = 0.95) -> WinRate:
    """Win rate, exact interval and sign test over items (``None``: unjudged, ignored)."""
    counts = Counter(w for w in per_item if w is not None)
    wins, losses, ties = counts["candidate"], counts["baseline"], counts["tie"]
    decisive = wins + losses
    if decisive == 0:
        return WinRate(
            n_items=wins + losses + ties, wins=wins, losses=losses, ties=ties, win_rate=None,
            ci_low=None, ci_high=None, p_value=None, confidence=confidence,
        )  # fmt: skip
    test = binomtest(wins, decisive, 0.5, alternative="two-sided")
    ci = test.proportion_ci(confidence_level=confidence, method="exact")
    return WinRate(
        n_items=wins + losses + ties, wins=wins, losses=losses, ties=ties,
        win_rate=wins / decisive, ci_low=float(ci.low), ci_high=float(ci.high),
        p_value=float(test.pvalue), confidence=confidence,
    )  # fmt: skip


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters over the same items (``None`` when undefined)."""
    if len(a) != len(b):
        raise ValueError("both raters must label the same items")
    if not a:
        return None
    cats = sorted(set(a) | set(b))
    index = {c: i for i, c in enumerate(cats)}
    table = np.zeros((len(cats), len(cats)))
    for x, y in zip(a, b, strict=True):
        table[index[x], index[y]] += 1
    n = table.sum()
    observed = np.trace(table) / n
    expected = float((table.sum(axis=1) * table.sum(axis=0)).sum()) / n**2
    if expected >= 1.0:
        return None  # both raters used one and the same category: agreement is not measurable
    return float((observed - expected) / (1.0 - expected))


def fleiss_kappa(ratings: Sequence[Sequence[str]]) -> float | None:
    """Fleiss' kappa: ``ratings[i]`` are item i's labels, the same number for every item."""
    if not ratings:
        return None
    m = len(ratings[0])
    if m < 2 or any(len(r) != m for r in ratings):
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of ratings per item")
    cats = sorted({c for r in ratings for c in r})
    counts = np.array([[Counter(r)[c] for c in cats] for r in ratings], dtype=float)
    n_items = len(ratings)
    p_cat = counts.sum(axis=0) / (n_items * m)
    p_item = ((counts**2).sum(axis=1) - m) / (m * (m - 1))
    p_bar, p_e = p_item.mean(), float((p_cat**2).sum())
    if p_e >= 1.0:
        return None
    return float((p_bar - p_e) / (1.0 - p_e))


class Agreement(BaseModel):
    """Agreement between raters on the items every one of them judged (skips excluded)."""

    method: str = Field(description="cohen (two raters) or fleiss (three or more)")
    n_items: int
    raters: int
    percent_agreement: float | None
    kappa: float | None


def reviewer_agreement(labels: Mapping[str, Mapping[str, str]]) -> Agreement | None:
    """Cohen's kappa for two reviewers, Fleiss' for more; ``labels[reviewer][item] = winner``.

    ``None`` with fewer than two reviewers. Only items judged (not skipped) by all count.
    """
    reviewers = sorted(labels)
    if len(reviewers) < 2:
        return None
    common = sorted(
        set.intersection(*({i for i, w in labels[r].items() if w in WINNERS} for r in reviewers))
    )
    rows = [[labels[r][i] for r in reviewers] for i in common]
    agree = float(np.mean([len(set(row)) == 1 for row in rows])) if rows else None
    if len(reviewers) == 2:
        kappa = cohen_kappa([r[0] for r in rows], [r[1] for r in rows])
        method = "cohen"
    else:
        kappa = fleiss_kappa(rows)
        method = "fleiss"
    return Agreement(
        method=method, n_items=len(rows), raters=len(reviewers), percent_agreement=agree,
        kappa=kappa,
    )  # fmt: skip


def judge_human_agreement(human: Mapping[str, str | None], judge: Mapping[str, str]) -> Agreement:
    """How often an LLM judge agrees with the humans, on the examples both judged.

    ``human``: example id -> combined human winner (``candidate``/``baseline``/``tie``,
    ``None`` unjudged) — :meth:`ReviewSummary.per_example` gives it. ``judge``: example id
    -> the judge's winner in the same vocabulary (wire the pairwise judge's verdicts here).
    Returns Cohen's kappa between the two and the share of identical verdicts.
    """
    bad = {v for v in judge.values() if v not in WINNERS}
    if bad:
        raise ValueError(f"judge verdicts must be one of {WINNERS}, got {sorted(bad)}")
    ids = sorted(i for i, w in human.items() if w in WINNERS and i in judge)
    h = [str(human[i]) for i in ids]
    j = [judge[i] for i in ids]
    agree = float(np.mean([x == y for x, y in zip(h, j, strict=True)])) if ids else None
    return Agreement(
        method="cohen", n_items=len(ids), raters=2, percent_agreement=agree,
        kappa=cohen_kappa(h, j),
    )  # fmt: skip
