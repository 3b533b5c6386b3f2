"""The customer directory keeps phone numbers only as keyed hashes

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

``customer_phones.e164`` (the number in clear) becomes ``phone_hash``, the
HMAC-SHA-256 of the E.164 number under the installation's identity-hash key,
as identity codes already are. Existing rows are hashed in place, so the
upgrade needs the key: ``recarchive init`` hands it over. There is no way
back: a downgrade empties the table (re-import the directory).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from recarchive.catalogue.identity import phone_hash

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _phones_table(number_column: sa.Column[str]) -> None:
    op.create_table(
        "customer_phones",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        number_column,
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.customer_id"],
            name=op.f("fk_customer_phones_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", number_column.name, name=op.f("pk_customer_phones")),
    )
    with op.batch_alter_table("customer_phones", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f(f"ix_customer_phones_{number_column.name}"), [number_column.name]
        )


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT customer_id, e164 FROM customer_phones")).all()
    key = context.config.attributes.get("identity_hash_key")
    if rows and not key:
        raise RuntimeError(
            "hashing the directory's phone numbers needs the identity-hash key: "
            "run `recarchive init`"
        )
    with op.batch_alter_table("customer_phones", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_phones_e164"))
    op.drop_table("customer_phones")
    _phones_table(sa.Column("phone_hash", sa.String(length=64), nullable=False))
    hashed = {(customer_id, phone_hash(e164, key or "")) for customer_id, e164 in rows}
    if hashed:
        table = sa.table(
            "customer_phones", sa.column("customer_id", sa.String), sa.column("phone_hash")
        )
        op.bulk_insert(table, [{"customer_id": c, "phone_hash": h} for c, h in sorted(hashed)])


def downgrade() -> None:
    with op.batch_alter_table("customer_phones", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_phones_phone_hash"))
    op.drop_table("customer_phones")
    _phones_table(sa.Column("e164", sa.String(length=32), nullable=False))
