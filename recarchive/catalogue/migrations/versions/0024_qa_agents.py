"""Agents as users: their telephony agent identifiers, and responses to evaluations

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06

``user_agent_ids`` links a telephony agent identifier (the ``agent`` of
recordings and evaluations; unique: one identifier is at most one user's) to a
user of the new role ``agent``. ``qa_evaluation_responses`` records an
agent's acknowledgement or dispute of an evaluation and a trainer's answer
(the version it refers to, the comment, who and when), deleted with the
evaluation.

The role and the evaluation status are plain strings (no native enum, no
CHECK constraint: :func:`recarchive.catalogue.types.enum_column`), so the new
values ``agent``, ``acknowledged``, ``disputed`` and ``dispute_answered`` need
no change of the existing columns.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_agent_ids",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("agent", sa.String(length=128), nullable=False),
        sa.Column("linked_by", sa.String(length=128), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_agent_ids_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_agent_ids")),
        sa.UniqueConstraint("agent", name=op.f("uq_user_agent_ids_agent")),
    )
    with op.batch_alter_table("user_agent_ids", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_agent_ids_user_id"), ["user_id"], unique=False)

    op.create_table(
        "qa_evaluation_responses",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("evaluation_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "acknowledge",
                "dispute",
                "answer",
                name="responsekind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("comment", sa.String(length=2000), nullable=True),
        sa.Column("by", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["evaluation_id"],
            ["qa_evaluations.id"],
            name=op.f("fk_qa_evaluation_responses_evaluation_id_qa_evaluations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_evaluation_responses")),
    )
    with op.batch_alter_table("qa_evaluation_responses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_qa_evaluation_responses_evaluation_id"),
            ["evaluation_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("qa_evaluation_responses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qa_evaluation_responses_evaluation_id"))
    op.drop_table("qa_evaluation_responses")
    with op.batch_alter_table("user_agent_ids", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_agent_ids_user_id"))
    op.drop_table("user_agent_ids")
