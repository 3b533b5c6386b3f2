"""Who is deleting a recording, since when, and for which rule

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08

A ``deleting`` recording now carries its claim (``recarchive/retention/claims.py``):
``deleting_by`` (the run deleting it; NULL once a run left it unsettled),
``deleting_since``, ``deleting_rule`` (the tombstone rule it is deleted
under) and ``deleting_request_id`` (the erasure's request). Rows already
``deleting`` keep NULLs: no live run holds them, so the next run takes them
over, as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deleting_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("deleting_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("deleting_rule", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("deleting_request_id", sa.Uuid(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_column("deleting_request_id")
        batch_op.drop_column("deleting_rule")
        batch_op.drop_column("deleting_since")
        batch_op.drop_column("deleting_by")
