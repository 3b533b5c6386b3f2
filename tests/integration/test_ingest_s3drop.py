"""Ingest from an Amazon Connect-style S3 drop, end to end, against the real S3 server.

Each test fills its own prefix of one drop bucket (fresh for this module)
with stereo WAV recordings and contact records, then runs the pipeline the
way ``recarchive ingest --once`` does. The archive itself uses the
filesystem store. Skipped without ``RECARCHIVE_S3_ENDPOINT_URL`` unless
``RECARCHIVE_TEST_REQUIRE_S3=1``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from recarchive.catalogue.database import create_catalogue_engine
from recarchive.catalogue.intake import QuarantineEntry, WorkItem
from recarchive.catalogue.migrate import upgrade_schema
from recarchive.catalogue.models import Direction, Recording
from recarchive.config import Settings, load_settings
from recarchive.ingest.services import Pipeline
from recarchive.ingest.sources import build_sources
from recarchive.ingest.tasks import run_ingest
from recarchive.runtime import Runtime
from recarchive.storage.s3 import S3ObjectStore
from tests.integration.test_store_contract import empty_bucket, raw_client, s3_settings

pytestmark = pytest.mark.s3

INBOUND = "5a1d2c3b-0000-4000-8000-000000000001"
OUTBOUND = "5a1d2c3b-0000-4000-8000-000000000002"
MALFORMED = "5a1d2c3b-0000-4000-8000-000000000003"
LATE = "5a1d2c3b-0000-4000-8000-000000000004"
UNRECORDED = "5a1d2c3b-0000-4000-8000-000000000005"
DAY = "2026/03/14"
RULES = """
[[reasons.rules]]
code = "billing"
field = "attribute"
attribute = "reason"
pattern = "^billing$"
"""


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def stereo(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """One second of 8 kHz stereo: a different tone on each channel."""
    path = tmp_path_factory.mktemp("audio") / "stereo.wav"
    source = "aevalsrc=sin(440*2*PI*t)|sin(660*2*PI*t):s=8000:d=1"
    ffmpeg("-f", "lavfi", "-i", source, "-c:a", "pcm_s16le", str(path))
    return path.read_bytes()


@pytest.fixture(scope="module")
def drop() -> Iterator[S3ObjectStore]:
    """A fresh drop bucket for this module, deleted with its content at the end."""
    settings = s3_settings()
    store = S3ObjectStore(bucket=f"recarchive-drop-{secrets.token_hex(6)}", **settings)
    store.create()
    yield store
    client = raw_client(settings)
    empty_bucket(client, store.bucket)
    client.delete_bucket(Bucket=store.bucket)


def ctr(contact: str, method: str, *, recorded: bool = True, **extra: Any) -> bytes:
    customer, system = "+358401234567", "+358201234000"
    if method == "OUTBOUND":
        customer = "0509998888"
    record: dict[str, Any] = {
        "ContactId": contact,
        "InitiationMethod": method,
        "InitiationTimestamp": "2026-03-14T09:26:53Z",
        "DisconnectTimestamp": "2026-03-14T09:31:00Z",
        "CustomerEndpoint": {"Address": customer, "Type": "TELEPHONE_NUMBER"},
        "SystemEndpoint": {"Address": system, "Type": "TELEPHONE_NUMBER"},
        "Agent": {"Username": "agent.aalto"},
        "Queue": {"Name": "Billing"},
        "Attributes": {"reason": "billing", "language": "fi"},
        "Recording": {"Location": f"drop/{contact}", "Status": "AVAILABLE", "Type": "AUDIO"}
        if recorded
        else None,
        **extra,
    }
    return json.dumps(record).encode()


class Drop:
    """One test's corner of the drop bucket."""

    def __init__(self, store: S3ObjectStore, prefix: str) -> None:
        self.store, self.prefix = store, prefix

    def recording_key(self, contact: str) -> str:
        return f"{self.prefix}CallRecordings/{DAY}/{contact}_20260314T09:26_UTC.wav"

    def record_key(self, contact: str, suffix: str = "") -> str:
        return f"{self.prefix}ContactTraceRecords/{DAY}/{contact}{suffix}.json"

    def put(self, key: str, data: bytes) -> None:
        self.store.put(key, io.BytesIO(data), size=len(data))

    def keys(self) -> set[str]:
        return {info.key for info in self.store.list(self.prefix)}


@pytest.fixture
def contents(drop: S3ObjectStore, stereo: bytes) -> Drop:
    corner = Drop(drop, f"t-{secrets.token_hex(4)}/connect/")
    for contact in (INBOUND, OUTBOUND, MALFORMED, LATE):
        corner.put(corner.recording_key(contact), stereo)
    corner.put(corner.record_key(INBOUND), ctr(INBOUND, "INBOUND"))
    corner.put(corner.record_key(INBOUND, "_1"), ctr(INBOUND, "INBOUND"))
    corner.put(corner.record_key(OUTBOUND), ctr(OUTBOUND, "OUTBOUND"))
    corner.put(corner.record_key(MALFORMED), b'{"ContactId": "5a1d2c3b-0000-40')
    corner.put(corner.record_key(UNRECORDED), ctr(UNRECORDED, "INBOUND", recorded=False))
    corner.put(f"{corner.prefix}CallRecordings/{DAY}/not-a-contact_20260314T09:26_UTC.wav", stereo)
    return corner


@pytest.fixture
def catalogue(empty_catalogue_url: str) -> str:
    engine = create_catalogue_engine(empty_catalogue_url)
    upgrade_schema(engine)
    engine.dispose()
    return empty_catalogue_url


def make_settings(tmp_path: Path, catalogue: str, corner: Drop, *, delete: bool) -> Settings:
    s3 = s3_settings()
    config = tmp_path / "recarchive.toml"
    config.write_text(
        f'[general]\ndata_dir = "{tmp_path / "var"}"\n'
        f'[catalogue]\nurl = "{catalogue}"\n'
        '[storage]\nbackend = "filesystem"\n'
        "[ingest]\nsettle_s = 0\nlease_s = 60\n"
        f"{RULES}"
        f'[[sources]]\nkind = "s3drop"\nname = "connect"\nbucket = "{corner.store.bucket}"\n'
        f'prefix = "{corner.prefix}"\nendpoint_url = "{s3["endpoint_url"]}"\n'
        f'region = "{s3["region"]}"\ndelete_after_archive = {str(delete).lower()}\n',
        encoding="utf-8",
    )
    env = {
        "RECARCHIVE_SOURCE_CONNECT_ACCESS_KEY_ID": s3["access_key_id"],
        "RECARCHIVE_SOURCE_CONNECT_SECRET_ACCESS_KEY": s3["secret_access_key"],
    }
    settings = load_settings(config, env=env)
    Runtime(settings).store.create()
    return settings


def rows(settings: Settings, table: type[Recording] | type[QuarantineEntry]) -> list[Any]:
    runtime = Runtime(settings)
    try:
        with runtime.sessions() as session:
            found = list(session.scalars(select(table)))
            for row in found:
                _ = row.reasons if isinstance(row, Recording) else None
            return found
    finally:
        runtime.close()


def test_drop_pass_archives_paired_recordings_and_waits_for_late_records(
    contents: Drop, catalogue: str, tmp_path: Path, stereo: bytes
) -> None:
    settings = make_settings(tmp_path, catalogue, contents, delete=False)
    before = contents.keys()

    summary = run_ingest(settings, once=True)

    assert summary.archived == 2
    assert summary.duplicates == 1  # the second copy of INBOUND's contact record
    assert dict(summary.quarantined) == {"malformed_contact_record": 1, "invalid_name": 1}
    archived = {row.source_ref: row for row in rows(settings, Recording)}
    assert set(archived) == {INBOUND, OUTBOUND}
    inbound, outbound = archived[INBOUND], archived[OUTBOUND]
    assert inbound.direction is Direction.INBOUND
    assert (inbound.caller_number, inbound.called_number) == ("+358401234567", "+358201234000")
    assert (inbound.agent, inbound.queue, inbound.call_id) == ("agent.aalto", "Billing", INBOUND)
    assert inbound.reason_codes == ["billing"]
    assert inbound.started_at == dt.datetime(2026, 3, 14, 9, 26, 53, tzinfo=dt.UTC)
    assert outbound.direction is Direction.OUTBOUND
    assert (outbound.caller_number, outbound.called_number) == ("+358201234000", "+358509998888")
    assert {(r.channels, r.format, r.codec) for r in archived.values()} == {(2, "wav", "pcm_s16le")}
    assert {r.sha256 for r in archived.values()} == {hashlib.sha256(stereo).hexdigest()}
    entries = {e.source_ref: e.reason for e in rows(settings, QuarantineEntry)}
    assert entries[contents.record_key(MALFORMED)] == "malformed_contact_record"
    assert "recording_without_contact_record" not in entries.values()
    assert contents.keys() == before, "deleted from the drop without delete_after_archive"
    runtime = Runtime(settings)
    with runtime.sessions() as session:
        [item] = session.scalars(select(WorkItem).where(WorkItem.source_ref == INBOUND))
    runtime.close()
    assert item.duplicates == 1

    contents.put(contents.record_key(LATE), ctr(LATE, "CALLBACK"))
    again = run_ingest(settings, once=True)

    assert again.archived == 1
    assert sum(again.quarantined.values()) == 0
    late = {row.source_ref: row for row in rows(settings, Recording)}[LATE]
    assert late.direction is Direction.OUTBOUND
    assert late.channels == 2


def test_delete_after_archive_removes_the_recording_and_every_record_copy(
    contents: Drop, catalogue: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, catalogue, contents, delete=True)

    run_ingest(settings, once=True)

    left = contents.keys()
    for contact in (INBOUND, OUTBOUND):
        assert contents.recording_key(contact) not in left
    assert contents.record_key(INBOUND) not in left
    assert contents.record_key(INBOUND, "_1") not in left
    assert contents.record_key(OUTBOUND) not in left
    for kept in (contents.recording_key(MALFORMED), contents.record_key(MALFORMED)):
        assert kept in left, "a quarantined input was deleted"
    assert contents.recording_key(LATE) in left
    assert contents.record_key(UNRECORDED) in left


def test_after_a_day_a_record_without_recording_is_reported_once_the_rest_archived(
    contents: Drop, catalogue: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, catalogue, contents, delete=False)
    contents.put(
        contents.record_key("5a1d2c3b-0000-4000-8000-000000000006"),
        ctr("5a1d2c3b-0000-4000-8000-000000000006", "INBOUND"),
    )
    runtime = Runtime(settings)
    pipeline = Pipeline(runtime, build_sources(settings))
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(hours=25)

    first = pipeline.discover(now=tomorrow)
    second = pipeline.discover(now=tomorrow)
    runtime.close()

    assert first.quarantined["contact_record_without_recording"] == 1  # not UNRECORDED
    assert "recording_without_contact_record" not in first.quarantined
    assert first.discovered == 5  # INBOUND twice, OUTBOUND, and MALFORMED and LATE from the key
    assert first.awaiting_cdr == 0
    assert sum(second.quarantined.values()) == 0
    entries = {e.source_ref: e.reason for e in rows(settings, QuarantineEntry)}
    assert contents.recording_key(LATE) not in entries
