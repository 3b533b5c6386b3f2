"""The SHA-256 of the split legs a recording was merged from

Revision ID: 0015
Revises: 0014
Create Date: 2027-01-24

``recordings.caller_leg_sha256`` and ``recordings.agent_leg_sha256``: a call
recorded as MixMonitor's two legs (``-in``/``-out``) is archived as one
stereo recording; these keep the SHA-256 of each leg as the spool delivered
it (one of them for a leg archived alone). Every existing row: none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("caller_leg_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("agent_leg_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_column("agent_leg_sha256")
        batch_op.drop_column("caller_leg_sha256")
