"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "audit_events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("actor_role", sa.String(length=32), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("recording_id", sa.Uuid(), nullable=True),
        sa.Column("purpose", sa.String(length=32), nullable=True),
        sa.Column("case_ref", sa.String(length=128), nullable=True),
        sa.Column("client_addr", sa.String(length=64), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_events")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_events_hash")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_actor"), ["actor"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_at"), ["at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_audit_events_recording_id"), ["recording_id"], unique=False
        )

    op.create_table(
        "customers",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("identity_hash", sa.String(length=64), nullable=True),
        sa.Column(
            "identity_kind",
            sa.Enum("henkilotunnus", "ytunnus", name="identitykind", native_enum=False, length=32),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customers")),
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customers_identity_hash"), ["identity_hash"], unique=False
        )

    op.create_table(
        "holds",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_ref", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("placed_by", sa.String(length=128), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_by", sa.String(length=128), nullable=True),
        sa.Column("release_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holds")),
    )
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_holds_case_ref"), ["case_ref"], unique=False)
        batch_op.create_index(batch_op.f("ix_holds_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_holds_released_at"), ["released_at"], unique=False)

    op.create_table(
        "recordings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("source_ref", sa.String(length=512), nullable=False),
        sa.Column("call_id", sa.String(length=128), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column(
            "direction",
            sa.Enum(
                "inbound",
                "outbound",
                "internal",
                "unknown",
                name="direction",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("caller_number", sa.String(length=32), nullable=True),
        sa.Column("called_number", sa.String(length=32), nullable=True),
        sa.Column("agent", sa.String(length=128), nullable=True),
        sa.Column("queue", sa.String(length=128), nullable=True),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column(
            "customer_match",
            sa.Enum(
                "matched",
                "unknown",
                "ambiguous",
                "manual",
                name="customermatch",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("object_key", sa.String(length=1024), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("codec", sa.String(length=32), nullable=False),
        sa.Column("channels", sa.SmallInteger(), nullable=False),
        sa.Column("sample_rate", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("retention_class", sa.String(length=32), nullable=False),
        sa.Column("retain_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum("active", "deleting", name="recordingstatus", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
        sa.UniqueConstraint("object_key", name=op.f("uq_recordings_object_key")),
        sa.UniqueConstraint("source", "source_ref", name=op.f("uq_recordings_source_source_ref")),
    )
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recordings_agent"), ["agent"], unique=False)
        batch_op.create_index(batch_op.f("ix_recordings_call_id"), ["call_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_recordings_called_number"), ["called_number"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_recordings_caller_number"), ["caller_number"], unique=False
        )
        batch_op.create_index(
            "ix_recordings_customer_started", ["customer_id", "started_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_recordings_queue"), ["queue"], unique=False)
        batch_op.create_index(batch_op.f("ix_recordings_started_at"), ["started_at"], unique=False)
        batch_op.create_index(
            "ix_recordings_status_retain_until", ["status", "retain_until"], unique=False
        )

    op.create_table(
        "subject_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "access",
                "rectification",
                "erasure",
                "restriction",
                "objection",
                name="requestkind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("subject_ref", sa.String(length=256), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "received",
                "pending",
                "completed",
                "rejected",
                name="requeststatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("handled_by", sa.String(length=128), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subject_requests")),
    )
    with op.batch_alter_table("subject_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_subject_requests_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_subject_requests_received_at"), ["received_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_subject_requests_subject_ref"), ["subject_ref"], unique=False
        )

    op.create_table(
        "tombstones",
        sa.Column("recording_id", sa.Uuid(), nullable=False),
        sa.Column("object_key", sa.String(length=1024), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("retain_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("deleted_by", sa.String(length=128), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("recording_id", name=op.f("pk_tombstones")),
    )
    with op.batch_alter_table("tombstones", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tombstones_deleted_at"), ["deleted_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_tombstones_object_key"), ["object_key"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "qa_trainer",
                "dispute_handler",
                "privacy_officer",
                "auditor",
                "admin",
                name="role",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    op.create_table(
        "work_items",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("source_ref", sa.String(length=512), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "pending",
                "claimed",
                "done",
                "quarantined",
                name="workstate",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=128), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recording_id", sa.Uuid(), nullable=True),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("discovered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_items")),
        sa.UniqueConstraint("source", "source_ref", name=op.f("uq_work_items_source_source_ref")),
    )
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_work_items_state_discovered", ["state", "discovered_at"], unique=False
        )

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("secret_hash", sa.String(length=256), nullable=False),
        sa.Column("description", sa.String(length=256), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "customer_phones",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("e164", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.customer_id"],
            name=op.f("fk_customer_phones_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", "e164", name=op.f("pk_customer_phones")),
    )
    with op.batch_alter_table("customer_phones", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_phones_e164"), ["e164"], unique=False)

    op.create_table(
        "hold_recordings",
        sa.Column("hold_id", sa.Uuid(), nullable=False),
        sa.Column("recording_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["hold_id"],
            ["holds.id"],
            name=op.f("fk_hold_recordings_hold_id_holds"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("hold_id", "recording_id", name=op.f("pk_hold_recordings")),
    )
    with op.batch_alter_table("hold_recordings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_hold_recordings_recording_id"), ["recording_id"], unique=False
        )

    op.create_table(
        "processing_restrictions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "restriction", "objection", name="restrictionkind", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("recording_id", sa.Uuid(), nullable=True),
        sa.Column("allowed_purpose", sa.String(length=32), nullable=True),
        sa.Column("case_ref", sa.String(length=128), nullable=True),
        sa.Column("request_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["subject_requests.id"],
            name=op.f("fk_processing_restrictions_request_id_subject_requests"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processing_restrictions")),
    )
    with op.batch_alter_table("processing_restrictions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_processing_restrictions_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_processing_restrictions_recording_id"), ["recording_id"], unique=False
        )

    op.create_table(
        "quarantine_entries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("work_item_id", sa.Uuid(), nullable=True),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("source_ref", sa.String(length=512), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("kept_at", sa.String(length=1024), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retried_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["work_item_id"],
            ["work_items.id"],
            name=op.f("fk_quarantine_entries_work_item_id_work_items"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantine_entries")),
    )
    with op.batch_alter_table("quarantine_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_quarantine_entries_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_quarantine_entries_reason"), ["reason"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_quarantine_entries_work_item_id"), ["work_item_id"], unique=False
        )

    op.create_table(
        "recording_candidates",
        sa.Column("recording_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["recording_id"],
            ["recordings.id"],
            name=op.f("fk_recording_candidates_recording_id_recordings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "recording_id", "customer_id", name=op.f("pk_recording_candidates")
        ),
    )
    with op.batch_alter_table("recording_candidates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_recording_candidates_customer_id"), ["customer_id"], unique=False
        )

    op.create_table(
        "recording_reasons",
        sa.Column("recording_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column(
            "assigned_by",
            sa.Enum("rule", "staff", name="reasonsource", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["recording_id"],
            ["recordings.id"],
            name=op.f("fk_recording_reasons_recording_id_recordings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("recording_id", "code", name=op.f("pk_recording_reasons")),
    )
    with op.batch_alter_table("recording_reasons", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recording_reasons_code"), ["code"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("recording_reasons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recording_reasons_code"))

    op.drop_table("recording_reasons")
    with op.batch_alter_table("recording_candidates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recording_candidates_customer_id"))

    op.drop_table("recording_candidates")
    with op.batch_alter_table("quarantine_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quarantine_entries_work_item_id"))
        batch_op.drop_index(batch_op.f("ix_quarantine_entries_reason"))
        batch_op.drop_index(batch_op.f("ix_quarantine_entries_created_at"))

    op.drop_table("quarantine_entries")
    with op.batch_alter_table("processing_restrictions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_processing_restrictions_recording_id"))
        batch_op.drop_index(batch_op.f("ix_processing_restrictions_customer_id"))

    op.drop_table("processing_restrictions")
    with op.batch_alter_table("hold_recordings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hold_recordings_recording_id"))

    op.drop_table("hold_recordings")
    with op.batch_alter_table("customer_phones", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_phones_e164"))

    op.drop_table("customer_phones")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_user_id"))

    op.drop_table("api_tokens")
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        batch_op.drop_index("ix_work_items_state_discovered")

    op.drop_table("work_items")
    op.drop_table("users")
    with op.batch_alter_table("tombstones", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tombstones_object_key"))
        batch_op.drop_index(batch_op.f("ix_tombstones_deleted_at"))

    op.drop_table("tombstones")
    with op.batch_alter_table("subject_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subject_requests_subject_ref"))
        batch_op.drop_index(batch_op.f("ix_subject_requests_received_at"))
        batch_op.drop_index(batch_op.f("ix_subject_requests_customer_id"))

    op.drop_table("subject_requests")
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_index("ix_recordings_status_retain_until")
        batch_op.drop_index(batch_op.f("ix_recordings_started_at"))
        batch_op.drop_index(batch_op.f("ix_recordings_queue"))
        batch_op.drop_index("ix_recordings_customer_started")
        batch_op.drop_index(batch_op.f("ix_recordings_caller_number"))
        batch_op.drop_index(batch_op.f("ix_recordings_called_number"))
        batch_op.drop_index(batch_op.f("ix_recordings_call_id"))
        batch_op.drop_index(batch_op.f("ix_recordings_agent"))

    op.drop_table("recordings")
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_holds_released_at"))
        batch_op.drop_index(batch_op.f("ix_holds_customer_id"))
        batch_op.drop_index(batch_op.f("ix_holds_case_ref"))

    op.drop_table("holds")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customers_identity_hash"))

    op.drop_table("customers")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_recording_id"))
        batch_op.drop_index(batch_op.f("ix_audit_events_at"))
        batch_op.drop_index(batch_op.f("ix_audit_events_actor"))
        batch_op.drop_index(batch_op.f("ix_audit_events_action"))

    op.drop_table("audit_events")
