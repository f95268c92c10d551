"""Typed results of the judge stage, stored in :class:`tunecheck.results.TaskResult` ``.judge``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from tunecheck.judge.agreement import AgreementResult

Outcome = Literal["win", "loss", "tie", "error"]
Side = Literal["candidate", "baseline", "tie"]


class JudgeCost(BaseModel):
    """What judging cost in this run: requests sent vs answered from the cache, and tokens."""

    calls: int = Field(0, description="requests sent to the judge backend in this run")
    cached: int = Field(0, description="judgements answered from the cache (no call)")
    repairs: int = Field(0, description="repair requests after an unparsable answer")
    tokens_in: int = Field(0, description="prompt tokens of the requests sent")
    tokens_out: int = Field(0, description="completion tokens of the requests sent")
    cached_tokens_in: int = 0
    cached_tokens_out: int = 0


class JudgeErrorRecord(BaseModel):
    """A judgement that could not be obtained: never counted as a win, loss or score."""

    id: str
    mode: Literal["rubric", "pairwise"]
    contender: str
    reason: str
    answer: str = Field("", description="the judge's last answer (truncated)")


class RubricResult(BaseModel):
    """Rubric means per contender and criterion (raw scale: 1-5, or pass share for pass/fail)."""

    criteria: list[str]
    scales: dict[str, str]
    means: dict[str, dict[str, float | None]] = Field(
        description="contender -> criterion -> mean score"
    )
    judged: dict[str, int] = Field(description="contender -> examples judged")
    errors: dict[str, int] = Field(description="contender -> judge errors")


class VerbosityBias(BaseModel):
    """Does the judge prefer longer outputs more often than the task metric says it should?

    Over decisive, order-consistent judgements where the two outputs differ in length
    (words): the share where the judge picked the longer one; and over examples where
    the task metric separates the two outputs: the share where the longer one scored higher.
    """

    n: int = 0
    judge_prefers_longer: float | None = None
    metric: str | None = None
    metric_n: int = 0
    metric_prefers_longer: float | None = None
    note: str = ""


class PairwiseVerdict(BaseModel):
    """One example judged in both orders, in the original labelling."""

    id: str
    first: Side | None = Field(description="verdict with the candidate shown first (as A)")
    second: Side | None = Field(description="verdict with the baseline shown first (as A)")
    outcome: Outcome
    consistent: bool | None = None


class PairwiseResult(BaseModel):
    """The candidate vs one baseline, judged in both orders.

    A verdict that flips with the order is a tie. ``win_rate`` = (wins + ties / 2) / n
    over the examples judged in both orders; its interval is a paired bootstrap; the
    p-value is an exact two-sided sign test on wins vs losses (ties dropped).
    """

    candidate: str
    baseline: str
    n: int
    wins: int
    losses: int
    ties: int
    inconsistent: int = Field(description="examples whose verdict flipped with the order (ties)")
    errors: int
    win_rate: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float = 0.95
    p_value: float | None
    test: str = "sign_test"
    significant: bool = False
    position_consistency: float | None = Field(
        description="share of examples where both orders gave the same verdict"
    )
    first_position_rate: float | None = Field(
        None, description="share of decisive single-order verdicts that chose response A"
    )
    verbosity: VerbosityBias = Field(default_factory=VerbosityBias)
    verdicts: list[PairwiseVerdict] = Field(default_factory=list)
    human_labels: str | None = Field(
        None, description="the labels file attached with `judge.pairwise.human_labels`"
    )
    human_agreement: AgreementResult | None = Field(
        None, description="the judge vs the people's labels of this run's examples"
    )


class JudgeTaskResult(BaseModel):
    """Everything the judge concluded on one task."""

    model: str
    fingerprint: str
    rubric: RubricResult | None = None
    pairwise: list[PairwiseResult] = Field(default_factory=list)
    cost: JudgeCost = Field(default_factory=JudgeCost)
    errors: list[JudgeErrorRecord] = Field(default_factory=list)
    warnings: list[str] = Field(
        default_factory=list, description="reasons to distrust this judge on this task"
    )

    def pairwise_vs(self, baseline: str) -> PairwiseResult | None:
        """The pairwise result against ``baseline`` (None when it was not judged)."""
        return next((p for p in self.pairwise if p.baseline == baseline), None)
