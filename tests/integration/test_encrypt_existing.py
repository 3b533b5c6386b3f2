"""``keys encrypt-existing`` on SQLite and PostgreSQL: a recording claimed for deletion
while its encrypted copy is being written is never switched, and nothing of it comes back."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from recarchive.catalogue.database import transaction
from recarchive.catalogue.models import Recording, RecordingKey, RecordingStatus
from recarchive.crypto.providers import prepare_key_provider
from recarchive.retention import encrypt_existing as module
from recarchive.retention.encrypt_existing import encrypt_existing, sealed_object_key
from recarchive.runtime import Runtime
from tests.api_fixtures import add_recording, build_runtime, close_runtime


@pytest.fixture
def runtimes(catalogue_url: str, tmp_path: Path) -> Iterator[tuple[Runtime, Runtime]]:
    """A runtime storing plaintext and one with encryption, on one catalogue and store."""
    plain = build_runtime(catalogue_url, tmp_path)
    sealed = build_runtime(
        catalogue_url, tmp_path, extra_env={"RECARCHIVE_ENCRYPTION_ENABLED": "true"}
    )
    prepare_key_provider(sealed.settings)
    yield plain, sealed
    close_runtime(sealed)
    close_runtime(plain)


def test_plaintext_recordings_are_encrypted_and_play(runtimes: tuple[Runtime, Runtime]) -> None:
    plain, sealed = runtimes
    added = {add_recording(plain).id for _ in range(3)}
    report = encrypt_existing(sealed, batch_size=2)
    assert report.encrypted >= len(added)
    with sealed.sessions() as session:
        rows = list(session.scalars(select(Recording).where(Recording.id.in_(added))))
    for row in rows:
        assert row.encrypted
        assert row.object_key.endswith(".sealed.wav")
        with sealed.store.get(row.object_key) as reader:
            assert hashlib.sha256(reader.read()).hexdigest() == row.sha256
        assert not sealed.store.exists(row.object_key.replace(".sealed", ""))


def test_a_recording_claimed_meanwhile_is_not_switched_and_leaves_nothing(
    runtimes: tuple[Runtime, Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    plain, sealed = runtimes
    target = add_recording(plain)
    real_put = module.put_encrypted

    def put_then_claim(store: Any, key: str, *args: Any, **kwargs: Any) -> Any:
        done = real_put(store, key, *args, **kwargs)
        if key == sealed_object_key(target.object_key):  # an expiry claims it now
            with transaction(sealed.sessions) as session:
                session.execute(
                    update(Recording)
                    .where(Recording.id == target.id)
                    .values(status=RecordingStatus.DELETING, deleting_by=uuid.uuid4().hex)
                )
        return done

    monkeypatch.setattr(module, "put_encrypted", put_then_claim)
    report = encrypt_existing(sealed)
    assert report.skipped.get("deleting", 0) >= 1
    with sealed.sessions() as session:
        row = session.get(Recording, target.id)
        key = session.get(RecordingKey, target.id)
    assert row is not None
    assert (row.object_key, row.encrypted) == (target.object_key, False)
    assert key is None
    assert not sealed.store.exists(sealed_object_key(target.object_key))
    assert sealed.store.exists(target.object_key)  # the expiry's to delete
