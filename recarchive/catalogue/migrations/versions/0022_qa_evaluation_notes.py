"""Timeline notes that belong to an evaluation

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06

``qa_evaluation_notes``: a copy of each note a trainer attached to an
evaluation (its offset, text and author), deleted with the evaluation, so
that it outlives the call whose own notes go with it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qa_evaluation_notes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("evaluation_id", sa.Uuid(), nullable=False),
        sa.Column("note_id", sa.Uuid(), nullable=False),
        sa.Column("author", sa.String(length=128), nullable=False),
        sa.Column("offset_ms", sa.Integer(), nullable=False),
        sa.Column("text", sa.String(length=2000), nullable=False),
        sa.Column("attached_by", sa.String(length=128), nullable=False),
        sa.Column("attached_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["evaluation_id"],
            ["qa_evaluations.id"],
            name=op.f("fk_qa_evaluation_notes_evaluation_id_qa_evaluations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_evaluation_notes")),
        sa.UniqueConstraint(
            "evaluation_id", "note_id", name=op.f("uq_qa_evaluation_notes_evaluation_id_note_id")
        ),
    )
    op.create_index(
        op.f("ix_qa_evaluation_notes_evaluation_id"),
        "qa_evaluation_notes",
        ["evaluation_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_qa_evaluation_notes_evaluation_id"), table_name="qa_evaluation_notes")
    op.drop_table("qa_evaluation_notes")
