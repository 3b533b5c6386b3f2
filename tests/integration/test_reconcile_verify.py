"""Reconciliation and integrity checks on both catalogues, with the filesystem store and S3.

The S3 server cannot backdate an object, so "old" orphans are made by
running reconciliation with a clock two days ahead (``now=``).
"""

# The ``runtime`` fixture comes from test_retention; pytest hands it over by parameter name,
# which pyflakes sees as redefining the import.
# ruff: noqa: F811

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select

from recarchive.access.models import AuditEvent
from recarchive.catalogue.database import create_catalogue_engine, transaction, utcnow
from recarchive.catalogue.migrate import upgrade_schema
from recarchive.catalogue.models import Recording, RecordingStatus
from recarchive.config import load_settings
from recarchive.errors import ObjectNotFound
from recarchive.retention import integrity, reconcile
from recarchive.retention.expiry import expire_recordings
from recarchive.retention.holds import place_hold
from recarchive.retention.integrity import verify_integrity
from recarchive.retention.models import Tombstone
from recarchive.retention.reconcile import reconcile_store
from recarchive.retention.tasks import NIGHTLY_ACTION, run_nightly_if_due
from recarchive.runtime import Runtime
from recarchive.storage.filesystem import FilesystemObjectStore
from recarchive.storage.interfaces import ObjectInfo, ObjectReader
from tests.actors import staff
from tests.integration.test_retention import DAY, T0, add_recording, runtime, state  # noqa: F401
from tests.integration.test_store_sweep import abandon_write, backend_store, leftovers

CORRUPT = b"not the recording that was archived"


def audit(runtime: Runtime) -> list[AuditEvent]:
    with runtime.sessions() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def tombstone(runtime: Runtime, recording_id: uuid.UUID) -> Tombstone:
    with runtime.sessions() as session:
        return session.get_one(Tombstone, recording_id)


def put_orphan(runtime: Runtime) -> str:
    key = f"recordings/2025/01/11/{uuid.uuid4()}.wav"
    runtime.store.put(key, io.BytesIO(b"stored, never catalogued"))
    return key


class WrappedStore:
    """The real store, with one method replaced by the test."""

    def __init__(self, store: Any, **overrides: Any) -> None:
        self._store = store
        self.__dict__.update(overrides)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


# --- reconcile: rows without objects ------------------------------------------


def test_an_object_gone_past_retain_until_was_the_backstop(runtime: Runtime) -> None:
    gone = add_recording(runtime, retain_until=T0)
    kept = add_recording(runtime, retain_until=T0)
    runtime.store.delete(gone.object_key)
    report = reconcile_store(runtime)
    assert (report.checked_objects, report.checked_rows) == (1, 2)
    assert (report.tombstoned_backstop, report.backstop_ids) == (1, [str(gone.id)])
    assert (report.tombstoned_missing, report.held_missing) == (0, 0)
    assert not report.needs_attention
    assert state(runtime) == ({kept.id}, {gone.id}, {kept.object_key})
    stone = tombstone(runtime, gone.id)
    assert (stone.rule, stone.deleted_by) == ("bucket-lifecycle", "reconcile")
    assert (stone.object_key, stone.sha256, stone.retain_until) == (
        gone.object_key,
        gone.sha256,
        gone.retain_until,
    )
    events = audit(runtime)
    assert [(e.action, e.recording_id) for e in events] == [
        ("reconcile.tombstone", gone.id),
        ("reconcile.run", None),
    ]
    assert events[0].details["rule"] == "bucket-lifecycle"
    again = reconcile_store(runtime)
    assert (again.tombstoned_backstop, again.checked_rows) == (0, 1)


def test_an_object_lost_before_its_time_is_reported(runtime: Runtime) -> None:
    lost = add_recording(runtime, retain_until=utcnow() + 300 * DAY)
    runtime.store.delete(lost.object_key)
    report = reconcile_store(runtime)
    assert (report.tombstoned_missing, report.missing_ids) == (1, [str(lost.id)])
    assert report.tombstoned_backstop == 0
    assert report.needs_attention
    assert tombstone(runtime, lost.id).rule == "missing-object"
    assert state(runtime) == (set(), {lost.id}, set())


def test_a_held_recording_whose_object_is_gone_is_reported_apart(runtime: Runtime) -> None:
    held = add_recording(runtime, retain_until=T0)
    place_hold(
        runtime, case_ref="D-1", reason="dispute", actor=staff("maija"), recording_ids=[held.id]
    )
    runtime.store.delete(held.object_key)
    report = reconcile_store(runtime)
    assert (report.held_missing, report.held_missing_ids) == (1, [str(held.id)])
    assert (report.tombstoned_backstop, report.tombstoned_missing) == (0, 0)
    assert report.needs_attention
    assert tombstone(runtime, held.id).rule == "missing-object"


def test_a_deleting_row_without_object_finishes_the_expiry(runtime: Runtime) -> None:
    recording = add_recording(runtime, retain_until=T0)
    with transaction(runtime.sessions) as session:  # expiry deleted the object, then crashed
        session.get_one(Recording, recording.id).status = RecordingStatus.DELETING
    runtime.store.delete(recording.object_key)
    report = reconcile_store(runtime)
    assert (report.finished_expiry, report.tombstoned_backstop) == (1, 0)
    assert not report.needs_attention
    assert tombstone(runtime, recording.id).rule == "retention:default"


def test_a_row_whose_object_the_listing_missed_is_left_alone(runtime: Runtime) -> None:
    recording = add_recording(runtime, retain_until=T0)
    real = runtime.store

    def listing(prefix: str = "") -> Iterator[ObjectInfo]:  # stored after the listing passed
        return (i for i in real.list(prefix) if i.key != recording.object_key)

    runtime.__dict__["store"] = WrappedStore(real, list=listing)
    report = reconcile_store(runtime)
    runtime.__dict__["store"] = real
    assert report.tombstoned_backstop == 0
    assert state(runtime) == ({recording.id}, set(), {recording.object_key})


# --- reconcile: objects without rows ------------------------------------------


def test_orphans_young_kept_old_reported_deleted_only_when_asked(runtime: Runtime) -> None:
    kept = add_recording(runtime, retain_until=T0)
    orphan = put_orphan(runtime)
    runtime.store.put("quarantine/elsewhere.wav", io.BytesIO(b"not under recordings/"))
    young = reconcile_store(runtime, delete_orphans=True)
    assert (young.young_orphans, young.orphans, young.orphans_deleted) == (1, 0, 0)
    later = utcnow() + 2 * DAY
    report = reconcile_store(runtime, now=later)
    assert (report.orphans, report.orphan_keys, report.young_orphans) == (1, [orphan], 0)
    assert (report.orphans_deleted, report.needs_attention) == (0, False)
    assert runtime.store.exists(orphan)
    report = reconcile_store(runtime, now=later, delete_orphans=True)
    assert (report.orphans, report.orphans_deleted) == (1, 1)
    assert state(runtime) == ({kept.id}, set(), {kept.object_key})
    assert runtime.store.exists("quarantine/elsewhere.wav")
    deletions = [e.details for e in audit(runtime) if e.action == "reconcile.delete"]
    assert deletions == [{"orphans": [orphan], "resurrected": []}]


def test_a_deleted_object_that_comes_back_is_reported(runtime: Runtime) -> None:
    recording = add_recording(runtime, retain_until=T0)
    assert expire_recordings(runtime, now=T0).deleted == 1
    runtime.store.put(recording.object_key, io.BytesIO(b"restored from an old backup"))
    report = reconcile_store(runtime)
    assert (report.resurrected, report.resurrected_keys) == (1, [recording.object_key])
    assert (report.orphans, report.young_orphans, report.resurrected_deleted) == (0, 0, 0)
    assert report.needs_attention
    assert runtime.store.exists(recording.object_key)
    report = reconcile_store(runtime, delete_orphans=True)
    assert report.resurrected_deleted == 1
    assert not runtime.store.exists(recording.object_key)


def test_dry_run_changes_nothing(runtime: Runtime) -> None:
    gone = add_recording(runtime, retain_until=T0)
    lost = add_recording(runtime, retain_until=utcnow() + 300 * DAY)
    for recording in (gone, lost):
        runtime.store.delete(recording.object_key)
    put_orphan(runtime)
    before = state(runtime)
    report = reconcile_store(runtime, now=utcnow() + 2 * DAY, delete_orphans=True, dry_run=True)
    assert (report.tombstoned_backstop, report.tombstoned_missing, report.orphans) == (1, 1, 1)
    assert report.orphans_deleted == 0
    assert state(runtime) == before
    assert audit(runtime) == []


def test_small_batches_cover_everything(
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reconcile, "BATCH", 2)
    recordings = [add_recording(runtime, retain_until=T0) for _ in range(5)]
    for recording in recordings[:3]:
        runtime.store.delete(recording.object_key)
    for _ in range(3):
        put_orphan(runtime)
    report = reconcile_store(runtime, now=utcnow() + 2 * DAY, delete_orphans=True)
    assert (report.checked_objects, report.checked_rows) == (5, 5)
    assert (report.tombstoned_backstop, report.orphans, report.orphans_deleted) == (3, 3, 3)
    assert state(runtime) == (
        {r.id for r in recordings[3:]},
        {r.id for r in recordings[:3]},
        {r.object_key for r in recordings[3:]},
    )


# --- reconcile: what interrupted writes left ------------------------------------

#: A put of a large recording, stopped after 3 MiB until it is killed.
KILLED_PUT = textwrap.dedent(
    """
    import io, sys
    from recarchive.storage.filesystem import FilesystemObjectStore

    class Telephony(io.RawIOBase):
        served = 0
        def readable(self):
            return True
        def readinto(self, buffer):
            if self.served == 3:
                print("written", flush=True)
                sys.stdin.read()  # until killed
            self.served += 1
            buffer[:] = b"U" * len(buffer)
            return len(buffer)

    store = FilesystemObjectStore(sys.argv[1])
    store.put("recordings/2025/01/10/killed.wav", io.BufferedReader(Telephony(), 1024 * 1024))
    """
)


def test_a_put_killed_mid_write_is_swept_by_reconcile_once_old_enough(
    cli: tuple[Runtime, Any],
) -> None:
    runtime, _ = cli
    root = runtime.settings.storage_root
    with subprocess.Popen(
        [sys.executable, "-c", KILLED_PUT, str(root)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) as writer:  # fmt: skip
        try:
            assert writer.stdout is not None
            assert writer.stdout.readline() == "written\n"
        finally:
            writer.kill()  # SIGKILL: no cleanup runs
            writer.wait(30)
    assert writer.returncode == -9
    [temp] = (root / ".recarchive" / "tmp").iterdir()
    assert temp.name.startswith("put-")
    assert temp.read_bytes() == b"U" * 3 * 1024 * 1024  # a copy of the audio, in no object
    assert state(runtime) == (set(), set(), set())

    young = reconcile_store(runtime)  # it may be a write still at work
    assert (young.swept, young.swept_bytes) == (0, 0)
    assert temp.exists()

    later = utcnow() + dt.timedelta(hours=25)  # past storage.abandoned_after_hours (24)
    dry = reconcile_store(runtime, now=later, dry_run=True)
    assert (dry.swept, dry.swept_bytes) == (1, 3 * 1024 * 1024)
    assert temp.exists()
    report = reconcile_store(runtime, now=later)
    assert (report.swept, report.swept_bytes) == (1, 3 * 1024 * 1024)
    assert not report.needs_attention
    assert list((root / ".recarchive" / "tmp").iterdir()) == []
    run = [e.details for e in audit(runtime) if e.action == "reconcile.run"][-1]
    assert (run["swept"], run["swept_bytes"]) == (1, 3 * 1024 * 1024)


def test_temporary_audio_a_dead_process_left_in_the_work_directory_is_swept(
    runtime: Runtime, tmp_path: Path
) -> None:
    work = runtime.settings.work_dir
    (work / "nested").mkdir(parents=True, exist_ok=True)
    stale = work / "download-1.wav"
    stale.write_bytes(b"A" * 4096)
    old_transcode = work / "nested" / "play-2.opus.partial"
    old_transcode.write_bytes(b"B" * 1024)
    fresh = work / "download-3.wav"  # an operation still writing it
    outside = tmp_path / "elsewhere.wav"
    outside.write_bytes(b"C" * 10)
    (work / "link.wav").symlink_to(outside)
    day_ago = (utcnow() - dt.timedelta(hours=30)).timestamp()
    for path in (stale, old_transcode):
        os.utime(path, (day_ago, day_ago))
    fresh.write_bytes(b"D" * 100)

    dry = reconcile_store(runtime, dry_run=True)
    assert (dry.swept, dry.swept_bytes) == (2, 4096 + 1024)
    assert stale.exists()
    report = reconcile_store(runtime)
    assert (report.swept, report.swept_bytes) == (2, 4096 + 1024)
    assert not stale.exists()
    assert not old_transcode.exists()
    assert fresh.exists()
    assert (work / "link.wav").is_symlink()
    assert outside.read_bytes() == b"C" * 10


def test_the_nightly_job_sweeps_and_records_it(runtime: Runtime) -> None:
    expected = abandon_write(runtime.store)
    assert leftovers(runtime.store) > 0
    night = utcnow() + 2 * DAY
    assert run_nightly_if_due(runtime, now=night) is not None
    assert leftovers(runtime.store) == 0
    [run] = [e.details for e in audit(runtime) if e.action == NIGHTLY_ACTION]
    assert (run["reconcile"]["swept"], run["reconcile"]["swept_bytes"]) == (
        expected.count,
        expected.size_bytes,
    )


# --- verify -------------------------------------------------------------------


def test_verify_records_a_corrupted_and_a_missing_object_and_repairs_nothing(
    runtime: Runtime,
) -> None:
    good = add_recording(runtime, retain_until=T0)
    bad = add_recording(runtime, retain_until=T0)
    lost = add_recording(runtime, retain_until=T0)
    runtime.store.put(bad.object_key, io.BytesIO(CORRUPT))
    runtime.store.delete(lost.object_key)
    before = state(runtime)
    report = verify_integrity(runtime, all_=True)
    assert (report.checked, report.ok, report.mismatched, report.missing) == (3, 1, 1, 1)
    assert (report.mismatched_ids, report.missing_ids) == ([str(bad.id)], [str(lost.id)])
    assert report.bytes_read == good.size_bytes + len(CORRUPT)
    assert not report.intact
    assert state(runtime) == before
    with runtime.store.get(bad.object_key) as reader:
        assert reader.read() == CORRUPT
    trail = audit(runtime)
    assert trail[-1].action == "integrity.verified"
    events = {e.action: e for e in trail}
    assert sorted(events) == ["integrity.mismatch", "integrity.missing", "integrity.verified"]
    mismatch, missing = events["integrity.mismatch"], events["integrity.missing"]
    assert mismatch.recording_id == bad.id
    assert mismatch.details["expected_sha256"] == bad.sha256
    assert mismatch.details["actual_sha256"] == hashlib.sha256(CORRUPT).hexdigest()
    assert missing.recording_id == lost.id
    assert (missing.details["expected_sha256"], missing.details["actual_sha256"]) == (
        lost.sha256,
        None,
    )
    summary = events["integrity.verified"].details
    assert (summary["checked"], summary["mismatched"], summary["missing"]) == (3, 1, 1)


def test_verify_sample_checks_at_most_n(runtime: Runtime) -> None:
    for _ in range(4):
        add_recording(runtime, retain_until=T0)
    assert verify_integrity(runtime, sample=2).checked == 2
    report = verify_integrity(runtime, sample=10)
    assert (report.checked, report.ok, report.intact) == (4, 4, True)
    with pytest.raises(ValueError, match="one of them"):
        verify_integrity(runtime)
    with pytest.raises(ValueError, match="one of them"):
        verify_integrity(runtime, sample=2, all_=True)


def test_verify_all_pages_through_active_recordings_only(
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(integrity, "BATCH", 2)
    recordings = [add_recording(runtime, retain_until=T0) for _ in range(5)]
    with transaction(runtime.sessions) as session:
        session.get_one(Recording, recordings[0].id).status = RecordingStatus.DELETING
    report = verify_integrity(runtime, all_=True)
    assert (report.checked, report.ok) == (4, 4)


def test_a_recording_deleted_while_verified_is_no_finding(runtime: Runtime) -> None:
    recording = add_recording(runtime, retain_until=T0)
    real = runtime.store

    def get(key: str, **kwargs: Any) -> ObjectReader:  # expiry wins the race
        if key == recording.object_key:
            with transaction(runtime.sessions) as session:
                session.execute(delete(Recording).where(Recording.id == recording.id))
            real.delete(key)
            raise ObjectNotFound(key)
        reader: ObjectReader = real.get(key, **kwargs)
        return reader

    runtime.__dict__["store"] = WrappedStore(real, get=get)
    report = verify_integrity(runtime, all_=True)
    runtime.__dict__["store"] = real
    assert (report.checked, report.missing, report.intact) == (0, 0, True)


# --- the commands, as a user runs them (SQLite, filesystem) --------------------


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[tuple[Runtime, Any]]:
    url = f"sqlite:///{tmp_path / 'catalogue.db'}"
    engine = create_catalogue_engine(url)
    upgrade_schema(engine)
    engine.dispose()
    env = {"RECARCHIVE_GENERAL_DATA_DIR": str(tmp_path / "var"), "RECARCHIVE_CATALOGUE_URL": url}
    runtime = Runtime(load_settings(env=env))
    runtime.store.create()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("RECARCHIVE_", "AWS_"))}
        return subprocess.run(
            [sys.executable, "-m", "recarchive", *args],
            cwd=tmp_path,
            env={**clean, **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    yield runtime, run
    runtime.close()


def test_reconcile_command(cli: tuple[Runtime, Any], tmp_path: Path) -> None:
    runtime, run = cli
    lost = add_recording(runtime, retain_until=utcnow() + 300 * DAY)
    runtime.store.delete(lost.object_key)
    orphan = put_orphan(runtime)
    old = (utcnow() - 2 * DAY).timestamp()
    os.utime(tmp_path / "var" / "objects" / orphan, (old, old))
    store = backend_store(runtime.store)
    assert isinstance(store, FilesystemObjectStore)
    abandon_write(store, b"x" * 2048)
    temps = list((store.root / ".recarchive" / "tmp").iterdir())
    for temp in temps:
        os.utime(temp, (old, old))

    dry = run("reconcile", "--dry-run", "--delete-orphans", "--json")
    assert dry.returncode == 1, dry.stderr
    body = json.loads(dry.stdout)
    assert (body["tombstoned_missing"], body["orphans"], body["dry_run"]) == (1, 1, True)
    assert body["swept"] == 2
    assert state(runtime) == ({lost.id}, set(), {orphan})
    assert all(temp.exists() for temp in temps)

    result = run("reconcile", "--delete-orphans")
    assert result.returncode == 1, result.stderr
    assert f"LOST before retain_until: 1\n  {lost.id}\n" in result.stdout
    assert "deleted: 1 orphan(s)" in result.stdout
    assert "deleted, left by unfinished writes: 2 (2.0 KiB)" in result.stdout
    assert not any(temp.exists() for temp in temps)
    assert "Traceback" not in result.stderr
    assert state(runtime) == (set(), {lost.id}, set())

    again = run("reconcile")
    assert again.returncode == 0, again.stderr
    assert "checked 0 object(s), 0 row(s)" in again.stdout


def test_verify_command(cli: tuple[Runtime, Any]) -> None:
    runtime, run = cli
    add_recording(runtime, retain_until=T0)
    bad = add_recording(runtime, retain_until=T0)
    clean = run("verify")
    assert clean.returncode == 0, clean.stderr
    assert "checked 2 recording(s): 2 ok" in clean.stdout

    runtime.store.put(bad.object_key, io.BytesIO(CORRUPT))
    found = run("verify", "--sample", "5")
    assert found.returncode == 1, found.stderr
    assert f"MISMATCHED (sha256 or size): 1\n  {bad.id}\n" in found.stdout
    as_json = run("verify", "--all", "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["mismatched_ids"] == [str(bad.id)]

    both = run("verify", "--all", "--sample", "3")
    assert both.returncode == 2
    assert "give --sample N or --all, not both" in both.stderr
