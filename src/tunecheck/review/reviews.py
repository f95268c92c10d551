"""Blind reviews in the store: create, authenticate reviewers, record labels, summarise.

A review samples N examples of one run's task (stratified by slice when the examples
have slices; examples whose two outputs are identical or missing are left out: there
is nothing to judge). Each item gets a random hidden side: ``candidate_is_a``. A
reviewer sees "A" and "B"; the label is stored both as shown (``choice``) and undone
(``winner``: candidate / baseline / tie), the moment it is given.

Only the SHA-256 of each reviewer's secret token is stored: a token is shown once,
when it is issued; :func:`reissue_tokens` gives fresh ones for the same reviewers
(their labels are kept).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import random
import secrets
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tunecheck.errors import TunecheckError
from tunecheck.review.stats import Agreement, WinRate, combine, reviewer_agreement, win_rate
from tunecheck.store import Store
from tunecheck.store.schema import (
    ReviewerRow,
    ReviewItemRow,
    ReviewLabelRow,
    ReviewRow,
    utcnow,
)

CHOICES = ("A", "B", "tie", "skip")
DEFAULT_N = 60


class ReviewError(TunecheckError):
    """A review cannot be created, found or labelled as asked."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _session(store: Store) -> Session:
    return Session(store.engine, expire_on_commit=False)


@dataclass
class IssuedReviewer:
    """A reviewer and the secret token just issued to them (shown once)."""

    review_id: str
    name: str
    token: str


@dataclass
class CreatedReview:
    review_id: str
    run_id: str
    task: str
    candidate: str
    baseline: str
    n_items: int
    eligible: int
    left_out: int
    reviewers: list[IssuedReviewer]


def stratified_sample(
    ids: list[str], strata: dict[str, str | None], n: int, rng: random.Random
) -> list[str]:
    """``n`` ids drawn without replacement, each stratum getting its proportional share.

    Shares are rounded by largest remainder, so the sizes add up to ``n`` exactly and
    every stratum with at least 1/n of the examples is represented.
    """
    if n >= len(ids):
        return list(ids)
    groups: dict[str | None, list[str]] = defaultdict(list)
    for i in ids:
        groups[strata.get(i)].append(i)
    keys = sorted(groups, key=lambda k: (k is None, str(k)))
    exact = {k: n * len(groups[k]) / len(ids) for k in keys}
    sizes = {k: math.floor(v) for k, v in exact.items()}
    for k in sorted(keys, key=lambda k: exact[k] - sizes[k], reverse=True)[
        : n - sum(sizes.values())
    ]:
        sizes[k] += 1
    picked: list[str] = []
    for k in keys:
        picked += rng.sample(groups[k], sizes[k])
    return picked


def create_review(
    store: Store,
    run_id: str,
    *,
    n: int = DEFAULT_N,
    reviewers: int = 1,
    task: str | None = None,
    baseline: str | None = None,
    show_reference: bool = False,
    seed: int | None = None,
) -> CreatedReview:
    """Create a blind review of ``n`` examples of a run: candidate vs the strongest baseline."""
    from tunecheck.viewer.data import load_run

    if n < 1:
        raise ReviewError("a review needs at least one item", hint="pass --n 60")
    if reviewers < 1:
        raise ReviewError("a review needs at least one reviewer", hint="pass --reviewers 1")
    data = load_run(store, run_id)
    view = data.task(task)
    t = view.task
    baseline = baseline or t.strongest_baseline
    if baseline not in t.baselines:
        raise ReviewError(
            f"{baseline!r} is not a baseline of task {t.name!r}", hint=f"use one of {t.baselines}"
        )
    if not t.examples:
        raise ReviewError(
            f"run {data.id} kept no per-example outputs for task {t.name!r}",
            hint="re-run with per-example outputs kept (the default)",
        )
    eligible = [
        ex
        for ex in t.examples
        if ex.outputs.get(t.candidate) is not None
        and ex.outputs.get(baseline) is not None
        and ex.outputs.get(t.candidate) != ex.outputs.get(baseline)
    ]
    if not eligible:
        raise ReviewError(
            f"no example of task {t.name!r} has two different outputs to compare",
            hint="the candidate and the baseline answered identically everywhere",
        )
    seed = secrets.randbelow(2**31) if seed is None else seed
    rng = random.Random(seed)
    strata = {ex.id: (ex.slices[0] if ex.slices else None) for ex in eligible}
    picked = stratified_sample([ex.id for ex in eligible], strata, n, rng)
    rng.shuffle(picked)
    review_id = uuid.uuid4().hex[:12]
    issued = [
        IssuedReviewer(review_id, f"reviewer-{k + 1}", secrets.token_urlsafe(24))
        for k in range(reviewers)
    ]
    with _session(store) as s, s.begin():
        s.add(
            ReviewRow(
                id=review_id, run_id=data.id, task=t.name, candidate=t.candidate,
                baseline=baseline, show_reference=show_reference, seed=seed,
                note=f"{len(picked)} of {len(eligible)} examples with two different outputs",
            )
        )  # fmt: skip
        s.flush()
        s.add_all(
            ReviewItemRow(
                review_id=review_id, position=pos, example_id=ex_id, slice=strata[ex_id],
                candidate_is_a=rng.random() < 0.5,
            )
            for pos, ex_id in enumerate(picked)
        )  # fmt: skip
        s.add_all(
            ReviewerRow(review_id=review_id, name=r.name, token_sha256=token_hash(r.token))
            for r in issued
        )
    return CreatedReview(
        review_id=review_id, run_id=data.id, task=t.name, candidate=t.candidate,
        baseline=baseline, n_items=len(picked), eligible=len(eligible),
        left_out=len(t.examples) - len(eligible), reviewers=issued,
    )  # fmt: skip


def reviews_of(store: Store, run_id: str) -> list[dict[str, Any]]:
    """The run's reviews, newest first (run id prefixes accepted)."""
    full = store.resolve_run_id(run_id)
    with _session(store) as s:
        rows = s.scalars(
            select(ReviewRow).where(ReviewRow.run_id == full).order_by(ReviewRow.created_at.desc())
        )
        return [
            {
                "id": r.id, "run_id": r.run_id, "task": r.task, "candidate": r.candidate,
                "baseline": r.baseline, "created_at": r.created_at, "note": r.note,
            }
            for r in rows
        ]  # fmt: skip


def reissue_tokens(store: Store, review_id: str) -> list[IssuedReviewer]:
    """New secret tokens for every reviewer of a review (the old ones stop working)."""
    with _session(store) as s, s.begin():
        rows = list(
            s.scalars(
                select(ReviewerRow)
                .where(ReviewerRow.review_id == review_id)
                .order_by(ReviewerRow.id)
            )
        )
        if not rows:
            raise ReviewError(f"no review {review_id!r}")
        out = []
        for r in rows:
            token = secrets.token_urlsafe(24)
            r.token_sha256 = token_hash(token)
            out.append(IssuedReviewer(review_id, r.name, token))
        return out


@dataclass
class Reviewer:
    id: int
    review_id: str
    name: str


def authenticate(store: Store, token: str | None) -> Reviewer | None:
    """The reviewer holding ``token``, or ``None``; the comparison is constant-time."""
    if not token:
        return None
    digest = token_hash(token)
    with _session(store) as s:
        row = s.scalars(select(ReviewerRow).where(ReviewerRow.token_sha256 == digest)).first()
        # the lookup is by hash (no timing leak about the token); compare again in constant time
        if row is None or not hmac.compare_digest(row.token_sha256, digest):
            return None
        return Reviewer(row.id, row.review_id, row.name)


@dataclass
class ItemView:
    """What a reviewer sees for one item: never the contender names."""

    position: int
    input: str
    reference: str | None
    a: str
    b: str
    choice: str | None
    comment: str


def reviewer_items(store: Store, reviewer: Reviewer) -> tuple[ReviewRow, list[ItemView]]:
    """Every item of the reviewer's review, sides applied, with their labels so far."""
    from tunecheck.viewer.data import load_run, render_input

    with _session(store) as s:
        review = s.get(ReviewRow, reviewer.review_id)
        if review is None:
            raise ReviewError(f"no review {reviewer.review_id!r}")
        items = list(
            s.scalars(
                select(ReviewItemRow)
                .where(ReviewItemRow.review_id == review.id)
                .order_by(ReviewItemRow.position)
            )
        )
        labels = {
            lab.item_id: lab
            for lab in s.scalars(
                select(ReviewLabelRow).where(ReviewLabelRow.reviewer_id == reviewer.id)
            )
        }
    view = load_run(store, review.run_id).task(review.task)
    by_id = {ex.id: ex for ex in view.examples}
    out = []
    for it in items:
        ex = by_id[it.example_id]
        cand = ex.outputs.get(review.candidate) or ""
        base = ex.outputs.get(review.baseline) or ""
        lab = labels.get(it.id)
        out.append(
            ItemView(
                position=it.position,
                input=view.inputs.get(ex.id, ""),
                reference=render_input(ex.reference) if review.show_reference else None,
                a=cand if it.candidate_is_a else base,
                b=base if it.candidate_is_a else cand,
                choice=lab.choice if lab else None,
                comment=lab.comment if lab else "",
            )
        )
    return review, out


def record_label(
    store: Store, reviewer: Reviewer, position: int, choice: str, comment: str = ""
) -> str | None:
    """Store one judgement (replacing an earlier one); returns the undone winner."""
    if choice not in CHOICES:
        raise ReviewError(f"unknown choice {choice!r}", hint=f"use one of {CHOICES}")
    comment = (comment or "")[:2000]
    try:
        winner = _write_label(store, reviewer, position, choice, comment)
    except IntegrityError:
        # the same item judged twice at once (two tabs): the other write won; write ours again
        winner = _write_label(store, reviewer, position, choice, comment)
    apply_completed_review(store, reviewer.review_id)
    return winner


def apply_completed_review(store: Store, review_id: str, alpha: float = 0.05) -> bool:
    """Once every reviewer has judged every item, the run's verdict records the blind check.

    The check passes unless the people significantly prefer the baseline (two-sided sign
    test at ``alpha``): a DEPLOY-pending-review then becomes DEPLOY, a failed check turns the
    DEPLOY into ITERATE (:func:`tunecheck.blind_check.record_blind_check`). Returns whether
    the review was complete. A run without a stored result (still running) is left alone.
    """
    from tunecheck.blind_check import record_blind_check

    summary = summarize(store, review_id, confidence=1 - alpha)
    if not summary.completed:
        return False
    if not store.get_run(summary.run_id).result:
        return True
    w = summary.win
    against = (
        w.p_value is not None and w.p_value < alpha and w.win_rate is not None and w.win_rate < 0.5
    )
    record_blind_check(
        store,
        summary.run_id,
        examples=summary.n_items,
        passed=not against,
        method=f"blind review by {len(summary.reviewers)} reviewer(s)",
        note=f"candidate won {w.wins}, lost {w.losses}, tied {w.ties}"
        + (f" (p = {w.p_value:.3g})" if w.p_value is not None else ""),
    )
    return True


def _write_label(
    store: Store, reviewer: Reviewer, position: int, choice: str, comment: str
) -> str | None:
    with _session(store) as s, s.begin():
        item = s.scalars(
            select(ReviewItemRow).where(
                ReviewItemRow.review_id == reviewer.review_id, ReviewItemRow.position == position
            )
        ).first()
        if item is None:
            raise ReviewError(f"review {reviewer.review_id} has no item {position}")
        winner: str | None
        if choice in ("A", "B"):
            winner = "candidate" if (choice == "A") == item.candidate_is_a else "baseline"
        else:
            winner = "tie" if choice == "tie" else None
        s.execute(
            delete(ReviewLabelRow).where(
                ReviewLabelRow.reviewer_id == reviewer.id, ReviewLabelRow.item_id == item.id
            )
        )
        s.add(
            ReviewLabelRow(
                reviewer_id=reviewer.id, item_id=item.id, choice=choice, winner=winner,
                comment=comment, created_at=utcnow(),
            )
        )  # fmt: skip
    return winner


class ReviewerProgress(BaseModel):
    name: str
    labelled: int
    skipped: int


class ReviewSummary(BaseModel):
    """Where a review stands and what the humans said (the numbers the report shows)."""

    review_id: str
    run_id: str
    task: str
    candidate: str
    baseline: str
    created_at: datetime
    n_items: int
    reviewers: list[ReviewerProgress]
    completed: bool = Field(description="every reviewer gave every item a label (skips count)")
    win: WinRate = Field(description="over items; reviewers combined by majority")
    agreement: Agreement | None = None
    per_example: dict[str, str | None] = Field(
        default_factory=dict, description="example id -> combined winner (None: unjudged)"
    )


def summarize(store: Store, review_id: str, confidence: float = 0.95) -> ReviewSummary:
    """Progress, the human win rate with its interval and the reviewers' agreement."""
    with _session(store) as s:
        review = s.get(ReviewRow, review_id)
        if review is None:
            raise ReviewError(f"no review {review_id!r}")
        items = {
            it.id: it
            for it in s.scalars(select(ReviewItemRow).where(ReviewItemRow.review_id == review_id))
        }
        people = list(
            s.scalars(
                select(ReviewerRow)
                .where(ReviewerRow.review_id == review_id)
                .order_by(ReviewerRow.id)
            )
        )
        rows = list(
            s.scalars(
                select(ReviewLabelRow).where(ReviewLabelRow.reviewer_id.in_([p.id for p in people]))
            )
        )
    names = {p.id: p.name for p in people}
    by_reviewer: dict[str, dict[str, str]] = {p.name: {} for p in people}
    skipped: dict[str, int] = defaultdict(int)
    per_example_votes: dict[str, list[str]] = defaultdict(list)
    for lab in rows:
        ex_id = items[lab.item_id].example_id
        who = names[lab.reviewer_id]
        if lab.winner is None:
            skipped[who] += 1
            by_reviewer[who][ex_id] = "skip"
            continue
        by_reviewer[who][ex_id] = lab.winner
        per_example_votes[ex_id].append(lab.winner)
    per_example = {
        it.example_id: combine(per_example_votes.get(it.example_id, [])) for it in items.values()
    }
    progress = [
        ReviewerProgress(name=p.name, labelled=len(by_reviewer[p.name]), skipped=skipped[p.name])
        for p in people
    ]
    return ReviewSummary(
        review_id=review.id, run_id=review.run_id, task=review.task, candidate=review.candidate,
        baseline=review.baseline, created_at=review.created_at, n_items=len(items),
        reviewers=progress,
        completed=bool(people) and all(p.labelled >= len(items) for p in progress),
        win=win_rate(list(per_example.values()), confidence),
        agreement=reviewer_agreement(by_reviewer),
        per_example=per_example,
    )  # fmt: skip


class BlindCheckStatus(BaseModel):
    """The blind human check of a run, as the verdict needs it before a DEPLOY.

    ``state``: ``none`` (no review yet), ``in_progress`` or ``completed`` (every reviewer
    labelled every item of the most recent review). ``favours_candidate``: completed,
    and the sign test says the humans prefer the candidate (win rate above 1/2 with
    p below ``alpha``); ``against_candidate``: the same, preferring the baseline.
    """

    run_id: str
    state: str
    review_id: str | None = None
    completed: bool = False
    n_items: int = 0
    n_judged: int = 0
    wins: int = 0
    losses: int = 0
    ties: int = 0
    win_rate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    kappa: float | None = None
    favours_candidate: bool = False
    against_candidate: bool = False


def blind_check_status(store: Store, run_id: str, alpha: float = 0.05) -> BlindCheckStatus:
    """Where the blind human check of ``run_id`` stands (its most recent review)."""
    reviews = reviews_of(store, run_id)
    full = store.resolve_run_id(run_id)
    if not reviews:
        return BlindCheckStatus(run_id=full, state="none")
    summary = summarize(store, reviews[0]["id"], confidence=1 - alpha)
    w = summary.win
    significant = w.p_value is not None and w.p_value < alpha
    return BlindCheckStatus(
        run_id=full, state="completed" if summary.completed else "in_progress",
        review_id=summary.review_id, completed=summary.completed, n_items=summary.n_items,
        n_judged=w.n_items, wins=w.wins, losses=w.losses, ties=w.ties, win_rate=w.win_rate,
        ci_low=w.ci_low, ci_high=w.ci_high, p_value=w.p_value,
        kappa=summary.agreement.kappa if summary.agreement else None,
        favours_candidate=summary.completed and significant and w.win_rate is not None and w.win_rate > 0.5,
        against_candidate=summary.completed and significant and w.win_rate is not None and w.win_rate < 0.5,
    )  # fmt: skip


def export_labels(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Every label of every review of a run, undone (who won) and as shown (A/B)."""
    full = store.resolve_run_id(run_id)
    with _session(store) as s:
        q = (
            select(ReviewRow, ReviewItemRow, ReviewerRow, ReviewLabelRow)
            .join(ReviewItemRow, ReviewItemRow.review_id == ReviewRow.id)
            .join(ReviewLabelRow, ReviewLabelRow.item_id == ReviewItemRow.id)
            .join(ReviewerRow, ReviewerRow.id == ReviewLabelRow.reviewer_id)
            .where(ReviewRow.run_id == full)
            .order_by(ReviewRow.created_at, ReviewItemRow.position, ReviewerRow.name)
        )
        return [
            {
                "review_id": r.id, "run_id": r.run_id, "task": r.task,
                "example_id": it.example_id, "slice": it.slice, "position": it.position,
                "reviewer": who.name, "candidate": r.candidate, "baseline": r.baseline,
                "candidate_side": "A" if it.candidate_is_a else "B", "choice": lab.choice,
                "winner": lab.winner or "skip", "comment": lab.comment,
                "labelled_at": lab.created_at.isoformat(timespec="seconds"),
            }
            for r, it, who, lab in s.execute(q)
        ]  # fmt: skip


def count_labels(store: Store, review_id: str) -> int:
    with _session(store) as s:
        return int(
            s.scalar(
                select(func.count(ReviewLabelRow.id))
                .join(ReviewerRow, ReviewerRow.id == ReviewLabelRow.reviewer_id)
                .where(ReviewerRow.review_id == review_id)
            )
            or 0
        )
