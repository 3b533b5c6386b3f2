"""Single sign-on: users linked to an OpenID provider, sign-ins in progress, sessions without a token

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05

``federated_identities``: a user's (issuer, subject) at an OpenID provider,
by which a single sign-on finds its user. ``pending_sign_ins``: a sign-in
between its start and the provider's answer (state, nonce and PKCE
verifier, bound to the browser), taken by that answer. ``web_sessions.token_id``
becomes optional: a single sign-on's session is tied to its user alone.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "federated_identities",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("issuer", sa.String(length=512), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_federated_identities_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_federated_identities")),
        sa.UniqueConstraint(
            "issuer", "subject", name=op.f("uq_federated_identities_issuer_subject")
        ),
    )
    with op.batch_alter_table("federated_identities", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_federated_identities_user_id"), ["user_id"], unique=False
        )
    op.create_table(
        "pending_sign_ins",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("browser_hash", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("code_verifier", sa.String(length=128), nullable=False),
        sa.Column("redirect_url", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_sign_ins")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_pending_sign_ins_state_hash")),
    )
    with op.batch_alter_table("pending_sign_ins", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pending_sign_ins_expires_at"), ["expires_at"], unique=False
        )
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.alter_column("token_id", existing_type=sa.Uuid(), nullable=True)


def downgrade() -> None:
    # Sessions without a token (single sign-ons) cannot survive the NOT NULL: they end.
    op.execute(sa.text("DELETE FROM web_sessions WHERE token_id IS NULL"))
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.alter_column("token_id", existing_type=sa.Uuid(), nullable=False)
    with op.batch_alter_table("pending_sign_ins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pending_sign_ins_expires_at"))
    op.drop_table("pending_sign_ins")
    with op.batch_alter_table("federated_identities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_federated_identities_user_id"))
    op.drop_table("federated_identities")
