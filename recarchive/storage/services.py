"""Building the configured object store, and proving that it works."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import os
import time
import uuid
from pathlib import Path

from recarchive.config import Settings
from recarchive.errors import IntegrityError, StoreError
from recarchive.storage.anchors import (
    AnchorSink,
    FileAnchorSink,
    S3AnchorSink,
    S3DeletionSink,
)
from recarchive.storage.interfaces import ByteRange, ObjectStore
from recarchive.storage.sealed import SealedObjectStore

logger = logging.getLogger(__name__)

#: Prefix of the probe objects written by :func:`selftest_store`; never a recording.
SELFTEST_PREFIX = "_recarchive/selftest/"

_MIB = 1024 * 1024


def open_store(settings: Settings) -> ObjectStore:
    """The object store the settings describe (no network traffic yet)."""
    if settings.storage.backend == "s3":
        from recarchive.storage.s3 import S3ObjectStore

        s3 = settings.s3
        return S3ObjectStore(
            bucket=s3.bucket,
            endpoint_url=s3.endpoint_url or None,
            region=s3.region,
            access_key_id=settings.secret("s3_access_key_id", required=False),
            secret_access_key=settings.secret("s3_secret_access_key", required=False),
            addressing_style=s3.addressing_style,
            multipart_threshold=s3.multipart_threshold_mb * _MIB,
            part_size=s3.part_size_mb * _MIB,
            connect_timeout=s3.connect_timeout_s,
            read_timeout=s3.read_timeout_s,
            max_attempts=s3.max_attempts,
        )
    from recarchive.storage.filesystem import FilesystemObjectStore

    return FilesystemObjectStore(settings.storage_root)


def open_anchor_sink(settings: Settings, store: ObjectStore) -> AnchorSink:
    """Where the audit chain's anchors go: an Object Lock bucket on S3, else a file."""
    return _open_sink(settings, store, S3AnchorSink, settings.anchor_file)


def open_deletion_sink(settings: Settings, store: ObjectStore) -> AnchorSink:
    """Where deletions are recorded outside the catalogue: next to the audit anchors.

    On S3 the anchor bucket (Object Lock) under ``deleted-recordings/``; on the
    filesystem store a file next to the anchor file (``audit-anchors.deletions.jsonl``).
    """
    anchors = settings.anchor_file
    deletions = anchors.with_name(anchors.stem + ".deletions.jsonl")
    return _open_sink(settings, store, S3DeletionSink, deletions)


def _open_sink(
    settings: Settings, store: ObjectStore, s3_sink: type[S3AnchorSink], file: Path
) -> AnchorSink:
    """An S3 sink of ``s3_sink``'s kind in the anchor bucket on S3, else a file sink."""
    if isinstance(store, SealedObjectStore):
        store = store.inner
    if settings.storage.backend == "s3":
        from recarchive.storage.s3 import S3ObjectStore

        if isinstance(store, S3ObjectStore):
            return s3_sink(
                store.client,
                settings.anchor_bucket,
                endpoint_url=store.endpoint_url,
                mode=settings.audit.anchor_lock_mode,
                retain_days=settings.audit.anchor_retain_days,
            )
    return FileAnchorSink(file)


def describe_store(settings: Settings) -> str:
    """Where the objects live, for messages (no credentials)."""
    if settings.storage.backend == "s3":
        endpoint = settings.s3.endpoint_url or "AWS S3"
        return f"s3 bucket {settings.s3.bucket} at {endpoint}"
    return f"filesystem store at {settings.storage_root}"


@dataclasses.dataclass(frozen=True)
class SelfTestReport:
    key: str
    size: int
    sha256: str
    seconds: float


def selftest_store(store: ObjectStore, *, size: int = 256 * 1024) -> SelfTestReport:
    """Write, read back, range-read, tag, list and delete a probe object.

    Proves that the store works end to end with the configured credentials.
    Raises :class:`~recarchive.errors.StoreError` on the first step that fails;
    the probe object is deleted in every case.
    """
    started = time.perf_counter()
    key = f"{SELFTEST_PREFIX}{uuid.uuid4()}.bin"
    data = os.urandom(size)
    digest = hashlib.sha256(data).hexdigest()
    try:
        info = store.put(
            key,
            io.BytesIO(data),
            size=size,
            sha256=digest,
            content_type="application/octet-stream",
            tags={"recarchive-class": "selftest"},
        )
        if info.sha256 != digest or info.size != size:
            raise IntegrityError(f"store reported a different size or SHA-256 for {key}")
        with store.get(key) as reader:
            if hashlib.sha256(reader.read()).hexdigest() != digest:
                raise IntegrityError(f"object {key} read back differs from what was written")
        with store.get(key, byte_range=ByteRange(size // 2, size // 2 + 99)) as reader:
            if reader.read() != data[size // 2 : size // 2 + 100]:
                raise IntegrityError(f"byte range of {key} read back differs")
        if store.get_tags(key) != {"recarchive-class": "selftest"}:
            raise StoreError(f"tags of {key} read back differ from those written")
        if key not in {item.key for item in store.list(SELFTEST_PREFIX)}:
            raise StoreError(f"object {key} does not show in the listing of {SELFTEST_PREFIX}")
    finally:
        store.delete(key)
    if store.exists(key):
        raise StoreError(f"object {key} still exists after delete")
    return SelfTestReport(key=key, size=size, sha256=digest, seconds=time.perf_counter() - started)
