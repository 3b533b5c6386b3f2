"""How far each source has read what it reads incrementally (the FreePBX CDR table)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05

``source_bookmarks``: one row per source that reads incrementally, written
in the transaction that queues what the reading found.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_bookmarks",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_source_bookmarks")),
    )


def downgrade() -> None:
    op.drop_table("source_bookmarks")
