"""Restrictions and objections on a caller's number (a caller no customer is linked to)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("processing_restrictions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("number", sa.String(length=32), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_processing_restrictions_number"), ["number"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("processing_restrictions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_processing_restrictions_number"))
        batch_op.drop_column("number")
