"""A spool recording whose CDR row comes late: it waits ``cdr_wait_s``, is archived from its
name, and the row that arrives afterwards enriches it (audited, retention recomputed).

Real ffmpeg-made audio, real catalogues (SQLite and PostgreSQL), the filesystem store.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from recarchive.access.models import AuditEvent
from recarchive.catalogue.database import create_catalogue_engine, transaction
from recarchive.catalogue.intake import QuarantineEntry
from recarchive.catalogue.migrate import upgrade_schema
from recarchive.catalogue.models import CustomerMatch, Direction, Recording
from recarchive.config import Settings, load_settings
from recarchive.ingest import queue
from recarchive.ingest.enrichment import ACTION, ACTOR
from recarchive.ingest.interfaces import Problem
from recarchive.ingest.tasks import run_ingest
from recarchive.runtime import Runtime
from tests.integration.test_ingest_spool import (
    DAY,
    add_customers,
    audio,
    cdr_line,
    make_settings,
    put,
)

__all__ = ["audio"]  # a fixture, imported to be found

FILESYSTEM = '[storage]\nbackend = "filesystem"\n'
#: A FreePBX name whose type the archive does not know (no direction) and whose caller
#: field holds no number: the name alone tells no customer, no queue, no agent.
LATE = "ondemand-0201234000-anonymous-20260314-101500-1742210100.101.wav"
LATE_ID = "1742210100.101"
#: A recording whose CDR row is there from the start.
WITH_ROW = "in-0201234000-0509998888-20260314-112653-1742211234.117.wav"
WITH_ROW_ID = "1742211234.117"


def late_row() -> str:
    return cdr_line(
        LATE_ID,
        "2026-03-14 10:15:00",
        src="0401234567",
        dst="0201234000",
        context="from-pstn",
        channel="PJSIP/trunk-1",
        dstchannel="PJSIP/2001-2",
        userfield="reason=moving",
    )


@pytest.fixture
def world(tmp_path: Path, audio: dict[str, Path]) -> Path:
    """A spool with LATE (no CDR row yet, just written) and WITH_ROW (its row in Master.csv)."""
    day = tmp_path / "monitor" / DAY
    put(day / WITH_ROW, audio["pcm"])
    late = put(day / LATE, audio["pcm"])
    written = time.time() - 60  # past the settle time, within cdr_wait_s
    os.utime(late, (written, written))
    cdr = tmp_path / "cdr" / "Master.csv"
    cdr.parent.mkdir()
    row = cdr_line(
        WITH_ROW_ID,
        "2026-03-14 11:26:53",
        src="0509998888",
        dst="0201234000",
        context="from-pstn",
        channel="PJSIP/trunk-3",
        dstchannel="PJSIP/2002-4",
        data="602,t",
    )
    cdr.write_text(row + "\n", encoding="utf-8")
    return tmp_path


def settings_for(world: Path, catalogue_url: str, wait_s: float) -> Settings:
    make_settings(world, catalogue_url, FILESYSTEM)
    config = world / "recarchive.toml"
    with config.open("a", encoding="utf-8") as handle:
        handle.write(f"cdr_wait_s = {wait_s}\n")  # the last table is the spool source
    return load_settings(config, env={})


@pytest.fixture
def catalogue(world: Path, empty_catalogue_url: str) -> str:
    engine = create_catalogue_engine(empty_catalogue_url)
    upgrade_schema(engine)
    engine.dispose()
    runtime = Runtime(settings_for(world, empty_catalogue_url, 0))
    runtime.store.create()
    add_customers(
        runtime,
        {"C-1": ("Asiakas Yksi", "+358401234567"), "C-2": ("Asiakas Kaksi", "+358509998888")},
    )
    runtime.close()
    return empty_catalogue_url


def archived(settings: Settings) -> dict[str, Recording]:
    runtime = Runtime(settings)
    try:
        with runtime.sessions() as session:
            rows = session.scalars(select(Recording)).all()
            for row in rows:
                _ = row.reasons, row.candidates
            return {Path(row.source_ref).name: row for row in rows}
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


def test_a_recording_without_its_row_waits_then_is_archived_from_its_name(
    world: Path, catalogue: str
) -> None:
    settings = settings_for(world, catalogue, 300)
    first = run_ingest(settings, once=True)
    assert first.awaiting_cdr == 1
    assert set(archived(settings)) == {WITH_ROW}  # the one with its row is not held back
    assert (world / "monitor" / DAY / LATE).exists()

    written = time.time() - 400  # older than cdr_wait_s now: no row is coming in time
    os.utime(world / "monitor" / DAY / LATE, (written, written))
    second = run_ingest(settings, once=True)
    assert (second.awaiting_cdr, second.archived) == (0, 1)
    from_name = archived(settings)[LATE]
    assert from_name.facts_from_name
    assert from_name.call_id == LATE_ID
    assert from_name.reason_codes == ["other"]
    assert from_name.agent is None
    assert not archived(settings)[WITH_ROW].facts_from_name


def test_no_wait_archives_from_the_name_at_once(world: Path, catalogue: str) -> None:
    settings = settings_for(world, catalogue, 0)
    summary = run_ingest(settings, once=True)
    assert (summary.awaiting_cdr, summary.archived) == (0, 2)
    assert archived(settings)[LATE].facts_from_name


def test_a_row_that_arrives_later_enriches_the_recording_once_audited(
    world: Path, catalogue: str
) -> None:
    settings = settings_for(world, catalogue, 0)
    run_ingest(settings, once=True)
    before = archived(settings)
    old, untouched = before[LATE], before[WITH_ROW]
    assert old.direction is Direction.UNKNOWN
    assert old.customer_match is CustomerMatch.UNKNOWN
    assert (old.retention_rule, old.retention_class) == ("default", "standard")
    runtime = Runtime(settings)
    try:
        assert runtime.store.get_tags(old.object_key) == {"retention-class": "standard"}
        with transaction(runtime.sessions) as session:  # reported missing before (an old run)
            queue.record_problem(
                session,
                "pbx",
                Problem(f"call:{LATE_ID}", "cdr_without_recording", "no recording"),
            )
    finally:
        runtime.close()

    with (world / "cdr" / "Master.csv").open("a", encoding="utf-8") as handle:
        handle.write(late_row() + "\n")  # Asterisk writes the row at last
    summary = run_ingest(settings, once=True)

    assert summary.enriched == 1
    assert summary.archived == 0
    after = archived(settings)
    new = after[LATE]
    assert new.id == old.id
    assert not new.facts_from_name
    assert new.direction is Direction.INBOUND
    assert new.caller_number == "+358401234567"
    assert new.agent == "2001"
    assert new.queue == "601"
    assert (new.customer_id, new.customer_match) == ("C-1", CustomerMatch.MATCHED)
    assert new.reason_codes == ["billing", "moving"]
    assert new.retain_until == new.started_at + dt.timedelta(days=500)
    assert (new.retention_rule, new.retention_class) == ("moving-cases", "moving-cases")
    assert new.started_at == old.started_at
    assert new.object_key == old.object_key
    assert after[WITH_ROW].updated_at == untouched.updated_at  # came with its row: untouched

    runtime = Runtime(settings)
    try:
        assert runtime.store.get_tags(new.object_key) == {"retention-class": "moving-cases"}
        with runtime.sessions() as session:
            report = session.scalars(
                select(QuarantineEntry).where(QuarantineEntry.source_ref == f"call:{LATE_ID}")
            ).one()
    finally:
        runtime.close()
    assert report.resolved_at is not None
    assert report.resolution == "recording_arrived"

    [entry] = enriched_entries(settings)
    assert entry.actor == ACTOR
    assert entry.recording_id == new.id
    assert entry.details["reasons"] == {"before": ["other"], "after": ["billing", "moving"]}
    assert entry.details["retain_until"]["before"] == old.retain_until.isoformat()
    assert entry.details["retain_until"]["after"] == new.retain_until.isoformat()
    assert {"agent", "queue", "customer", "reasons", "retain_until", "direction"} <= set(
        entry.details["changed"]
    )
    text = json.dumps({k: v for k, v in entry.details.items() if k != "recording_id"})
    for personal in ("401234567", "0201234000", "Asiakas", "C-1", "2001"):
        assert personal not in text, personal

    again = run_ingest(settings, once=True)  # the row is still in Master.csv: nothing more
    assert (again.enriched, again.archived) == (0, 0)
    assert len(enriched_entries(settings)) == 1
    assert archived(settings)[LATE].updated_at == new.updated_at


def test_a_recording_that_came_with_its_row_is_never_enriched(world: Path, catalogue: str) -> None:
    settings = settings_for(world, catalogue, 300)
    run_ingest(settings, once=True)  # WITH_ROW archived; LATE waits
    first = archived(settings)[WITH_ROW]
    assert not first.facts_from_name
    assert first.reason_codes == ["outage"]

    # Every later run reads Master.csv again: WITH_ROW's row matches no file any more.
    for _ in range(2):
        summary = run_ingest(settings, once=True)
        assert summary.enriched == 0
    assert archived(settings)[WITH_ROW].updated_at == first.updated_at
    assert enriched_entries(settings) == []
