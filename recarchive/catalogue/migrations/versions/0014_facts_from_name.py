"""Recordings archived from their file name, for a CDR row that arrives late

Revision ID: 0014
Revises: 0013
Create Date: 2027-01-10

``recordings.facts_from_name``: what the catalogue says about the call came
from the recording's file name alone, no CDR row having matched it yet; a
row that arrives later enriches it (every existing row: no).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("facts_from_name", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_column("facts_from_name")
