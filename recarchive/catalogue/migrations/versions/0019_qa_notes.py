"""QA trainers' notes on a call's timeline

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06

``qa_notes``: a trainer's note at a moment of a recording (offset, text,
private or shared with the QA team, author, times). Its foreign key to
``recordings`` deletes it with the recording (ON DELETE CASCADE): a note
is personal data about the agent and never outlives the call.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qa_notes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("recording_id", sa.Uuid(), nullable=False),
        sa.Column("author", sa.String(length=128), nullable=False),
        sa.Column("offset_ms", sa.Integer(), nullable=False),
        sa.Column("text", sa.String(length=2000), nullable=False),
        sa.Column(
            "visibility",
            sa.Enum("private", "shared", name="notevisibility", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["recording_id"],
            ["recordings.id"],
            name=op.f("fk_qa_notes_recording_id_recordings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_notes")),
    )
    with op.batch_alter_table("qa_notes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_qa_notes_author"), ["author"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_qa_notes_recording_id"), ["recording_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("qa_notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qa_notes_recording_id"))
        batch_op.drop_index(batch_op.f("ix_qa_notes_author"))

    op.drop_table("qa_notes")
