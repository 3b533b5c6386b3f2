"""Every audit entry carries a seal that only the installation's audit key can make

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04

``audit_events.seal``: HMAC-SHA-256 of the entry's hash under a key derived
from the audit key secret (see ``recarchive/catalogue/seals.py``). Entries
already in the log are sealed here, as they stand, so the upgrade needs the
key when there are any: ``recarchive init`` hands it over. From then on an
entry without a valid seal was not written by recarchive.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from recarchive.catalogue.seals import AuditKeys

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_BATCH = 5000


def upgrade() -> None:
    bind = op.get_bind()
    count = bind.execute(sa.text("SELECT count(*) FROM audit_events")).scalar_one()
    secret = context.config.attributes.get("audit_key")
    if count and not secret:
        raise RuntimeError(
            "sealing the audit log's entries needs the audit key: run `recarchive init`"
        )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seal", sa.String(length=64), nullable=True))
    if not count:
        return
    keys = AuditKeys.from_secret(str(secret))
    last = 0
    while True:
        rows = bind.execute(
            sa.text("SELECT seq, hash FROM audit_events WHERE seq > :last ORDER BY seq LIMIT :n"),
            {"last": last, "n": _BATCH},
        ).all()
        if not rows:
            return
        bind.execute(
            sa.text("UPDATE audit_events SET seal = :seal WHERE seq = :seq"),
            [{"seal": keys.seal(entry_hash), "seq": seq} for seq, entry_hash in rows],
        )
        last = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_column("seal")
