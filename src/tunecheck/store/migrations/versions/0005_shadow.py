"""shadow proxy: sessions and mirrored/split requests

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _side(prefix: str) -> list[sa.Column]:
    return [
        sa.Column(f"{prefix}_status", sa.Integer(), nullable=True),
        sa.Column(f"{prefix}_latency_ms", sa.Float(), nullable=True),
        sa.Column(f"{prefix}_ttfb_ms", sa.Float(), nullable=True),
        sa.Column(f"{prefix}_prompt_tokens", sa.Integer(), nullable=True),
        sa.Column(f"{prefix}_completion_tokens", sa.Integer(), nullable=True),
        sa.Column(f"{prefix}_text", sa.Text(), nullable=True),
        sa.Column(f"{prefix}_sha256", sa.String(length=64), nullable=True),
        sa.Column(f"{prefix}_chars", sa.Integer(), nullable=True),
        sa.Column(f"{prefix}_finish", sa.String(length=32), nullable=True),
        sa.Column(f"{prefix}_error", sa.Text(), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "shadow_sessions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("production_url", sa.Text(), nullable=False),
        sa.Column("candidate_url", sa.Text(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=True),
        sa.Column("tool_version", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "shadow_requests",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("endpoint", sa.String(length=32), nullable=False),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("variant", sa.String(length=16), nullable=False),
        sa.Column("unit_id", sa.String(length=200), nullable=True),
        sa.Column("mirror", sa.String(length=16), nullable=False),
        sa.Column("request", sa.JSON(), nullable=True),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("request_chars", sa.Integer(), nullable=False),
        *_side("prod"),
        *_side("cand"),
        sa.ForeignKeyConstraint(["session_id"], ["shadow_sessions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_shadow_requests_session", "shadow_requests", ["session_id", "created_at"])
    op.create_index("ix_shadow_requests_unit_id", "shadow_requests", ["unit_id"])


def downgrade() -> None:
    op.drop_index("ix_shadow_requests_unit_id", table_name="shadow_requests")
    op.drop_index("ix_shadow_requests_session", table_name="shadow_requests")
    op.drop_table("shadow_requests")
    op.drop_table("shadow_sessions")
