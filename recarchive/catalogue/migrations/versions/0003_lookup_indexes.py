"""Index recordings for expiry by retain_until first, so searches are not planned on status

Every search filters on ``status = 'active'``, true of nearly every row. SQLite
has no statistics unless ANALYZE has run (recarchive never runs it), and then
takes an equality on the first column of an index as selective: the old
``(status, retain_until)`` index made it read all 1,000,000 recordings for a
search by phone number (0.5 s) or by date range and reason (1-1.5 s), where
the caller-number, called-number and started_at indexes answer in 2-11 ms.
Expiry (``retain_until <= cutoff AND status IN (...) ORDER BY retain_until``)
is served as well by ``(retain_until, status)``. See docs/performance.md, Lookup.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_index("ix_recordings_status_retain_until")
        batch_op.create_index(
            "ix_recordings_retain_until_status", ["retain_until", "status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_index("ix_recordings_retain_until_status")
        batch_op.create_index(
            "ix_recordings_status_retain_until", ["status", "retain_until"], unique=False
        )
