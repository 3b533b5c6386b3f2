"""The web pages' language each user chose

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06

``users.language``: ``fi`` or ``en`` once the user has used the pages'
language switch (None: the installation's ``api.language``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("language", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("language")
