"""A clip's audio: cut from its recording, stored as its own object, read back, deleted.

The recording is read through the runtime's store (decrypted when it is
encrypted) into a private scratch directory, checked against the
catalogue's SHA-256, cut with ffmpeg (:func:`recarchive.media.cut.cut_clip`)
and stored under ``clips/YYYY/MM/DD/<uuid>.opus``: a key with no personal
data. With encryption on, the clip is sealed under a data key of its own,
wrapped by the key provider and bound to the clip's id (:func:`clip_context`),
kept on the clip's row; :func:`open_clip` decrypts it with that key only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import tempfile
import uuid
from pathlib import Path

from recarchive.catalogue.data_keys import WrappedKeyTable
from recarchive.catalogue.database import utcnow
from recarchive.catalogue.models import Recording
from recarchive.crypto.chunked import new_data_key
from recarchive.crypto.interfaces import WrappedKey
from recarchive.errors import AudioIntegrityFailed, ObjectNotFound, StoreError
from recarchive.media.cut import cut_clip
from recarchive.parts import Archive
from recarchive.private_files import make_private_dir
from recarchive.qa.models import Clip
from recarchive.runtime import Runtime
from recarchive.storage.interfaces import ObjectReader
from recarchive.storage.sealed import ObjectSeal, SealedObjectStore, put_encrypted

__all__ = [
    "CLIPS_PREFIX",
    "CLIP_KEYS",
    "StoredClip",
    "clip_context",
    "delete_clip_object",
    "open_clip",
]

CLIPS_PREFIX = "clips/"
CLIP_FORMAT = "opus"
CLIP_CONTENT_TYPE = "audio/ogg"
#: The right channel of a stereo recording: the agent's in split-leg recordings.
AGENT_CHANNEL = {"right": 1}


@dataclasses.dataclass(frozen=True)
class StoredClip:
    """What the catalogue keeps of a stored clip."""

    object_key: str
    duration_ms: int
    channels: int
    size_bytes: int
    sha256: str
    wrapped: WrappedKey | None
    header: bytes | None


def clip_context(clip_id: uuid.UUID) -> bytes:
    """What a clip's wrapped data key is bound to: the clip's id (never a recording's)."""
    return b"clip:" + str(clip_id).encode()


#: The encrypted clips' data keys, for ``keys rotate`` and ``keys retire`` (plaintext clips
#: have none).
CLIP_KEYS = WrappedKeyTable(
    kind="clip",
    id_column=Clip.id,
    provider_column=Clip.key_provider,
    kek_column=Clip.kek_id,
    wrapped_column=Clip.wrapped_key,
    context=clip_context,
)


def clip_key(clip_id: uuid.UUID) -> str:
    return f"{CLIPS_PREFIX}{utcnow():%Y/%m/%d}/{clip_id}.{CLIP_FORMAT}"


def _fetch(runtime: Runtime, recording: Recording, path: Path) -> None:
    """The recording's audio (decrypted) into ``path``, checked against its SHA-256."""
    digest = hashlib.sha256()
    try:
        reader = runtime.store.get(recording.object_key)
    except ObjectNotFound as exc:
        raise StoreError(f"the audio of recording {recording.id} is missing") from exc
    with reader, path.open("wb") as out:
        for chunk in reader.iter_chunks():
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != recording.sha256:
        raise AudioIntegrityFailed(
            f"the audio of recording {recording.id} does not match its checksum; no clip was cut"
        )


def cut_and_store(
    runtime: Runtime,
    recording: Recording,
    clip_id: uuid.UUID,
    *,
    start_ms: int,
    end_ms: int,
    agent_channel: str | None,
) -> StoredClip:
    """Cut ``start_ms..end_ms`` of the recording (the agent's channel alone if named); store it."""
    work = runtime.settings.work_dir
    make_private_dir(work)
    tmp = Path(tempfile.mkdtemp(prefix="clip-", dir=work))
    try:
        source = tmp / f"source.{recording.format}"
        _fetch(runtime, recording, source)
        clip_path = tmp / f"clip.{CLIP_FORMAT}"
        cut = cut_clip(
            source,
            clip_path,
            extension=recording.format,
            start_ms=start_ms,
            end_ms=end_ms,
            keep_channel=AGENT_CHANNEL[agent_channel] if agent_channel else None,
        )
        return _store(runtime, clip_id, clip_path, cut.duration_ms, cut.channels)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _store(
    runtime: Runtime, clip_id: uuid.UUID, path: Path, duration_ms: int, channels: int
) -> StoredClip:
    key = clip_key(clip_id)
    size = path.stat().st_size
    with path.open("rb") as stream:
        if not runtime.settings.encryption.enabled:
            info = runtime.store.put(key, stream, size=size, content_type=CLIP_CONTENT_TYPE)
            if info.sha256 is None:  # every store's put reports it; a guard, not a path
                raise StoreError(f"the store reported no SHA-256 for {key!r}")
            return StoredClip(key, duration_ms, channels, size, info.sha256, None, None)
        data_key = new_data_key()
        wrapped = runtime.key_provider.wrap(data_key, clip_context(clip_id))
        sealed = put_encrypted(runtime.store, key, stream, data_key, size=size)
    return StoredClip(
        key, duration_ms, channels, size, sealed.plaintext_sha256, wrapped, sealed.header
    )


def open_clip(runtime: Runtime, clip: Clip) -> ObjectReader:
    """The clip's audio, decrypted with its own data key when it is encrypted."""
    if not clip.encrypted:
        return runtime.store.get(clip.object_key)
    assert clip.key_provider is not None
    assert clip.kek_id is not None
    assert clip.wrapped_key is not None
    assert clip.header is not None
    wrapped = WrappedKey(clip.key_provider, clip.kek_id, clip.wrapped_key)
    seal = ObjectSeal(
        runtime.key_provider.unwrap(wrapped, clip_context(clip.id)), clip.header, clip.size_bytes
    )
    key = clip.object_key
    sealed = SealedObjectStore(
        runtime.store, lambda asked: seal if asked == key else None, prefix=CLIPS_PREFIX
    )
    return sealed.get(key)


def delete_clip_object(runtime: Archive, object_key: str) -> None:
    """Delete a clip's object (an absent one is not an error)."""
    runtime.store.delete(object_key)
