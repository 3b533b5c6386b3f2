"""An object store held in memory, for unit tests.

It keeps the same contract as the real stores (see
:class:`~recarchive.storage.interfaces.ObjectStore`): keys, tags and
metadata are validated the same way, integrity is checked before an object
becomes visible, and it is safe to use from several threads. Like S3 and
unlike a filesystem, it lets ``a`` and ``a/b`` exist side by side.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import BinaryIO

from recarchive.errors import BucketNotFound, ObjectNotFound
from recarchive.storage.interfaces import (
    CHUNK_SIZE,
    ByteRange,
    DeleteResult,
    ObjectInfo,
    SweepResult,
    check_written,
    validate_content_type,
    validate_cutoff,
    validate_expected,
    validate_key,
    validate_metadata,
    validate_tags,
)


@dataclasses.dataclass(slots=True)
class _Stored:
    data: bytes
    info: ObjectInfo
    tags: dict[str, str]


class _BytesReader:
    """Reads a byte string already sliced to the requested range."""

    def __init__(self, info: ObjectInfo, data: bytes, content_range: tuple[int, int]) -> None:
        self.info = info
        self.content_range = content_range
        self._data = data
        self._position = 0
        self._closed = False

    def read(self, size: int = -1) -> bytes:
        if self._closed:
            raise ValueError("read from a closed object reader")
        end = len(self._data) if size < 0 else min(len(self._data), self._position + size)
        chunk = self._data[self._position : end]
        self._position = end
        return chunk

    def iter_chunks(self, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        while chunk := self.read(chunk_size):
            yield chunk

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> _BytesReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class InMemoryObjectStore:
    """Objects in a dict guarded by a lock. ``create()`` is implied: the store exists."""

    backend = "memory"

    def __init__(self) -> None:
        self._objects: dict[str, _Stored] = {}
        self._lock = threading.Lock()
        self._exists = True

    def check(self) -> None:
        """Always succeeds unless :meth:`drop` was called (to test missing buckets)."""
        if not self._exists:
            raise BucketNotFound("in-memory store was dropped; run `recarchive init`")

    def create(self) -> bool:
        """Make the store usable again; True when it had been dropped."""
        with self._lock:
            created = not self._exists
            self._exists = True
            return created

    def drop(self) -> None:
        """Forget every object and behave as a missing bucket until :meth:`create`."""
        with self._lock:
            self._objects.clear()
            self._exists = False

    def put(
        self,
        key: str,
        stream: BinaryIO,
        *,
        size: int | None = None,
        sha256: str | None = None,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        checksum: bool = True,
    ) -> ObjectInfo:
        """Read the whole stream, verify it, then store it (see ``ObjectStore.put``)."""
        validate_key(key)
        expected_sha256 = validate_expected(key, size, sha256, checksum=checksum)
        stored_type = validate_content_type(content_type)
        user_metadata = validate_metadata(metadata or {})
        stored_tags = validate_tags(tags or {})
        self.check()
        hasher = hashlib.sha256() if checksum else None
        parts: list[bytes] = []
        total = 0
        while chunk := stream.read(CHUNK_SIZE):
            if hasher is not None:
                hasher.update(chunk)
            parts.append(chunk)
            total += len(chunk)
            if size is not None and total > size:
                break
        digest = None if hasher is None else hasher.hexdigest()
        check_written(
            key, expected_size=size, expected_sha256=expected_sha256, size=total, sha256=digest
        )
        info = ObjectInfo(
            key=key,
            size=total,
            last_modified=dt.datetime.now(dt.UTC),
            sha256=digest,
            content_type=stored_type,
            metadata=user_metadata,
        )
        with self._lock:
            self._objects[key] = _Stored(b"".join(parts), info, stored_tags)
        return info

    def _stored(self, key: str) -> _Stored:
        validate_key(key)
        self.check()
        with self._lock:
            stored = self._objects.get(key)
        if stored is None:
            raise ObjectNotFound(f"no object under key {key!r}")
        return stored

    def get(self, key: str, *, byte_range: ByteRange | None = None) -> _BytesReader:
        """Open the object or a range of it; the reader sees a snapshot of the data."""
        stored = self._stored(key)
        if byte_range is None:
            return _BytesReader(stored.info, stored.data, (0, len(stored.data) - 1))
        start, end = byte_range.resolve(len(stored.data))
        return _BytesReader(stored.info, stored.data[start : end + 1], (start, end))

    def head(self, key: str) -> ObjectInfo:
        return self._stored(key).info

    def exists(self, key: str) -> bool:
        try:
            self._stored(key)
        except ObjectNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        validate_key(key)
        self.check()
        with self._lock:
            self._objects.pop(key, None)

    def delete_many(self, keys: Iterable[str]) -> DeleteResult:
        """Delete every key; all keys are validated before anything is deleted."""
        wanted = list(dict.fromkeys(validate_key(key) for key in keys))
        self.check()
        with self._lock:
            for key in wanted:
                self._objects.pop(key, None)
        return DeleteResult(deleted=tuple(wanted), failed={})

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` in key order, as they were when listing started."""
        self.check()
        with self._lock:
            infos = [s.info for k, s in self._objects.items() if k.startswith(prefix)]
        return iter(sorted(infos, key=lambda info: info.key))

    def get_tags(self, key: str) -> dict[str, str]:
        return dict(self._stored(key).tags)

    def set_tags(self, key: str, tags: Mapping[str, str]) -> None:
        validate_key(key)
        new_tags = validate_tags(tags)
        self.check()
        with self._lock:
            stored = self._objects.get(key)
            if stored is None:
                raise ObjectNotFound(f"no object under key {key!r}")
            stored.tags = new_tags

    def sweep_abandoned(self, older_than: dt.datetime, *, dry_run: bool = False) -> SweepResult:
        """Nothing to sweep: ``put`` builds an object in local variables, which die with it."""
        validate_cutoff(older_than)
        self.check()
        return SweepResult()
