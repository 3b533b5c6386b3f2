"""A catalogue restored from a backup does not bring back what was deleted since.

Expiry and erasure record each deletion outside the catalogue (next to the
audit anchors) before committing its tombstone. After the catalogue and the
bucket are both restored from copies made before those deletions,
``serve`` refuses to start and ``recarchive restore-check`` deletes the
recordings again: object, data key, row; a tombstone each. Filesystem store,
SQLite catalogue (a backup is a copy of its file); the record's place on S3
is checked apart.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from recarchive.access.models import Role
from recarchive.catalogue.database import utcnow
from recarchive.catalogue.models import Recording, RecordingKey
from recarchive.cli.serve_cmd import _startup_check
from recarchive.config import load_settings
from recarchive.crypto.providers import prepare_key_provider
from recarchive.retention.deletion_record import DeletionsNotReplayed, check_deletions_replayed
from recarchive.retention.expiry import expire_recordings
from recarchive.retention.models import Tombstone
from recarchive.runtime import Runtime
from recarchive.storage.anchors import S3DeletionSink
from recarchive.storage.services import open_anchor_sink, open_deletion_sink, open_store
from tests.api_fixtures import (
    ApiClient,
    add_customer,
    add_recording,
    build_runtime,
    national,
    new_number,
    tokens,
    wav_bytes,
)
from tests.functional.embedded import invoke
from tests.s3env import s3_environment

P, D = Role.PRIVACY_OFFICER, Role.DISPUTE_HANDLER
DISPUTE = {"purpose": "dispute", "case": "D-9"}


def backup_catalogue(database: Path, copy: Path) -> None:
    with sqlite3.connect(database) as source, sqlite3.connect(copy) as target:
        source.backup(target)


def restore_catalogue(copy: Path, database: Path) -> None:
    for suffix in ("-wal", "-shm"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)
    shutil.copyfile(copy, database)


def test_a_restored_catalogue_replays_the_deletions_made_since(tmp_path: Path) -> None:
    database, data = tmp_path / "catalogue.db", tmp_path / "var"
    env = {
        "RECARCHIVE_GENERAL_DATA_DIR": str(data),
        "RECARCHIVE_CATALOGUE_URL": f"sqlite:///{database}",
        "RECARCHIVE_ENCRYPTION_ENABLED": "true",
        "RECARCHIVE_AUDIT_KEY": "restore-test-audit-key-0123456789abcdef",
    }
    runtime = build_runtime(env["RECARCHIVE_CATALOGUE_URL"], data, extra_env=env)
    prepare_key_provider(runtime.settings)
    env["RECARCHIVE_TOKEN_PEPPER"] = runtime.settings.env["RECARCHIVE_TOKEN_PEPPER"]
    env["RECARCHIVE_IDENTITY_HASH_KEY"] = runtime.settings.env["RECARCHIVE_IDENTITY_HASH_KEY"]
    api = ApiClient(runtime, tokens(runtime))
    number = new_number()
    add_customer(runtime, "C-ERASED", "Maija Meikäläinen", [national(number)])
    erased = add_recording(runtime, seconds=1, customer_id="C-ERASED", caller_number=number)
    expired = add_recording(runtime, seconds=1, retain_until=utcnow() - dt.timedelta(days=1))
    kept = add_recording(runtime, seconds=1)

    backup_catalogue(database, tmp_path / "catalogue-backup.db")
    shutil.copytree(data / "objects", tmp_path / "objects-backup")

    assert expire_recordings(runtime, now=utcnow()).deleted == 1
    response = api.as_role(P).post("/api/v1/subjects/erase", json={"customer_id": "C-ERASED"})
    assert response.json()["erased"] == [str(erased.id)]
    record = data / "audit-anchors.deletions.jsonl"
    recorded = [json.loads(line) for line in record.read_text().splitlines()]
    assert [[d["id"] for d in entry["deleted"]] for entry in recorded] == [
        [str(expired.id)],
        [str(erased.id)],
    ]
    assert [entry["deleted"][0]["rule"] for entry in recorded] == ["retention:default", "erasure"]
    check_deletions_replayed(runtime)  # the live catalogue knows them
    api.client.close()
    runtime.close()

    # Disaster recovery: catalogue and bucket both restored from before the deletions.
    restore_catalogue(tmp_path / "catalogue-backup.db", database)
    shutil.rmtree(data / "objects")
    shutil.copytree(tmp_path / "objects-backup", data / "objects")
    restored = Runtime(runtime.settings)
    try:
        with pytest.raises(DeletionsNotReplayed, match="2 recording"):
            _startup_check(restored)  # serve does not start
        # Without the check the erased call would play again: row, wrapped key and object.
        with restored.store.get(erased.object_key) as reader:
            assert reader.read() == wav_bytes(1)
    finally:
        restored.close()

    result = invoke(env, "restore-check")
    assert result.exit_code == 0, result.output
    assert "replayed now: 2" in result.stdout

    restored = Runtime(runtime.settings)
    try:
        check_deletions_replayed(restored)
        with restored.sessions() as session:
            assert set(session.scalars(select(Recording.id))) == {kept.id}
            assert set(session.scalars(select(RecordingKey.recording_id))) == {kept.id}
            stones = {s.recording_id: s for s in session.scalars(select(Tombstone))}
        for recording, rule in ((erased, "erasure"), (expired, "retention:default")):
            assert stones[recording.id].rule == rule
            assert stones[recording.id].deleted_by == "restore-check"
            assert stones[recording.id].key_destroyed_at is not None
            assert not restored.store.exists(recording.object_key)
    finally:
        restored.close()
    again = invoke(env, "restore-check")
    assert "replayed now: 0" in again.stdout


@pytest.mark.s3
def test_on_s3_the_record_lies_in_the_anchor_bucket_apart_from_the_anchors(
    tmp_path: Path,
) -> None:
    env = s3_environment()
    bucket = f"recarchive-deletions-{uuid.uuid4().hex[:10]}"
    settings = load_settings(
        env={
            **env,
            "RECARCHIVE_GENERAL_DATA_DIR": str(tmp_path),
            "RECARCHIVE_AUDIT_ANCHOR_BUCKET": bucket,
            "RECARCHIVE_AUDIT_ANCHOR_LOCK_MODE": "GOVERNANCE",
            "RECARCHIVE_AUDIT_ANCHOR_RETAIN_DAYS": "1",
        }
    )
    store = open_store(settings)
    anchors, deletions = open_anchor_sink(settings, store), open_deletion_sink(settings, store)
    assert isinstance(deletions, S3DeletionSink)
    assert deletions.create()  # the anchor bucket, with Object Lock
    deletions.append("20261205T000000000000Z-a.json", b'{"v": 1, "deleted": []}')
    assert deletions.read_all() == [b'{"v": 1, "deleted": []}']
    assert anchors.read_all() == []  # the anchors' reader never sees the record
