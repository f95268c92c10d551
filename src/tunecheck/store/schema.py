"""Tables of the run store (SQLAlchemy 2 declarative models).

Designed so that every generation is written the moment it is produced: the
generation cache is keyed by model fingerprint + request key and is independent
of any run, so a killed run loses nothing already computed and a re-run reuses it.
Schema changes go through Alembic migrations (``store/migrations``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class RunRow(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(String(16), default="running")
    name: Mapped[str] = mapped_column(String(200), default="")
    spec_path: Mapped[str | None] = mapped_column(Text, default=None)
    spec_hash: Mapped[str] = mapped_column(String(64), default="")
    spec_json: Mapped[dict | None] = mapped_column(JSON, default=None)
    lock_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    tool_version: Mapped[str] = mapped_column(String(32), default="")
    git_commit: Mapped[str | None] = mapped_column(String(64), default=None)
    overrides: Mapped[dict | None] = mapped_column(JSON, default=None)
    verdict: Mapped[str | None] = mapped_column(String(16), default=None)
    result_json: Mapped[dict | None] = mapped_column(JSON, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    # liveness of a running run (migration 0002): the owning process and its last sign of life
    host: Mapped[str | None] = mapped_column(String(255), default=None)
    pid: Mapped[int | None] = mapped_column(Integer, default=None)
    pid_started: Mapped[float | None] = mapped_column(Float, default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)


class ContenderRow(Base):
    __tablename__ = "contenders"
    __table_args__ = (UniqueConstraint("run_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    model_ref: Mapped[str] = mapped_column(Text)
    model_fingerprint: Mapped[str] = mapped_column(String(64), default="")
    prompt_fingerprint: Mapped[str] = mapped_column(String(64), default="")
    role: Mapped[str] = mapped_column(String(16), default="baseline")


class ExampleRow(Base):
    __tablename__ = "examples"
    __table_args__ = (UniqueConstraint("run_id", "task", "example_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    task: Mapped[str] = mapped_column(String(200))
    example_id: Mapped[str] = mapped_column(String(200))
    input: Mapped[object] = mapped_column(JSON)
    reference: Mapped[object | None] = mapped_column(JSON, default=None)
    label: Mapped[str | None] = mapped_column(Text, default=None)
    slices: Mapped[list | None] = mapped_column(JSON, default=None)


class GenerationRow(Base):
    """The generation cache: one row per (model fingerprint, request key)."""

    __tablename__ = "generations"
    __table_args__ = (UniqueConstraint("model_fp", "request_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_fp: Mapped[str] = mapped_column(String(64))
    request_key: Mapped[str] = mapped_column(String(64))
    request: Mapped[dict | None] = mapped_column(JSON, default=None)
    texts: Mapped[list] = mapped_column(JSON, default=list)
    meta: Mapped[dict | None] = mapped_column(JSON, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoglikelihoodRow(Base):
    __tablename__ = "loglikelihoods"
    __table_args__ = (UniqueConstraint("model_fp", "request_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_fp: Mapped[str] = mapped_column(String(64))
    request_key: Mapped[str] = mapped_column(String(64))
    request: Mapped[dict | None] = mapped_column(JSON, default=None)
    logprob: Mapped[float] = mapped_column(Float)
    is_greedy: Mapped[bool] = mapped_column(default=False)
    n_tokens: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutputRow(Base):
    """Which cached generation a run used for a (contender, task, example)."""

    __tablename__ = "outputs"
    __table_args__ = (
        UniqueConstraint("run_id", "contender", "task", "example_id"),
        Index("ix_outputs_run_task", "run_id", "task"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    contender: Mapped[str] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(200))
    example_id: Mapped[str] = mapped_column(String(200))
    model_fp: Mapped[str] = mapped_column(String(64))
    request_key: Mapped[str] = mapped_column(String(64))
    text: Mapped[str | None] = mapped_column(Text, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)


class ScoreRow(Base):
    __tablename__ = "scores"
    __table_args__ = (
        UniqueConstraint("run_id", "contender", "task", "metric", "example_id"),
        Index("ix_scores_run_task", "run_id", "task"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    contender: Mapped[str] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(200))
    metric: Mapped[str] = mapped_column(String(100))
    example_id: Mapped[str] = mapped_column(String(200))
    value: Mapped[float] = mapped_column(Float)


class TrainingPointRow(Base):
    __tablename__ = "training_points"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_name: Mapped[str] = mapped_column(String(200), index=True)
    step: Mapped[int] = mapped_column(Integer)
    checkpoint: Mapped[str | None] = mapped_column(Text, default=None)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# ------------------------------------------------------------ blind human review (migration 0004)


class ReviewRow(Base):
    """A blind review of one run: a sample of examples, candidate vs one baseline."""

    __tablename__ = "reviews"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    task: Mapped[str] = mapped_column(String(200))
    candidate: Mapped[str] = mapped_column(String(200))
    baseline: Mapped[str] = mapped_column(String(200))
    show_reference: Mapped[bool] = mapped_column(default=False)
    seed: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReviewItemRow(Base):
    """One example of a review; ``candidate_is_a`` is the hidden side assignment."""

    __tablename__ = "review_items"
    __table_args__ = (UniqueConstraint("review_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    review_id: Mapped[str] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    example_id: Mapped[str] = mapped_column(String(200))
    slice: Mapped[str | None] = mapped_column(String(200), default=None)
    candidate_is_a: Mapped[bool] = mapped_column()


class ReviewerRow(Base):
    """A reviewer of a review; only the SHA-256 of the secret token is stored."""

    __tablename__ = "reviewers"
    __table_args__ = (UniqueConstraint("review_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    review_id: Mapped[str] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)


class ReviewLabelRow(Base):
    """A reviewer's judgement of one item, written the moment it is given (last one wins)."""

    __tablename__ = "review_labels"
    __table_args__ = (UniqueConstraint("reviewer_id", "item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("reviewers.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("review_items.id", ondelete="CASCADE"))
    choice: Mapped[str] = mapped_column(String(8))  # as shown: A, B, tie, skip
    winner: Mapped[str | None] = mapped_column(String(16), default=None)  # candidate/baseline/tie
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ShadowSessionRow(Base):
    """One run of ``tunecheck shadow`` (the proxy): its mode and settings, never a key."""

    __tablename__ = "shadow_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    mode: Mapped[str] = mapped_column(String(16))
    production_url: Mapped[str] = mapped_column(Text)
    candidate_url: Mapped[str] = mapped_column(Text)
    config: Mapped[dict | None] = mapped_column(JSON, default=None)
    tool_version: Mapped[str] = mapped_column(String(32), default="")


class ShadowRequestRow(Base):
    """One request through the proxy: the production answer and (when mirrored or
    split to it) the candidate's, side by side. ``prod_*`` / ``cand_*`` columns are
    filled as each side finishes; ``mirror`` says what happened to the mirror."""

    __tablename__ = "shadow_requests"
    __table_args__ = (Index("ix_shadow_requests_session", "session_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("shadow_sessions.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    endpoint: Mapped[str] = mapped_column(String(32))
    stream: Mapped[bool] = mapped_column(default=False)
    model: Mapped[str | None] = mapped_column(String(200), default=None)
    variant: Mapped[str] = mapped_column(String(16), default="production")
    unit_id: Mapped[str | None] = mapped_column(String(200), default=None, index=True)
    mirror: Mapped[str] = mapped_column(String(16), default="off")
    request: Mapped[dict | None] = mapped_column(JSON, default=None)
    request_sha256: Mapped[str] = mapped_column(String(64), default="")
    request_chars: Mapped[int] = mapped_column(Integer, default=0)
    prod_status: Mapped[int | None] = mapped_column(Integer, default=None)
    prod_latency_ms: Mapped[float | None] = mapped_column(Float, default=None)
    prod_ttfb_ms: Mapped[float | None] = mapped_column(Float, default=None)
    prod_prompt_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    prod_completion_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    prod_text: Mapped[str | None] = mapped_column(Text, default=None)
    prod_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    prod_chars: Mapped[int | None] = mapped_column(Integer, default=None)
    prod_finish: Mapped[str | None] = mapped_column(String(32), default=None)
    prod_error: Mapped[str | None] = mapped_column(Text, default=None)
    cand_status: Mapped[int | None] = mapped_column(Integer, default=None)
    cand_latency_ms: Mapped[float | None] = mapped_column(Float, default=None)
    cand_ttfb_ms: Mapped[float | None] = mapped_column(Float, default=None)
    cand_prompt_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    cand_completion_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    cand_text: Mapped[str | None] = mapped_column(Text, default=None)
    cand_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    cand_chars: Mapped[int | None] = mapped_column(Integer, default=None)
    cand_finish: Mapped[str | None] = mapped_column(String(32), default=None)
    cand_error: Mapped[str | None] = mapped_column(Text, default=None)


class TrackingRow(Base):
    """One attempt to log a run to an experiment tracker (MLflow, W&B): where, or why not."""

    __tablename__ = "tracking"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    tracker: Mapped[str] = mapped_column(String(16))
    ok: Mapped[bool] = mapped_column()
    location: Mapped[str | None] = mapped_column(Text, default=None)
    external_id: Mapped[str | None] = mapped_column(String(200), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
