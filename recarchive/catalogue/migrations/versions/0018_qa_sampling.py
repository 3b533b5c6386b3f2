"""QA sampling plans, their versions, samples and each sample's candidates

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06

``qa_plans`` (a name and its current version), ``qa_plan_versions`` (the
criteria of each version, never changed once written), ``qa_samples`` (one
draw of a plan version for a period: its seed and criteria) and
``qa_sample_calls`` (every candidate of a draw, its agent, whether it was
picked, and a withdrawal's reason and time).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qa_plans",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_plans")),
        sa.UniqueConstraint("name", name=op.f("uq_qa_plans_name")),
    )
    op.create_table(
        "qa_plan_versions",
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("calls_per_agent", sa.Integer(), nullable=False),
        sa.Column(
            "period_kind",
            sa.Enum("week", "month", name="periodkind", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("queues", sa.JSON(), nullable=False),
        sa.Column("reason_codes", sa.JSON(), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=True),
        sa.Column("min_duration_s", sa.Integer(), nullable=True),
        sa.Column("max_duration_s", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["qa_plans.id"],
            name=op.f("fk_qa_plan_versions_plan_id_qa_plans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("plan_id", "version", name=op.f("pk_qa_plan_versions")),
    )
    op.create_table(
        "qa_samples",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("plan_version", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column("seed", sa.String(length=64), nullable=False),
        sa.Column("candidates", sa.Integer(), nullable=False),
        sa.Column("picked", sa.Integer(), nullable=False),
        sa.Column("drawn_by", sa.String(length=128), nullable=False),
        sa.Column("drawn_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["qa_plans.id"], name=op.f("fk_qa_samples_plan_id_qa_plans")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_samples")),
        sa.UniqueConstraint(
            "plan_id",
            "plan_version",
            "period",
            name=op.f("uq_qa_samples_plan_id_plan_version_period"),
        ),
    )
    with op.batch_alter_table("qa_samples", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_qa_samples_plan_id"), ["plan_id"], unique=False)

    op.create_table(
        "qa_sample_calls",
        sa.Column("sample_id", sa.Uuid(), nullable=False),
        sa.Column("recording_id", sa.Uuid(), nullable=False),
        sa.Column("agent", sa.String(length=128), nullable=False),
        sa.Column("picked", sa.Boolean(), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "withdrawn_reason",
            sa.Enum(
                "objected",
                "restricted",
                "deleted",
                name="withdrawalreason",
                native_enum=False,
                length=32,
            ),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["sample_id"],
            ["qa_samples.id"],
            name=op.f("fk_qa_sample_calls_sample_id_qa_samples"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sample_id", "recording_id", name=op.f("pk_qa_sample_calls")),
    )
    with op.batch_alter_table("qa_sample_calls", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_qa_sample_calls_recording_id"), ["recording_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("qa_sample_calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qa_sample_calls_recording_id"))

    op.drop_table("qa_sample_calls")
    with op.batch_alter_table("qa_samples", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qa_samples_plan_id"))

    op.drop_table("qa_samples")
    op.drop_table("qa_plan_versions")
    op.drop_table("qa_plans")
