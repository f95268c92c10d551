"""blind human review: reviews, their items (hidden A/B sides), reviewers (token hashes), labels

Revision ID: 0004
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column(
            "run_id", sa.String(length=32), sa.ForeignKey("runs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("task", sa.String(length=200), nullable=False),
        sa.Column("candidate", sa.String(length=200), nullable=False),
        sa.Column("baseline", sa.String(length=200), nullable=False),
        sa.Column("show_reference", sa.Boolean(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )  # fmt: skip
    op.create_index("ix_reviews_run_id", "reviews", ["run_id"])
    op.create_table(
        "review_items",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "review_id", sa.String(length=32), sa.ForeignKey("reviews.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("example_id", sa.String(length=200), nullable=False),
        sa.Column("slice", sa.String(length=200), nullable=True),
        sa.Column("candidate_is_a", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("review_id", "position"),
    )  # fmt: skip
    op.create_index("ix_review_items_review_id", "review_items", ["review_id"])
    op.create_table(
        "reviewers",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "review_id", sa.String(length=32), sa.ForeignKey("reviews.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False, unique=True),
        sa.UniqueConstraint("review_id", "name"),
    )  # fmt: skip
    op.create_index("ix_reviewers_review_id", "reviewers", ["review_id"])
    op.create_table(
        "review_labels",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "reviewer_id", sa.Integer(), sa.ForeignKey("reviewers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "item_id", sa.Integer(), sa.ForeignKey("review_items.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("choice", sa.String(length=8), nullable=False),
        sa.Column("winner", sa.String(length=16), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("reviewer_id", "item_id"),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("review_labels")
    op.drop_index("ix_reviewers_review_id", table_name="reviewers")
    op.drop_table("reviewers")
    op.drop_index("ix_review_items_review_id", table_name="review_items")
    op.drop_table("review_items")
    op.drop_index("ix_reviews_run_id", table_name="reviews")
    op.drop_table("reviews")
