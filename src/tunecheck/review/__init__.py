"""Blind human review: sample a run's examples, show two hidden outputs, store the labels.

:func:`create_review` makes a review; the viewer app serves its keyboard page;
:func:`summarize` gives the human win rate (paired sign test), reviewer agreement
(Cohen's / Fleiss' kappa); :func:`blind_check_status` is what the verdict asks;
:func:`~tunecheck.review.stats.judge_human_agreement` compares an LLM judge with the humans.
"""

from tunecheck.review.reviews import (
    BlindCheckStatus,
    CreatedReview,
    ReviewError,
    ReviewSummary,
    authenticate,
    blind_check_status,
    create_review,
    export_labels,
    record_label,
    reissue_tokens,
    reviewer_items,
    reviews_of,
    summarize,
)
from tunecheck.review.stats import judge_human_agreement, win_rate

__all__ = [
    "BlindCheckStatus",
    "CreatedReview",
    "ReviewError",
    "ReviewSummary",
    "authenticate",
    "blind_check_status",
    "create_review",
    "export_labels",
    "judge_human_agreement",
    "record_label",
    "reissue_tokens",
    "reviewer_items",
    "reviews_of",
    "summarize",
    "win_rate",
]
