"""The call a recording is a part of

Revision ID: 0016
Revises: 0015
Create Date: 2027-01-31

``recordings.linked_call_id``: the recordings of one call that was
transferred (or went through a queue) share it: the CDR's ``linkedid`` (the
first part's own uniqueid), or an Amazon Connect contact's
``InitialContactId``. Indexed, as the lookup gathers a call's parts by it.
Every existing row: none (unknown).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("linked_call_id", sa.String(length=128), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_recordings_linked_call_id"), ["linked_call_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recordings_linked_call_id"))
        batch_op.drop_column("linked_call_id")
