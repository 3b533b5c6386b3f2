"""Ingest with encryption enabled, through the CLI: encrypted objects, a verify that passes.

Both ways a recording is stored are run: as delivered (the store hashes the
stream) and transcoded to Opus (the file is hashed first).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from recarchive.catalogue.database import create_catalogue_engine, session_factory
from recarchive.catalogue.intake import QuarantineEntry
from recarchive.catalogue.models import Recording, RecordingKey
from recarchive.config import load_settings
from recarchive.ingest.tasks import IngestIncomplete
from recarchive.runtime import Runtime
from tests.functional.embedded import configure, generate, invoke


@pytest.mark.parametrize("store_format", ["original", "opus"])
def test_ingested_recordings_are_encrypted_and_verify(tmp_path: Path, store_format: str) -> None:
    spool = tmp_path / "pbx"
    manifest = generate(spool, 3)
    archived = sum(1 for call in manifest["calls"] if call["expected"] == "archived")
    env = {
        **configure(tmp_path, spool),
        "RECARCHIVE_ENCRYPTION_ENABLED": "true",
        "RECARCHIVE_AUDIO_STORE_FORMAT": store_format,
    }
    init = invoke(env, "init")
    assert init.exit_code == 0, init.output
    assert "key-encryption keys in" in init.stdout
    ingest = invoke(env, "ingest", "--once", "--json")
    assert ingest.exit_code == 0, ingest.output
    assert json.loads(ingest.stdout)["archived"] == archived >= 1

    data = tmp_path / "install" / "var"
    engine = create_catalogue_engine(f"sqlite:///{data / 'recarchive.db'}")
    try:
        with session_factory(engine)() as session:
            recordings = list(session.scalars(select(Recording)))
            keys = {row.recording_id for row in session.scalars(select(RecordingKey))}
    finally:
        engine.dispose()
    assert len(recordings) == archived
    assert all(r.encrypted for r in recordings)
    assert keys == {r.id for r in recordings}
    for recording in recordings:
        stored = (data / "objects" / recording.object_key).read_bytes()
        assert stored[:4] == b"RCAE"
        assert hashlib.sha256(stored).hexdigest() != recording.sha256

    runtime = Runtime(load_settings(Path(env["RECARCHIVE_CONFIG"]), env=env))
    try:
        for recording in recordings:
            with runtime.store.get(recording.object_key) as reader:
                audio = reader.read()
            assert len(audio) == recording.size_bytes
            assert hashlib.sha256(audio).hexdigest() == recording.sha256
    finally:
        runtime.close()
    verify = invoke(env, "verify", "--all")
    assert verify.exit_code == 0, verify.output
    status = invoke(env, "status")
    line = f"encryption   on (file key provider); {archived} of {archived} encrypted\n"
    assert line in status.stdout


def test_without_its_key_file_ingest_pauses_and_loses_nothing(tmp_path: Path) -> None:
    spool = tmp_path / "pbx"
    manifest = generate(spool, 2)
    archived = sum(1 for call in manifest["calls"] if call["expected"] == "archived")
    env = {**configure(tmp_path, spool), "RECARCHIVE_ENCRYPTION_ENABLED": "true"}
    assert invoke(env, "init").exit_code == 0
    key_file = tmp_path / "install" / "var" / "secrets" / "key-encryption-keys"
    hidden = key_file.rename(tmp_path / "elsewhere")
    with pytest.raises(IngestIncomplete, match="cannot read the key file"):
        invoke(env, "ingest", "--once", "--json")  # the entry point makes it exit status 1
    data = tmp_path / "install" / "var"
    engine = create_catalogue_engine(f"sqlite:///{data / 'recarchive.db'}")
    try:
        with session_factory(engine)() as session:
            assert list(session.scalars(select(Recording))) == []
            quarantined = session.execute(
                select(func.count()).select_from(QuarantineEntry)
            ).scalar_one()
    finally:
        engine.dispose()
    assert quarantined == 0  # an unreachable key provider is no fault of the recordings
    hidden.rename(key_file)
    again = invoke(env, "ingest", "--once", "--json")
    assert again.exit_code in (0, 3), again.output  # 3: work remains for the next run
    summary = json.loads(again.stdout)
    # The item that was being stored when the key file went is released for a later
    # attempt (with the usual backoff); the others are archived now.
    assert summary["quarantined"] == {}
    assert summary["archived"] + summary["waiting"] == archived
    assert summary["archived"] >= archived - 1
