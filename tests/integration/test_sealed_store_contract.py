"""The read side of the ObjectStore contract on encrypted objects: memory, filesystem and S3.

Each store of ``test_store_contract.py`` is wrapped as the runtime wraps it
(:class:`~recarchive.storage.sealed.SealedObjectStore`) and objects are
written as ingest and ``keys encrypt-existing`` write them
(:func:`~recarchive.storage.sealed.put_encrypted`). What a caller reads back
must be what the contract promises of a plaintext object: the same bytes,
the same ranges and ``content_range``, the same refusals, nothing stored by
a put that fails. ``head``, ``list`` and sizes stay the stored object's (the
ciphertext's), as docs/security.md says, and are not repeated here.
"""

from __future__ import annotations

import hashlib
import io

import pytest

from recarchive.crypto.chunked import new_data_key
from recarchive.errors import ChecksumMismatch, InvalidRange, ObjectNotFound, SizeMismatch
from recarchive.storage.interfaces import ByteRange, ObjectStore
from recarchive.storage.sealed import ObjectSeal, SealedObjectStore, put_encrypted
from tests.integration.test_store_contract import FailingStream, s3_store, store

__all__ = ["s3_store", "store"]  # the fixtures, imported to be used here

CHUNK = 64 * 1024


class Sealer:
    """Writes encrypted objects into a store and reads them back through the runtime's wrapper."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.seals: dict[str, ObjectSeal] = {}
        self.sealed = SealedObjectStore(inner, self.seals.get)

    def put(self, key: str, data: bytes, **expected: object) -> None:
        data_key = new_data_key()
        done = put_encrypted(self.inner, key, io.BytesIO(data), data_key, **expected)  # type: ignore[arg-type]
        self.seals[key] = ObjectSeal(data_key, done.header, done.plaintext_size)

    def read(self, key: str, byte_range: ByteRange | None = None) -> bytes:
        with self.sealed.get(key, byte_range=byte_range) as reader:
            return b"".join(reader.iter_chunks(CHUNK))


@pytest.fixture
def sealer(store: ObjectStore) -> Sealer:
    return Sealer(store)


def test_round_trip_and_the_stored_bytes_are_not_the_audio(sealer: Sealer) -> None:
    data = b"RIFF fake wave data" * 10_000
    sealer.put("recordings/2026/11/28/one.wav", data, size=len(data))
    assert sealer.read("recordings/2026/11/28/one.wav") == data
    with sealer.inner.get("recordings/2026/11/28/one.wav") as raw:
        stored = raw.read()
    assert stored[:4] == b"RCAE"
    assert data[:64] not in stored


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, 0),
        (100, 199),
        (CHUNK - 1, CHUNK),
        (CHUNK, 2 * CHUNK + 5),
        (3 * CHUNK - 3, None),
        (0, None),
    ],
)
def test_range_reads_across_chunks(sealer: Sealer, start: int, end: int | None) -> None:
    data = bytes(range(256)) * (3 * CHUNK // 256 + 7)
    sealer.put("r", data)
    last = len(data) - 1 if end is None else min(end, len(data) - 1)
    with sealer.sealed.get("r", byte_range=ByteRange(start, end)) as reader:
        assert reader.content_range == (start, last)
        assert reader.info.size == len(data)
        assert reader.read() == data[start : last + 1]


def test_a_range_past_the_end_is_invalid(sealer: Sealer) -> None:
    sealer.put("r", bytes(1024))
    with pytest.raises(InvalidRange):
        sealer.sealed.get("r", byte_range=ByteRange(1024))


def test_zero_byte_object(sealer: Sealer) -> None:
    sealer.put("empty", b"", size=0, sha256=hashlib.sha256(b"").hexdigest())
    assert sealer.read("empty") == b""


def test_overwrite_replaces_data(sealer: Sealer) -> None:
    sealer.put("k", b"first" * 1000)
    sealer.put("k", b"second" * 2000)
    assert sealer.read("k") == b"second" * 2000


def test_a_wrong_sha256_or_size_stores_nothing(sealer: Sealer) -> None:
    data = b"audio" * 20_000
    with pytest.raises(ChecksumMismatch):
        sealer.put("bad-sha", data, sha256=hashlib.sha256(b"other").hexdigest())
    with pytest.raises(SizeMismatch):
        sealer.put("bad-size", data, size=len(data) + 1)
    for key in ("bad-sha", "bad-size"):
        assert not sealer.inner.exists(key)
        with pytest.raises(ObjectNotFound):
            sealer.sealed.get(key)


def test_a_failing_stream_stores_nothing(sealer: Sealer) -> None:
    with pytest.raises(OSError, match="connection reset"):
        put_encrypted(sealer.inner, "broken", FailingStream(b"x" * 300_000), new_data_key())  # type: ignore[arg-type]
    assert not sealer.inner.exists("broken")
