"""The catalogue schema on SQLite and PostgreSQL: migrations, constraints, time zones."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from recarchive.access.models import AuditEvent, Role, User
from recarchive.catalogue.database import create_catalogue_engine, table_names
from recarchive.catalogue.identity import phone_hash
from recarchive.catalogue.intake import WorkItem, WorkState
from recarchive.catalogue.migrate import upgrade_schema
from recarchive.catalogue.models import (
    Customer,
    CustomerMatch,
    CustomerPhone,
    Direction,
    ReasonSource,
    Recording,
    RecordingCandidate,
    RecordingReason,
)
from recarchive.catalogue.revision import current_revision, shipped_head
from recarchive.catalogue.schema import metadata
from recarchive.retention.models import Hold, HoldRecording, Tombstone

EXPECTED_TABLES = {
    "alembic_version",
    "api_tokens",
    "audit_events",
    "case_exports",
    "case_notes",
    "case_recordings",
    "case_tombstones",
    "cases",
    "customer_phones",
    "customers",
    "federated_identities",
    "hold_recordings",
    "holds",
    "installation",
    "pending_sign_ins",
    "qa_evaluation_responses",
    "qa_evaluation_versions",
    "qa_evaluations",
    "qa_evaluation_notes",
    "qa_form_versions",
    "qa_forms",
    "qa_plan_versions",
    "qa_notes",
    "qa_plans",
    "qa_sample_calls",
    "qa_clips",
    "qa_samples",
    "processing_restrictions",
    "quarantine_entries",
    "recording_candidates",
    "recording_checks",
    "recording_keys",
    "recording_reasons",
    "recordings",
    "source_bookmarks",
    "subject_requests",
    "tombstones",
    "users",
    "user_agent_ids",
    "web_sessions",
    "work_items",
}

CALL_TIME = dt.datetime(2026, 3, 14, 9, 26, 53, tzinfo=dt.UTC)


def make_recording(**overrides: object) -> Recording:
    values: dict[str, object] = {
        "source": "spool",
        "source_ref": f"2026/03/14/in-{uuid.uuid4().hex}.wav",
        "call_id": "1710408413.42",
        "started_at": CALL_TIME,
        "duration_ms": 183_250,
        "direction": Direction.INBOUND,
        "caller_number": "+358401234567",
        "called_number": "+358201234000",
        "agent": "agent-17",
        "queue": "billing",
        "object_key": f"recordings/2026/03/14/{uuid.uuid4()}.wav",
        "format": "wav",
        "codec": "pcm_s16le",
        "channels": 2,
        "sample_rate": 8000,
        "size_bytes": 2_932_044,
        "sha256": "ab" * 32,
        "retain_until": CALL_TIME + dt.timedelta(days=365),
    }
    values.update(overrides)
    return Recording(**values)


def test_migrations_reach_head_and_create_every_table(engine: Engine) -> None:
    assert current_revision(engine) == shipped_head()
    assert table_names(engine) == EXPECTED_TABLES


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_upgrade_twice_is_harmless(empty_catalogue_url: str) -> None:
    engine = create_catalogue_engine(empty_catalogue_url)
    try:
        assert upgrade_schema(engine) == (None, shipped_head())
        assert upgrade_schema(engine) == (shipped_head(), shipped_head())
        assert table_names(engine) == EXPECTED_TABLES
    finally:
        engine.dispose()


def test_recording_round_trip_keeps_utc_and_relations(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        session.add(
            Customer(
                customer_id="C-1001",
                name="Asiakas Yksi",
                phones=[CustomerPhone(phone_hash=phone_hash("+358401234567", "k" * 32))],
            )
        )
        recording = make_recording(customer_id="C-1001", customer_match=CustomerMatch.MATCHED)
        recording.reasons = [
            RecordingReason(code="billing"),
            RecordingReason(code="moving", assigned_by=ReasonSource.STAFF),
        ]
        session.add(recording)
    with sessions() as session:
        loaded = session.get_one(Recording, recording.id)
        assert loaded.started_at == CALL_TIME
        assert loaded.started_at.tzinfo is not None
        assert loaded.retain_until - loaded.started_at == dt.timedelta(days=365)
        assert loaded.reason_codes == ["billing", "moving"]
        assert loaded.direction is Direction.INBOUND
        assert loaded.customer_match is CustomerMatch.MATCHED
        phone_owner = session.scalars(
            select(CustomerPhone.customer_id).where(
                CustomerPhone.phone_hash == phone_hash("+358401234567", "k" * 32)
            )
        ).all()
        assert phone_owner == ["C-1001"]


def test_local_times_are_stored_as_the_same_instant(sessions: sessionmaker[Session]) -> None:
    helsinki = dt.timezone(dt.timedelta(hours=2))
    local = dt.datetime(2026, 1, 5, 11, 0, tzinfo=helsinki)
    with sessions.begin() as session:
        recording = make_recording(started_at=local)
        session.add(recording)
    with sessions() as session:
        loaded = session.get_one(Recording, recording.id)
        assert loaded.started_at == local
        assert loaded.started_at.utcoffset() == dt.timedelta(0)
        found = session.scalars(
            select(Recording.id).where(
                Recording.started_at == dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
            )
        ).all()
        assert recording.id in found


def test_naive_datetime_is_refused(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(StatementError, match="naive datetime"), sessions.begin() as session:
        session.add(make_recording(started_at=dt.datetime(2026, 1, 1, 12, 0)))


def test_one_recording_per_source_reference(sessions: sessionmaker[Session]) -> None:
    ref = f"twilio/RE{uuid.uuid4().hex}"
    with sessions.begin() as session:
        session.add(make_recording(source="http", source_ref=ref))
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(make_recording(source="http", source_ref=ref))
    with sessions.begin() as session:
        session.add(make_recording(source="other", source_ref=ref))


def test_object_key_is_unique(sessions: sessionmaker[Session]) -> None:
    key = f"recordings/2026/03/14/{uuid.uuid4()}.wav"
    with sessions.begin() as session:
        session.add(make_recording(object_key=key))
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(make_recording(object_key=key))


def test_deleting_a_recording_removes_its_reasons_and_candidates(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        recording = make_recording(customer_match=CustomerMatch.AMBIGUOUS)
        recording.reasons = [RecordingReason(code="outage")]
        recording.candidates = [
            RecordingCandidate(customer_id="C-1"),
            RecordingCandidate(customer_id="C-2"),
        ]
        session.add(recording)
    with sessions.begin() as session:
        session.delete(session.get_one(Recording, recording.id))
    with sessions() as session:
        assert (
            session.scalars(
                select(RecordingReason).where(RecordingReason.recording_id == recording.id)
            ).all()
            == []
        )
        assert (
            session.scalars(
                select(RecordingCandidate).where(RecordingCandidate.recording_id == recording.id)
            ).all()
            == []
        )


def test_hold_tombstone_user_audit_and_work_item_rows(sessions: sessionmaker[Session]) -> None:
    recording_id = uuid.uuid4()
    with sessions.begin() as session:
        hold = Hold(case_ref="DISPUTE-2026-0042", reason="billing dispute", placed_by="maija")
        hold.recordings = [HoldRecording(recording_id=recording_id)]
        session.add(hold)
        session.add(
            Tombstone(
                recording_id=recording_id,
                object_key="recordings/2025/03/14/x.wav",
                sha256="cd" * 32,
                size_bytes=10,
                retain_until=CALL_TIME,
                rule="retention:default",
            )
        )
        session.add(User(name=f"qa-{uuid.uuid4().hex[:6]}", role=Role.QA_TRAINER))
        session.add(
            AuditEvent(actor="system", action="init", prev_hash="0" * 64, hash=uuid.uuid4().hex * 2)
        )
        session.add(
            WorkItem(
                source="spool", source_ref=f"r-{uuid.uuid4()}", payload={"userfield": "billing"}
            )
        )
    with sessions() as session:
        assert session.get_one(Hold, hold.id).recordings[0].recording_id == recording_id
        assert session.get_one(Tombstone, recording_id).deleted_at.tzinfo is not None
        item = session.scalars(select(WorkItem).where(WorkItem.source == "spool")).first()
        assert item is not None
        assert item.state is WorkState.PENDING
        assert item.payload == {"userfield": "billing"}
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        assert events[-1].seq >= 1
        assert events[-1].details == {}


def test_upgrade_hashes_the_directory_phone_numbers_in_place(empty_catalogue_url: str) -> None:
    """0006: numbers stored in clear by an older recarchive become keyed hashes."""
    from alembic import command
    from sqlalchemy import text

    from recarchive.catalogue.migrate import alembic_config, upgrade_schema
    from recarchive.errors import CatalogueError

    engine = create_catalogue_engine(empty_catalogue_url)
    try:
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0005")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO customers (customer_id, name, created_at, updated_at) "
                    "VALUES ('C-1', 'Asiakas', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
            connection.execute(text("INSERT INTO customer_phones VALUES ('C-1', '+358401234567')"))
        with pytest.raises((RuntimeError, CatalogueError), match="identity-hash key"):
            upgrade_schema(engine)
        assert current_revision(engine) == "0005"  # nothing half-done
        upgrade_schema(engine, identity_hash_key="k" * 32)
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT * FROM customer_phones")).all()
        assert [tuple(row) for row in rows] == [("C-1", phone_hash("+358401234567", "k" * 32))]
    finally:
        engine.dispose()


def test_upgrade_gives_number_restrictions_their_keyed_reference(empty_catalogue_url: str) -> None:
    """0007: a restriction on an unlinked caller's number gets ``number_ref``."""
    from alembic import command
    from sqlalchemy import text

    from recarchive.catalogue.identity import number_ref
    from recarchive.catalogue.migrate import alembic_config, upgrade_schema

    engine = create_catalogue_engine(empty_catalogue_url)
    try:
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0006")
        restriction = uuid.uuid4()
        stored_id = restriction.hex if engine.dialect.name == "sqlite" else str(restriction)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO processing_restrictions (id, kind, number, created_at, "
                    "created_by) VALUES (:id, 'objection', '+358401234567', CURRENT_TIMESTAMP, "
                    "'officer')"
                ),
                {"id": stored_id},
            )
        with pytest.raises(RuntimeError, match="identity-hash key"):
            upgrade_schema(engine)
        upgrade_schema(engine, identity_hash_key="k" * 32)
        with engine.connect() as connection:
            ref = connection.execute(
                text("SELECT number_ref FROM processing_restrictions")
            ).scalar()
        assert ref == number_ref("+358401234567", "k" * 32)
    finally:
        engine.dispose()
