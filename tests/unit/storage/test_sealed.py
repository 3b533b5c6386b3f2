"""The sealed store: encrypted objects come out of ``get`` decrypted, ranges too; no I/O."""

from __future__ import annotations

import hashlib
import io
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recarchive.crypto.chunked import HEADER_SIZE, TAG_SIZE, Layout, new_data_key
from recarchive.errors import (
    ChecksumMismatch,
    ChunkAuthenticationFailed,
    HeaderMismatch,
    InvalidRange,
    SizeMismatch,
    TruncatedCiphertext,
)
from recarchive.storage.interfaces import DEFAULT_CONTENT_TYPE, ByteRange
from recarchive.storage.memory import InMemoryObjectStore
from recarchive.storage.sealed import ObjectSeal, SealedObjectStore, put_encrypted

KEY = "recordings/2026/03/14/0b6a1c5e-7a57-4c1b-8d1e-000000000001.wav"
#: Enough audio for a few 64 KiB chunks and a short last one.
AUDIO = os.urandom(3 * 64 * 1024 + 1234)


class Sealed:
    """An in-memory store with one encrypted object and the lookup that knows its seal."""

    def __init__(self, audio: bytes = AUDIO) -> None:
        self.inner = InMemoryObjectStore()
        self.seals: dict[str, ObjectSeal] = {}
        self.looked_up: list[str] = []
        self.store = SealedObjectStore(self.inner, self.lookup, prefix="recordings/")
        self.data_key = new_data_key()
        put = put_encrypted(self.store, KEY, io.BytesIO(audio), self.data_key, tags={"c": "x"})
        self.seals[KEY] = ObjectSeal(self.data_key, put.header, put.plaintext_size)
        self.put = put

    def lookup(self, key: str) -> ObjectSeal | None:
        self.looked_up.append(key)
        return self.seals.get(key)

    def stored(self) -> bytes:
        with self.inner.get(KEY) as reader:
            return reader.read()

    def replace_stored(self, data: bytes) -> None:
        self.inner.put(KEY, io.BytesIO(data))

    def read(self, byte_range: ByteRange | None = None) -> bytes:
        with self.store.get(KEY, byte_range=byte_range) as reader:
            return b"".join(reader.iter_chunks(10_000))


@pytest.fixture(scope="module")
def sealed() -> Sealed:
    return Sealed()


def test_the_object_is_ciphertext_of_the_expected_size(sealed: Sealed) -> None:
    stored = sealed.stored()
    assert len(stored) == Layout().ciphertext_size(len(AUDIO))
    assert AUDIO[:4096] not in stored
    assert sealed.put.plaintext_size == len(AUDIO)
    assert sealed.put.plaintext_sha256 == hashlib.sha256(AUDIO).hexdigest()
    assert sealed.put.info.sha256 is None  # the GCM tags authenticate; no hash of the ciphertext
    head = sealed.store.head(KEY)
    assert (head.size, head.content_type, head.sha256) == (len(stored), DEFAULT_CONTENT_TYPE, None)
    assert sealed.store.get_tags(KEY) == {"c": "x"}


def test_get_decrypts_the_whole_object(sealed: Sealed) -> None:
    with sealed.store.get(KEY) as reader:
        assert reader.info.size == len(AUDIO)
        assert (
            reader.info.sha256 is None
        )  # the ciphertext's would mislead; the audio's is catalogued
        assert reader.content_range == (0, len(AUDIO) - 1)
        assert reader.read() == AUDIO


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_every_range_reads_the_audio_slice(sealed: Sealed, data: st.DataObject) -> None:
    start = data.draw(st.integers(min_value=0, max_value=len(AUDIO) - 1))
    end = data.draw(st.integers(min_value=start, max_value=len(AUDIO) + 10))
    with sealed.store.get(KEY, byte_range=ByteRange(start, end)) as reader:
        assert reader.content_range == (start, min(end, len(AUDIO) - 1))
        assert reader.read() == AUDIO[start : end + 1]


def test_a_range_past_the_audio_is_invalid(sealed: Sealed) -> None:
    with pytest.raises(InvalidRange):
        sealed.store.get(KEY, byte_range=ByteRange(len(AUDIO)))


def test_plaintext_objects_and_other_keys_pass_through() -> None:
    sealed = Sealed()
    plain = "recordings/2026/03/14/plain.wav"
    sealed.store.put(plain, io.BytesIO(b"RIFF plain audio"))
    assert sealed.store.get(plain).read() == b"RIFF plain audio"
    sealed.looked_up.clear()
    sealed.store.put("_recarchive/selftest/x", io.BytesIO(b"probe"))
    assert sealed.store.get("_recarchive/selftest/x").read() == b"probe"
    assert sealed.looked_up == []  # only recordings are looked up


def test_an_empty_recording() -> None:
    sealed = Sealed(b"")
    assert sealed.read() == b""
    assert len(sealed.stored()) == HEADER_SIZE + TAG_SIZE


def test_a_tampered_chunk_fails_while_reading() -> None:
    sealed = Sealed()
    altered = bytearray(sealed.stored())
    altered[HEADER_SIZE + 64 * 1024 + TAG_SIZE + 5] ^= 1
    sealed.replace_stored(bytes(altered))
    with pytest.raises(ChunkAuthenticationFailed) as caught:
        sealed.read()
    assert caught.value.index == 1
    assert sealed.read(ByteRange(0, 100)) == AUDIO[:101]  # chunk 0 is intact
    with pytest.raises(ChunkAuthenticationFailed):
        sealed.read(ByteRange(64 * 1024, 64 * 1024))


def test_a_cut_or_lengthened_object_is_refused_before_reading() -> None:
    sealed = Sealed()
    stored = sealed.stored()
    for changed in (stored[: -(64 * 1024 + TAG_SIZE)], stored[:-1], stored + b"x"):
        sealed.replace_stored(changed)
        with pytest.raises(TruncatedCiphertext):
            sealed.store.get(KEY)
        with pytest.raises(TruncatedCiphertext):
            sealed.store.get(KEY, byte_range=ByteRange(0, 10))


def test_another_objects_header_or_object_is_refused() -> None:
    mine, theirs = Sealed(), Sealed()
    mine.replace_stored(theirs.stored()[:HEADER_SIZE] + mine.stored()[HEADER_SIZE:])
    with pytest.raises(HeaderMismatch):
        mine.read()
    mine.replace_stored(theirs.stored())  # a whole object moved under this key
    with pytest.raises(HeaderMismatch):
        mine.read()
    with pytest.raises(ChunkAuthenticationFailed):
        mine.read(ByteRange(10, 20))


def test_put_encrypted_checks_the_audio_size_and_checksum() -> None:
    store = InMemoryObjectStore()
    key = "recordings/x.wav"
    with pytest.raises(SizeMismatch, match="expected 10 bytes of audio"):
        put_encrypted(store, key, io.BytesIO(b"x" * 11), new_data_key(), size=10)
    with pytest.raises(SizeMismatch):
        put_encrypted(store, key, io.BytesIO(b"x" * 9), new_data_key(), size=10)
    with pytest.raises(ChecksumMismatch):
        put_encrypted(store, key, io.BytesIO(b"x" * 10), new_data_key(), sha256="0" * 64)
    assert not store.exists(key)
    sha = hashlib.sha256(b"x" * 10).hexdigest()
    put = put_encrypted(store, key, io.BytesIO(b"x" * 10), new_data_key(), size=10, sha256=sha)
    assert put.plaintext_sha256 == sha
