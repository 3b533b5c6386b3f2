"""The QA training library's clips

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06

``qa_clips``: a stretch of one call cut into an object of its own, with its
source, title, purpose, whether it holds the agent's channel alone, its
object's checksum and (encrypted) data key, the source's retention, and a
decision to keep it longer.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qa_clips",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("recording_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("agent", sa.String(length=128), nullable=True),
        sa.Column("start_ms", sa.Integer(), nullable=False),
        sa.Column("end_ms", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("purpose", sa.String(length=1000), nullable=False),
        sa.Column("agent_only", sa.Boolean(), nullable=False),
        sa.Column("agent_channel", sa.String(length=8), nullable=True),
        sa.Column("object_key", sa.String(length=1024), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("channels", sa.SmallInteger(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("encrypted", sa.Boolean(), nullable=False),
        sa.Column("key_provider", sa.String(length=32), nullable=True),
        sa.Column("kek_id", sa.String(length=255), nullable=True),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("header", sa.LargeBinary(), nullable=True),
        sa.Column("retain_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kept_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("kept_reason", sa.String(length=1000), nullable=True),
        sa.Column("kept_by", sa.String(length=128), nullable=True),
        sa.Column("kept_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_clips")),
        sa.UniqueConstraint("object_key", name=op.f("uq_qa_clips_object_key")),
    )
    with op.batch_alter_table("qa_clips", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_qa_clips_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_qa_clips_recording_id"), ["recording_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_qa_clips_retain_until"), ["retain_until"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("qa_clips", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qa_clips_retain_until"))
        batch_op.drop_index(batch_op.f("ix_qa_clips_recording_id"))
        batch_op.drop_index(batch_op.f("ix_qa_clips_customer_id"))

    op.drop_table("qa_clips")
