"""Sampling plans that take only calls not yet evaluated

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06

``qa_plan_versions.not_evaluated``: the version's candidates leave out
every call that already has an evaluation (any status, any form). Every
existing version: no, as it was drawn.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("qa_plan_versions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("not_evaluated", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("qa_plan_versions", schema=None) as batch_op:
        batch_op.drop_column("not_evaluated")
