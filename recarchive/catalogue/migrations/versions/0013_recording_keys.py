"""Encryption at rest: a wrapped data key per encrypted recording

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05

``recordings.encrypted``: the object is encrypted (every existing row: no,
its object stays plaintext and readable). ``recording_keys``: the data key
of each encrypted recording, wrapped by a key-encryption key, and the
object's public encryption header; deleted with the recording's tombstone.
``tombstones.key_destroyed_at``: when that happened.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("encrypted", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "recording_keys",
        sa.Column("recording_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("kek_id", sa.String(length=255), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("header", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["recording_id"],
            ["recordings.id"],
            name=op.f("fk_recording_keys_recording_id_recordings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("recording_id", name=op.f("pk_recording_keys")),
    )
    with op.batch_alter_table("recording_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recording_keys_kek_id"), ["kek_id"], unique=False)
    with op.batch_alter_table("tombstones", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("key_destroyed_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("tombstones", schema=None) as batch_op:
        batch_op.drop_column("key_destroyed_at")
    with op.batch_alter_table("recording_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recording_keys_kek_id"))
    op.drop_table("recording_keys")
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_column("encrypted")
