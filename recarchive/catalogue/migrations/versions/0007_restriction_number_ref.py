"""Restrictions on an unlinked caller's number keep a keyed reference to it

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04

``processing_restrictions.number_ref`` (``number:`` + HMAC-SHA-256 of the
number under the identity-hash key, as subject requests name an unlinked
caller) lets the number itself be cleared once no recording holds it. Existing
restrictions get their reference computed here, so the upgrade needs the key
when there are any: ``recarchive init`` hands it over.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from recarchive.catalogue.identity import number_ref

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT id, number FROM processing_restrictions WHERE number IS NOT NULL")
    ).all()
    key = context.config.attributes.get("identity_hash_key")
    if rows and not key:
        raise RuntimeError(
            "hashing the restrictions' numbers needs the identity-hash key: run `recarchive init`"
        )
    with op.batch_alter_table("processing_restrictions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("number_ref", sa.String(length=80), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_processing_restrictions_number_ref"), ["number_ref"], unique=False
        )
    table = sa.table("processing_restrictions", sa.column("id"), sa.column("number_ref"))
    for restriction_id, number in rows:
        bind.execute(
            table.update()
            .where(table.c.id == restriction_id)
            .values(number_ref=number_ref(number, key or ""))
        )


def downgrade() -> None:
    with op.batch_alter_table("processing_restrictions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_processing_restrictions_number_ref"))
        batch_op.drop_column("number_ref")
