"""An S3-drop recording whose contact record comes late, or never: it waits
``record_wait_s``, is archived from what its key tells, and a contact record that
arrives afterwards enriches it (audited, retention recomputed), once.

Against the real S3 server (the drop) with real catalogues; the archive uses the
filesystem store. The wait is set per run (300 s: waiting; 0: the wait is over),
since the S3 server stamps the objects' times itself.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from recarchive.access.models import AuditEvent
from recarchive.catalogue.database import create_catalogue_engine
from recarchive.catalogue.migrate import upgrade_schema
from recarchive.catalogue.models import CustomerMatch, Direction, Recording
from recarchive.cli import cli
from recarchive.config import Settings, load_settings
from recarchive.ingest.enrichment import ACTION, ACTOR
from recarchive.ingest.interfaces import LateCdr
from recarchive.ingest.sources import build_sources
from recarchive.ingest.sources.s3drop import S3DropSource
from recarchive.ingest.tasks import run_ingest
from recarchive.runtime import Runtime
from recarchive.storage.s3 import S3ObjectStore
from tests.integration.test_ingest_s3drop import Drop, ctr, drop, stereo
from tests.integration.test_ingest_spool import add_customers
from tests.integration.test_store_contract import s3_settings

__all__ = ["drop", "stereo"]  # fixtures, imported to be found

pytestmark = pytest.mark.s3

PAIRED = "6b2e3d4c-0000-4000-8000-000000000001"
LATE = "6b2e3d4c-0000-4000-8000-000000000002"
CONFIG = """
[[reasons.rules]]
code = "billing"
field = "attribute"
attribute = "reason"
pattern = "^billing$"

[[retention.rules]]
name = "billing-cases"
field = "reason"
values = ["billing"]
days = 500
"""
#: What the contact record of LATE holds that must never reach a log or an audit entry.
PERSONAL = ("401234567", "201234000", "agent.aalto", "Asiakas", "C-1", "Billing")


@pytest.fixture
def contents(drop: S3ObjectStore, stereo: bytes) -> Drop:
    """PAIRED with its contact record, LATE without one (yet)."""
    corner = Drop(drop, f"t-{secrets.token_hex(4)}/connect/")
    for contact in (PAIRED, LATE):
        corner.put(corner.recording_key(contact), stereo)
    corner.put(corner.record_key(PAIRED), ctr(PAIRED, "INBOUND"))
    return corner


@pytest.fixture
def catalogue(empty_catalogue_url: str) -> str:
    engine = create_catalogue_engine(empty_catalogue_url)
    upgrade_schema(engine)
    engine.dispose()
    return empty_catalogue_url


def make_settings(
    tmp_path: Path, catalogue: str, corner: Drop, *, wait_s: float, delete: bool = False
) -> Settings:
    s3 = s3_settings()
    config = tmp_path / "recarchive.toml"
    config.write_text(
        f'[general]\ndata_dir = "{tmp_path / "var"}"\n'
        f'[catalogue]\nurl = "{catalogue}"\n'
        '[storage]\nbackend = "filesystem"\n'
        "[ingest]\nsettle_s = 0\nlease_s = 60\n"
        f"{CONFIG}"
        f'[[sources]]\nkind = "s3drop"\nname = "connect"\nbucket = "{corner.store.bucket}"\n'
        f'prefix = "{corner.prefix}"\nendpoint_url = "{s3["endpoint_url"]}"\n'
        f'region = "{s3["region"]}"\ndelete_after_archive = {str(delete).lower()}\n'
        f"record_wait_s = {wait_s}\n",
        encoding="utf-8",
    )
    settings = load_settings(config, env=environment())
    runtime = Runtime(settings)
    try:
        runtime.store.create()
        with runtime.sessions() as session:
            known = session.execute(select(Recording.id)).first() is not None
        if not known:  # the directory, once per catalogue
            add_customers(runtime, {"C-1": ("Asiakas Yksi", "+358401234567")})
    finally:
        runtime.close()
    return settings


def environment() -> dict[str, str]:
    s3 = s3_settings()
    return {
        "RECARCHIVE_SOURCE_CONNECT_ACCESS_KEY_ID": s3["access_key_id"],
        "RECARCHIVE_SOURCE_CONNECT_SECRET_ACCESS_KEY": s3["secret_access_key"],
    }


def archived(settings: Settings) -> dict[str, Recording]:
    runtime = Runtime(settings)
    try:
        with runtime.sessions() as session:
            rows = session.scalars(select(Recording)).all()
            for row in rows:
                _ = row.reasons, row.candidates
            return {row.source_ref: row for row in rows}
    finally:
        runtime.close()


def enriched_entries(settings: Settings) -> list[AuditEvent]:
    runtime = Runtime(settings)
    try:
        with runtime.sessions() as session:
            statement = select(AuditEvent).where(AuditEvent.action == ACTION)
            return list(session.scalars(statement.order_by(AuditEvent.seq)))
    finally:
        runtime.close()


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every record's message and extra fields, as one text."""
    return "\n".join(json.dumps(vars(r), default=str) for r in caplog.records)


def test_a_recording_without_its_contact_record_waits_then_is_archived_from_its_key(
    contents: Drop, catalogue: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    waiting = make_settings(tmp_path, catalogue, contents, wait_s=300)
    first = run_ingest(waiting, once=True)
    assert (first.archived, first.awaiting_cdr, first.archived_without_record) == (1, 1, 0)
    assert set(archived(waiting)) == {PAIRED}  # the one with its record is not held back

    caplog.set_level(logging.INFO, logger="recarchive")
    over = make_settings(tmp_path, catalogue, contents, wait_s=0)
    second = run_ingest(over, once=True)
    assert (second.archived, second.awaiting_cdr, second.archived_without_record) == (1, 0, 1)
    assert sum(second.quarantined.values()) == 0
    from_key = archived(over)[LATE]
    assert from_key.facts_from_name
    assert from_key.call_id == LATE
    assert from_key.started_at == dt.datetime(2026, 3, 14, 9, 26, tzinfo=dt.UTC)
    assert from_key.direction is Direction.UNKNOWN
    assert (from_key.agent, from_key.queue, from_key.caller_number) == (None, None, None)
    assert from_key.reason_codes == ["other"]
    assert from_key.channels == 2
    assert not archived(over)[PAIRED].facts_from_name
    [note] = [r for r in caplog.records if r.getMessage() == "archived_without_contact_record"]
    assert vars(note)["contact_id"] == LATE
    left = contents.keys()
    assert contents.recording_key(LATE) in left  # no delete_after_archive


def test_ingest_once_exits_3_while_a_recording_waits_for_its_contact_record(
    contents: Drop, catalogue: str, tmp_path: Path
) -> None:
    make_settings(tmp_path, catalogue, contents, wait_s=300)
    config = str(tmp_path / "recarchive.toml")
    result = CliRunner().invoke(
        cli, ["--config", config, "ingest", "--once"], env=environment(), catch_exceptions=False
    )
    assert result.exit_code == 3, result.output
    assert "awaiting cdr 1 " in result.stdout
    assert "from name    0 " in result.stdout
    assert "1 recording(s) waiting for their CDR row or contact record" in result.stderr
    assert set(archived(load_settings(config, env=environment()))) == {PAIRED}


def test_a_contact_record_that_arrives_later_enriches_the_recording_once_audited(
    contents: Drop, catalogue: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path, catalogue, contents, wait_s=0)
    run_ingest(settings, once=True)
    before = archived(settings)
    old, untouched = before[LATE], before[PAIRED]
    assert (old.retention_rule, old.customer_match) == ("default", CustomerMatch.UNKNOWN)
    runtime = Runtime(settings)
    try:
        assert runtime.store.get_tags(old.object_key) == {"retention-class": "standard"}
    finally:
        runtime.close()

    caplog.set_level(logging.DEBUG, logger="recarchive")
    contents.put(contents.record_key(LATE), ctr(LATE, "INBOUND"))
    summary = run_ingest(settings, once=True)

    assert (summary.enriched, summary.archived, summary.awaiting_cdr) == (1, 0, 0)
    new = archived(settings)[LATE]
    assert new.id == old.id
    assert not new.facts_from_name
    assert new.direction is Direction.INBOUND
    assert (new.caller_number, new.called_number) == ("+358401234567", "+358201234000")
    assert (new.agent, new.queue) == ("agent.aalto", "Billing")
    assert (new.customer_id, new.customer_match) == ("C-1", CustomerMatch.MATCHED)
    assert new.reason_codes == ["billing"]
    assert new.retain_until == new.started_at + dt.timedelta(days=500)
    assert (new.retention_rule, new.retention_class) == ("billing-cases", "billing-cases")
    assert (new.started_at, new.object_key) == (old.started_at, old.object_key)
    assert archived(settings)[PAIRED].updated_at == untouched.updated_at
    runtime = Runtime(settings)
    try:
        assert runtime.store.get_tags(new.object_key) == {"retention-class": "billing-cases"}
    finally:
        runtime.close()

    [entry] = enriched_entries(settings)
    assert (entry.actor, entry.recording_id) == (ACTOR, new.id)
    assert entry.details["reasons"] == {"before": ["other"], "after": ["billing"]}
    assert new.linked_call_id == LATE  # the first contact of its chain: its own id
    assert "linked_call_id" in entry.details["changed"]
    assert entry.details["retain_until"]["after"] == new.retain_until.isoformat()
    assert {"agent", "queue", "customer", "reasons", "retain_until", "direction"} <= set(
        entry.details["changed"]
    )
    text = json.dumps(entry.details) + logged(caplog)
    for personal in PERSONAL:
        assert personal not in text, personal

    again = run_ingest(settings, once=True)  # a new process reads the record again
    assert (again.enriched, again.archived, again.duplicates) == (0, 0, 0)
    contents.put(contents.record_key(LATE, "_1"), ctr(LATE, "OUTBOUND"))  # delivered twice
    twice = run_ingest(settings, once=True)
    assert (twice.enriched, twice.archived, sum(twice.quarantined.values())) == (0, 0, 0)
    assert len(enriched_entries(settings)) == 1
    final = archived(settings)[LATE]
    assert (final.updated_at, final.direction) == (new.updated_at, Direction.INBOUND)


def test_a_late_contact_record_is_read_once_per_process(
    contents: Drop, catalogue: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, catalogue, contents, wait_s=0)
    run_ingest(settings, once=True)
    contents.put(contents.record_key(LATE), ctr(LATE, "INBOUND"))
    runtime = Runtime(settings)
    try:
        source = build_sources(settings)["connect"]
        assert isinstance(source, S3DropSource)
        done = {PAIRED: "done", LATE: "done"}

        def known(refs: Any) -> dict[str, str]:
            return {ref: done[ref] for ref in refs if ref in done}

        now = dt.datetime.now(dt.UTC)
        first = list(source.discover(now, known))
        unsettled = list(source.discover(now, known))  # the pass was not committed
        source.committed()
        settled = list(source.discover(now, known))
    finally:
        runtime.close()
    # With no wait, PAIRED's record (put after its recording) may be late too, for all the
    # source knows: handed over, the pipeline finds nothing of PAIRED's to enrich.
    late = {PAIRED, LATE}
    assert {item.call_id for item in first if isinstance(item, LateCdr)} == late
    assert {item.call_id for item in unsettled if isinstance(item, LateCdr)} == late
    assert settled == []


def test_a_malformed_late_record_is_reported_and_changes_nothing(
    contents: Drop, catalogue: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, catalogue, contents, wait_s=0)
    run_ingest(settings, once=True)
    old = archived(settings)[LATE]
    contents.put(contents.record_key(LATE), b'{"ContactId": "6b2e3d4c-0000-40')

    summary = run_ingest(settings, once=True)

    assert dict(summary.quarantined) == {"malformed_contact_record": 1}
    assert summary.enriched == 0
    same = archived(settings)[LATE]
    assert (same.updated_at, same.facts_from_name) == (old.updated_at, True)
    assert enriched_entries(settings) == []

    contents.put(contents.record_key(LATE, "_1"), ctr(LATE, "INBOUND"))  # a good copy at last
    fixed = run_ingest(settings, once=True)
    assert (fixed.enriched, sum(fixed.quarantined.values())) == (1, 0)
    assert archived(settings)[LATE].reason_codes == ["billing"]


def test_with_delete_after_archive_a_late_record_enriches_then_goes(
    contents: Drop, catalogue: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, catalogue, contents, wait_s=0, delete=True)
    first = run_ingest(settings, once=True)
    assert (first.archived, first.archived_without_record) == (2, 1)
    assert contents.keys() == set()  # both recordings and PAIRED's record deleted

    contents.put(contents.record_key(LATE), ctr(LATE, "INBOUND"))
    summary = run_ingest(settings, once=True)

    assert summary.enriched == 1
    assert archived(settings)[LATE].reason_codes == ["billing"]
    assert contents.keys() == set(), "the late contact record outlived its use"
