"""Encryption at rest, end to end, on the filesystem store and on the S3 server.

Recordings are stored encrypted under a data key of their own (as ingest
stores them: ``tests/api_fixtures.py: add_recording``); playback with Range,
transcodes, a subject's export (the audio as recorded inside the zip) and
``verify`` work on them unchanged; a plaintext recording
stored before encryption was enabled stays readable; expiry and erasure
destroy the data key with the tombstone, after which a copy of the bucket
made before holds nothing the installation can decrypt.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from recarchive.access.models import Role
from recarchive.catalogue.data_keys import key_context
from recarchive.catalogue.database import utcnow
from recarchive.catalogue.models import Recording, RecordingKey
from recarchive.catalogue.services import CLASS_TAG
from recarchive.crypto.chunked import HEADER_SIZE, Layout
from recarchive.crypto.interfaces import WrappedKey
from recarchive.crypto.keyfile import FileKeyProvider
from recarchive.crypto.providers import key_file_path, prepare_key_provider
from recarchive.crypto.streams import open_decrypted
from recarchive.errors import EncryptionError, HeaderMismatch, KeyUnwrapFailed
from recarchive.retention.expiry import expire_recordings
from recarchive.retention.integrity import verify_integrity
from recarchive.retention.models import Tombstone
from recarchive.runtime import Runtime
from recarchive.storage.interfaces import ObjectStore
from tests.api_fixtures import (
    ApiClient,
    add_customer,
    add_recording,
    build_runtime,
    close_runtime,
    ffprobe,
    national,
    new_hetu,
    new_number,
    tokens,
    wav_bytes,
)
from tests.s3env import s3_environment

D, P = Role.DISPUTE_HANDLER, Role.PRIVACY_OFFICER
RECORDINGS = "/api/v1/recordings"
SUBJECTS = "/api/v1/subjects"
DISPUTE = {"purpose": "dispute", "case": "D-7"}
#: One audit key for both worlds of the module, which share a catalogue.
AUDIT_KEY = "encryption-test-audit-key-0123456789abcdef"


@dataclasses.dataclass
class World:
    runtime: Runtime
    api: ApiClient

    @property
    def raw(self) -> ObjectStore:
        """The backend's store, behind the decryption: what a copy of the bucket holds."""
        inner: ObjectStore = self.runtime.store.inner  # type: ignore[attr-defined]
        return inner


@pytest.fixture(scope="module", params=["filesystem", pytest.param("s3", marks=pytest.mark.s3)])
def world(
    request: pytest.FixtureRequest, catalogue_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    runtime = build_runtime(
        catalogue_url,
        tmp_path_factory.mktemp("encrypted"),
        store_env=s3_environment() if request.param == "s3" else None,
        extra_env={"RECARCHIVE_ENCRYPTION_ENABLED": "true", "RECARCHIVE_AUDIT_KEY": AUDIT_KEY},
    )
    assert "created" in (prepare_key_provider(runtime.settings) or "")  # as `init` does
    api = ApiClient(runtime, tokens(runtime, prefix=f"enc-{request.param}-"))
    yield World(runtime, api)
    api.client.close()
    close_runtime(runtime)


def audio_url(recording: Recording) -> str:
    return f"{RECORDINGS}/{recording.id}/audio"


def stored_bytes(world: World, key: str) -> bytes:
    with world.raw.get(key) as reader:
        return reader.read()


def test_the_stored_object_is_ciphertext_and_reveals_no_more_than_before(world: World) -> None:
    recording = add_recording(world.runtime, seconds=2)
    audio = wav_bytes(2)
    stored = stored_bytes(world, recording.object_key)
    assert len(stored) == Layout().ciphertext_size(len(audio))
    assert not stored.startswith(b"RIFF")
    assert audio[1000:1064] not in stored
    assert recording.size_bytes == len(audio)
    head = world.raw.head(recording.object_key)
    assert head.content_type == "application/octet-stream"
    assert world.raw.get_tags(recording.object_key) == {CLASS_TAG: "standard"}
    assert head.sha256 != recording.sha256  # the audio's checksum is in the catalogue only
    with world.runtime.sessions() as session:
        row = session.get_one(Recording, recording.id)
        key = session.get_one(RecordingKey, recording.id)
        assert row.encrypted
        assert (key.provider, key.header) == ("file", stored[:HEADER_SIZE])


def test_playback_with_ranges_and_transcodes(world: World, tmp_path: Path) -> None:
    recording = add_recording(world.runtime, seconds=6)  # 96 kB: two chunks
    audio = wav_bytes(6)
    dispute = world.api.as_role(D)
    whole = dispute.get(audio_url(recording), params=DISPUTE)
    assert whole.status_code == 200, whole.text[:200]
    assert whole.content == audio
    assert whole.headers["ETag"] == f'"{recording.sha256}"'
    size = len(audio)
    for start, end in [(0, 0), (0, 99), (65535, 65536), (size - 7, size - 1), (1000, 30000)]:
        response = dispute.get(
            audio_url(recording), params=DISPUTE, headers={"Range": f"bytes={start}-{end}"}
        )
        assert response.status_code == 206
        assert response.content == audio[start : end + 1]
        assert response.headers["Content-Range"] == f"bytes {start}-{end}/{size}"
    tail = dispute.get(audio_url(recording), params=DISPUTE, headers={"Range": "bytes=-100"})
    assert tail.content == audio[-100:]
    transcoded = dispute.get(audio_url(recording), params={**DISPUTE, "format": "opus"})
    assert transcoded.status_code == 200, transcoded.text[:300]
    path = tmp_path / "out.ogg"
    path.write_bytes(transcoded.content)
    assert ffprobe(path)["codec"] == "opus"


def test_a_plaintext_recording_stored_before_stays_readable(world: World) -> None:
    settings = world.runtime.settings
    plain_settings = settings.model_copy(
        update={"encryption": settings.encryption.model_copy(update={"enabled": False})}
    )
    before = Runtime(plain_settings)
    try:
        recording = add_recording(before, seconds=1)
    finally:
        before.close()
    assert stored_bytes(world, recording.object_key) == wav_bytes(1)
    response = world.api.as_role(D).get(
        audio_url(recording), params=DISPUTE, headers={"Range": "bytes=10-19"}
    )
    assert response.content == wav_bytes(1)[10:20]
    report = verify_integrity(world.runtime, all_=True)
    assert str(recording.id) not in report.mismatched_ids


def test_verify_checks_every_chunk_and_the_audio_checksum(world: World) -> None:
    recording = add_recording(world.runtime, seconds=6)  # two chunks
    report = verify_integrity(world.runtime, all_=True)
    assert str(recording.id) not in report.mismatched_ids + report.missing_ids
    stored = bytearray(stored_bytes(world, recording.object_key))
    stored[HEADER_SIZE + 70_000] ^= 0x01  # one bit of the second chunk
    world.raw.put(recording.object_key, io.BytesIO(bytes(stored)), tags={CLASS_TAG: "standard"})
    report = verify_integrity(world.runtime, all_=True)
    assert str(recording.id) in report.mismatched_ids
    world.runtime.store.delete(recording.object_key)  # leave no broken object to later tests


def test_expiry_destroys_the_data_key_with_the_tombstone(world: World) -> None:
    recording = add_recording(world.runtime, retain_until=utcnow() - dt.timedelta(days=1))
    assert expire_recordings(world.runtime, now=utcnow()).deleted >= 1
    with world.runtime.sessions() as session:
        stone = session.get_one(Tombstone, recording.id)
        assert session.get(RecordingKey, recording.id) is None
    assert stone.key_destroyed_at is not None
    assert stone.key_destroyed_at == stone.deleted_at


def test_after_erasure_a_bucket_copy_made_before_cannot_be_decrypted(world: World) -> None:
    runtime = world.runtime
    customer_id, number = f"C-{uuid.uuid4().hex[:8]}", new_number()
    add_customer(runtime, customer_id, "Maija Meikäläinen", [national(number)], new_hetu())
    erased = [
        add_recording(runtime, seconds=1, customer_id=customer_id, caller_number=number)
        for _ in range(2)
    ]
    bystander = add_recording(runtime, seconds=1, customer_id=f"C-{uuid.uuid4().hex[:8]}")
    # The "backup": every object of the bucket, as stored, before the erasure.
    backup = {info.key: stored_bytes(world, info.key) for info in world.raw.list("recordings/")}
    assert {r.object_key for r in [*erased, bystander]} <= set(backup)

    response = world.api.as_role(P).post(
        f"{SUBJECTS}/erase", json={"customer_id": customer_id, "note": "asked in writing"}
    )
    assert response.status_code == 200, response.text
    assert sorted(response.json()["erased"]) == sorted(str(r.id) for r in erased)

    with runtime.sessions() as session:
        for recording in erased:
            stone = session.get_one(Tombstone, recording.id)
            assert stone.key_destroyed_at == stone.deleted_at
            assert session.get(RecordingKey, recording.id) is None
        remaining = list(session.scalars(select(RecordingKey)))
    assert bystander.id in {row.recording_id for row in remaining}

    # Everything the installation still holds: the key file's key-encryption keys and
    # every wrapped data key left in the catalogue (unwrapped under its own recording).
    # The module's other world shares the catalogue with a key file of its own.
    provider = FileKeyProvider(key_file_path(runtime.settings))
    remaining = [row for row in remaining if row.kek_id == provider.current_kek_id()]
    data_keys = [
        provider.unwrap(
            WrappedKey(row.provider, row.kek_id, row.wrapped_key), key_context(row.recording_id)
        )
        for row in remaining
    ]
    keks = [
        line.split()[1]
        for line in key_file_path(runtime.settings).read_text().splitlines()
        if line and not line.startswith("#")
    ]
    candidates = data_keys + [base64.b64decode(kek) for kek in keks]
    audio = wav_bytes(1)
    for recording in erased:
        copy = backup[recording.object_key]
        assert audio[200:264] not in copy
        for candidate in candidates:
            with pytest.raises(HeaderMismatch):
                open_decrypted(io.BytesIO(copy), candidate, len(copy)).read()
        # Nor does any wrapped key left unwrap as this recording's.
        for row in remaining:
            with pytest.raises(KeyUnwrapFailed):
                provider.unwrap(
                    WrappedKey(row.provider, row.kek_id, row.wrapped_key), key_context(recording.id)
                )
        # Put back into the bucket, the copy is not served: the recording is gone.
        world.raw.put(recording.object_key, io.BytesIO(copy))
        gone = world.api.as_role(D).get(audio_url(recording), params=DISPUTE)
        assert gone.status_code == 410
        world.raw.delete(recording.object_key)
    # The bystander's copy, from the same backup, does decrypt: the check above can tell.
    copy = backup[bystander.object_key]
    opened = []
    for candidate in candidates:
        try:
            opened.append(open_decrypted(io.BytesIO(copy), candidate, len(copy)).read())
        except EncryptionError:
            continue
    assert opened == [audio]


def test_a_subject_export_holds_the_decrypted_audio(world: World) -> None:
    runtime = world.runtime
    customer_id, number = f"C-{uuid.uuid4().hex[:8]}", new_number()
    add_customer(runtime, customer_id, "Matti Virtanen", [national(number)], new_hetu())
    recordings = [
        add_recording(runtime, seconds=seconds, customer_id=customer_id, caller_number=number)
        for seconds in (1, 6)  # one chunk, two chunks
    ]
    for recording in recordings:
        assert not stored_bytes(world, recording.object_key).startswith(b"RIFF")
    response = world.api.as_role(P).post(f"{SUBJECTS}/export", json={"customer_id": customer_id})
    assert response.status_code == 200, response.text[:300]
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        rows = {row["id"]: row for row in manifest["recordings"]}
        for recording, seconds in zip(recordings, (1, 6), strict=True):
            row = rows[str(recording.id)]
            audio = archive.read(row["file"])
            assert audio == wav_bytes(seconds)  # the audio as recorded, not the ciphertext
            assert hashlib.sha256(audio).hexdigest() == row["sha256"] == recording.sha256
