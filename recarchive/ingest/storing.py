"""Storing a recording's audio: encrypted under a data key of its own when encryption is on."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from pathlib import Path

from recarchive.catalogue.data_keys import new_data_key_for
from recarchive.crypto.interfaces import WrappedKey
from recarchive.errors import StoreError
from recarchive.runtime import Runtime
from recarchive.storage.sealed import put_encrypted

__all__ = ["Sealing", "StoredAudio", "store_audio"]


@dataclasses.dataclass(frozen=True, slots=True)
class Sealing:
    """How an encrypted recording's object was sealed: what its catalogue row keeps."""

    wrapped: WrappedKey
    header: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class StoredAudio:
    """The audio as stored: its size and SHA-256 (the plaintext's), and its sealing."""

    size: int
    sha256: str
    #: None when stored in plaintext (``encryption.enabled = false``).
    sealing: Sealing | None


def store_audio(
    runtime: Runtime,
    recording_id: uuid.UUID,
    key: str,
    path: Path,
    *,
    sha256: str | None,
    content_type: str,
    tags: Mapping[str, str],
) -> StoredAudio:
    """Store the file at ``path`` under ``key``: encrypted when the settings say so.

    The SHA-256 is computed while the bytes stream to the store and checked
    against ``sha256`` when given (nothing is kept when it differs). With
    encryption, a new data key is made and wrapped first: a key provider that
    cannot be reached stores nothing.
    """
    size = path.stat().st_size
    with path.open("rb") as stream:
        if not runtime.settings.encryption.enabled:
            info = runtime.store.put(
                key, stream, size=size, sha256=sha256, content_type=content_type, tags=tags
            )
            if info.sha256 is None:  # every store's put reports it; a guard, not a path
                raise StoreError(f"the store reported no SHA-256 for {key!r}")
            return StoredAudio(size, info.sha256, None)
        data_key, wrapped = new_data_key_for(runtime.key_provider, recording_id)
        sealed = put_encrypted(
            runtime.store, key, stream, data_key, size=size, sha256=sha256, tags=tags
        )
    return StoredAudio(size, sealed.plaintext_sha256, Sealing(wrapped, sealed.header))
