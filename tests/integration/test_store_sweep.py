"""The ObjectStore contract of ``sweep_abandoned``, run against every store.

Part of the contract suite of ``test_store_contract.py`` (same ``store``
fixture: memory, filesystem, S3 on the real server), kept in a module of its
own so that neither grows past a few hundred lines. A write killed mid-way
is imitated by leaving what it leaves: on the filesystem, the temporary data
and sidecar files in ``.recarchive/tmp``; on S3, a multipart upload with a
part sent and never completed. The S3 server cannot backdate an upload, so
"old enough" is reached by moving the cutoff, not the clock.
"""

# The fixtures come from test_store_contract; pytest hands them over by parameter name,
# which pyflakes sees as redefining the imports.
# ruff: noqa: F811

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recarchive.errors import StoreError
from recarchive.storage.filesystem import FilesystemObjectStore
from recarchive.storage.interfaces import ObjectStore, SweepResult
from recarchive.storage.s3 import S3ObjectStore
from recarchive.storage.sealed import SealedObjectStore
from tests.integration.test_store_contract import (  # noqa: F401
    MiB,
    fs_store,
    raw_client,
    read_all,
    s3_settings,
    s3_store,
    store,
)

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
AUDIO = b"RIFF" + bytes(range(256)) * 256  # 64 KiB and a bit of "audio"


def tmp_dir(store: FilesystemObjectStore) -> Path:
    return store.root / ".recarchive" / "tmp"


def backend_store(store: Any) -> Any:
    """The backend's store under a runtime's sealed store (which decrypts recordings)."""
    return store.inner if isinstance(store, SealedObjectStore) else store


def abandon_write(store: Any, data: bytes = AUDIO) -> SweepResult:
    """Leave what a write killed mid-way leaves; return what a sweep should find."""
    store = backend_store(store)
    if isinstance(store, FilesystemObjectStore):
        meta = b'{"content_type": "audio/wav"}'
        (tmp_dir(store) / "put-k1ll3d").write_bytes(data)
        (tmp_dir(store) / "meta-k1ll3d.json").write_bytes(meta)
        return SweepResult(count=2, size_bytes=len(data) + len(meta))
    if isinstance(store, S3ObjectStore):
        client = raw_client(s3_settings())
        key = "recordings/2025/01/10/killed.wav"
        upload = client.create_multipart_upload(Bucket=store.bucket, Key=key)
        client.upload_part(
            Bucket=store.bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=data
        )
        return SweepResult(count=1, size_bytes=len(data))
    return SweepResult()  # nothing of an unfinished write outlives it in memory


def leftovers(store: Any) -> int:
    """How many leftovers of writes the store holds, looked at behind its back."""
    store = backend_store(store)
    if isinstance(store, FilesystemObjectStore):
        return len(list(tmp_dir(store).iterdir()))
    if isinstance(store, S3ObjectStore):
        client = raw_client(s3_settings())
        return len(client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []))
    return 0


def test_an_abandoned_write_is_swept_once_old_enough_and_not_before(store: ObjectStore) -> None:
    store.put("recordings/kept.wav", io.BytesIO(b"a finished write"))
    expected = abandon_write(store)
    there = leftovers(store)
    now = dt.datetime.now(dt.UTC)
    assert store.sweep_abandoned(now - HOUR) == SweepResult()  # younger than the cutoff
    assert store.sweep_abandoned(now - HOUR, dry_run=True) == SweepResult()
    assert leftovers(store) == there
    assert store.sweep_abandoned(now + HOUR, dry_run=True) == expected
    assert leftovers(store) == there  # a dry run only counts
    assert store.sweep_abandoned(now + HOUR) == expected
    assert leftovers(store) == 0
    assert store.sweep_abandoned(now + HOUR) == SweepResult()
    assert read_all(store, "recordings/kept.wav") == b"a finished write"
    assert [info.key for info in store.list()] == ["recordings/kept.wav"]


def test_a_naive_cutoff_is_refused(store: ObjectStore) -> None:
    with pytest.raises(ValueError, match="aware"):
        store.sweep_abandoned(dt.datetime(2025, 1, 1))  # naive: the point of the test


# --- filesystem only ------------------------------------------------------------


def test_fs_sweep_goes_by_modification_time_and_name(fs_store: FilesystemObjectStore) -> None:
    now = dt.datetime.now(dt.UTC)
    old = (now - 2 * DAY).timestamp()
    names = ["put-old", "meta-old.json", "put-fresh", "notes-old", "put-dir-old"]
    for name in names[:4]:
        (tmp_dir(fs_store) / name).write_bytes(b"12345")
    (tmp_dir(fs_store) / "put-dir-old").mkdir()
    for name in ("put-old", "meta-old.json", "notes-old", "put-dir-old"):
        os.utime(tmp_dir(fs_store) / name, (old, old))
    assert fs_store.sweep_abandoned(now - DAY) == SweepResult(count=2, size_bytes=10)
    remaining = sorted(p.name for p in tmp_dir(fs_store).iterdir())
    assert remaining == ["notes-old", "put-dir-old", "put-fresh"]  # only write temps, files


def test_fs_sweep_without_tmp_dir_finds_nothing(tmp_path: Path) -> None:
    store = FilesystemObjectStore(tmp_path / "store")
    store.root.mkdir()
    assert store.sweep_abandoned(dt.datetime.now(dt.UTC) + DAY) == SweepResult()


class BlockingStream(io.RawIOBase):
    """Serves one chunk, then waits for ``go`` before serving the rest: a slow sender."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.started = threading.Event()
        self.go = threading.Event()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._data.tell() > 0:
            self.started.set()
            assert self.go.wait(30)
        chunk = self._data.read(min(len(buffer), MiB))
        buffer[: len(chunk)] = chunk
        return len(chunk)


@contextlib.contextmanager
def put_in_thread(store: ObjectStore, key: str, stream: BlockingStream) -> Iterator[list[Any]]:
    """Run ``put`` in a thread, stopped mid-write; yield [result or exception] at the end."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(store.put(key, stream))
        except StoreError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert stream.started.wait(30)
        yield outcome
    finally:
        stream.go.set()
        thread.join(30)


def test_fs_a_live_write_survives_the_sweep(fs_store: FilesystemObjectStore) -> None:
    data = os.urandom(3 * MiB)
    stream = BlockingStream(data)
    with put_in_thread(fs_store, "recordings/live.wav", stream) as outcome:
        assert [p.name[:4] for p in tmp_dir(fs_store).iterdir()] == ["put-"]
        swept = fs_store.sweep_abandoned(dt.datetime.now(dt.UTC) - DAY)
        assert swept == SweepResult()
    assert outcome[0].size == len(data)
    assert read_all(fs_store, "recordings/live.wav") == data
    assert leftovers(fs_store) == 0


def test_fs_a_write_stalled_past_the_cutoff_fails_and_keeps_the_old_object(
    fs_store: FilesystemObjectStore,
) -> None:
    fs_store.put("k", io.BytesIO(b"old version"), tags={"retention-class": "standard"})
    stream = BlockingStream(os.urandom(2 * MiB))
    with put_in_thread(fs_store, "k", stream) as outcome:
        swept = fs_store.sweep_abandoned(dt.datetime.now(dt.UTC) + HOUR)
        assert swept.count == 1
    assert isinstance(outcome[0], StoreError)
    assert read_all(fs_store, "k") == b"old version"
    assert fs_store.get_tags("k") == {"retention-class": "standard"}
    assert leftovers(fs_store) == 0
