"""QA scorecard forms, their versions, evaluations and each evaluation's versions

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06

``qa_forms`` (a name and its current version), ``qa_form_versions`` (each
version's sections and questions as JSON, never changed once written),
``qa_evaluations`` (one call scored against one form version: the call's id
without a foreign key, its agent, queue and start, the current version's
status and score) and ``qa_evaluation_versions`` (every saved state: the
answers, the computed scores, who saved it and who superseded it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qa_forms",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_forms")),
        sa.UniqueConstraint("name", name=op.f("uq_qa_forms_name")),
    )
    op.create_table(
        "qa_form_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("form_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["form_id"],
            ["qa_forms.id"],
            name=op.f("fk_qa_form_versions_form_id_qa_forms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_form_versions")),
        sa.UniqueConstraint("form_id", "version", name=op.f("uq_qa_form_versions_form_id_version")),
    )
    with op.batch_alter_table("qa_form_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_qa_form_versions_form_id"), ["form_id"], unique=False)

    op.create_table(
        "qa_evaluations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("recording_id", sa.Uuid(), nullable=False),
        sa.Column("agent", sa.String(length=128), nullable=True),
        sa.Column("queue", sa.String(length=128), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("form_version_id", sa.Uuid(), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("draft", "submitted", name="evaluationstatus", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["form_version_id"],
            ["qa_form_versions.id"],
            name=op.f("fk_qa_evaluations_form_version_id_qa_form_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_evaluations")),
    )
    with op.batch_alter_table("qa_evaluations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_qa_evaluations_agent"), ["agent"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_qa_evaluations_form_version_id"), ["form_version_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_qa_evaluations_recording_id"), ["recording_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_qa_evaluations_updated_at"), ["updated_at"], unique=False
        )

    op.create_table(
        "qa_evaluation_versions",
        sa.Column("evaluation_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column(
            "status",
            sa.Enum("draft", "submitted", name="evaluationstatus", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("sections", sa.JSON(), nullable=False),
        sa.Column("critical_failed", sa.JSON(), nullable=False),
        sa.Column("saved_by", sa.String(length=128), nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("superseded_by", sa.String(length=128), nullable=True),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["evaluation_id"],
            ["qa_evaluations.id"],
            name=op.f("fk_qa_evaluation_versions_evaluation_id_qa_evaluations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("evaluation_id", "version", name=op.f("pk_qa_evaluation_versions")),
    )


def downgrade() -> None:
    op.drop_table("qa_evaluation_versions")
    with op.batch_alter_table("qa_evaluations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qa_evaluations_updated_at"))
        batch_op.drop_index(batch_op.f("ix_qa_evaluations_recording_id"))
        batch_op.drop_index(batch_op.f("ix_qa_evaluations_form_version_id"))
        batch_op.drop_index(batch_op.f("ix_qa_evaluations_agent"))

    op.drop_table("qa_evaluations")
    with op.batch_alter_table("qa_form_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qa_form_versions_form_id"))

    op.drop_table("qa_form_versions")
    op.drop_table("qa_forms")
