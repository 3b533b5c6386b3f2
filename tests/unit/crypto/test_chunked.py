"""The chunked AES-256-GCM format: sizes, ranges, round trips and every kind of tampering."""

from __future__ import annotations

import hashlib
import io
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recarchive.crypto.chunked import (
    DEFAULT_CHUNK_SIZE,
    HEADER_SIZE,
    TAG_SIZE,
    ChunkCipher,
    Header,
    Layout,
    new_data_key,
)
from recarchive.crypto.streams import EncryptingReader, open_decrypted, open_decrypted_range
from recarchive.errors import (
    ChunkAuthenticationFailed,
    HeaderMismatch,
    TruncatedCiphertext,
    UnsupportedEncryption,
)

#: Small chunks in most tests, so that a few hundred bytes span many chunks.
SMALL = 64
KEY = bytes(range(32))


def encrypt(plaintext: bytes, key: bytes = KEY, chunk_size: int = SMALL) -> bytes:
    reader = EncryptingReader(io.BytesIO(plaintext), key, chunk_size=chunk_size)
    ciphertext = reader.read()
    assert reader.finished
    return ciphertext


def decrypt(ciphertext: bytes, key: bytes = KEY, expected_size: int | None = None) -> bytes:
    stream = io.BytesIO(ciphertext)
    return open_decrypted(stream, key, len(ciphertext), expected_size=expected_size).read()


def read_range(ciphertext: bytes, start: int, end: int, key: bytes = KEY) -> bytes:
    fetched: list[tuple[int, int]] = []

    def fetch(first: int, last: int) -> io.BytesIO:
        fetched.append((first, last))
        return io.BytesIO(ciphertext[first : last + 1])

    header = Header.parse(ciphertext[:HEADER_SIZE])
    data = open_decrypted_range(fetch, key, header, len(ciphertext), start, end).read()
    assert len(fetched) == 1
    return data


SIZES = [0, 1, SMALL - 1, SMALL, SMALL + 1, 3 * SMALL, 3 * SMALL + 7]


@pytest.mark.parametrize("size", SIZES)
def test_round_trip(size: int) -> None:
    plaintext = os.urandom(size)
    ciphertext = encrypt(plaintext)
    assert len(ciphertext) == Layout(SMALL).ciphertext_size(size)
    assert decrypt(ciphertext) == plaintext


@pytest.mark.parametrize("size", [0, 1, DEFAULT_CHUNK_SIZE, 2 * DEFAULT_CHUNK_SIZE + 5])
def test_round_trip_with_the_default_chunk_size(size: int) -> None:
    plaintext = os.urandom(size)
    ciphertext = encrypt(plaintext, chunk_size=DEFAULT_CHUNK_SIZE)
    assert ciphertext[:6] == b"RCAE\x01\x10"
    assert decrypt(ciphertext) == plaintext


def test_the_encrypting_reader_hashes_the_plaintext_and_reads_in_any_sizes() -> None:
    plaintext = os.urandom(5 * SMALL + 3)
    reader = EncryptingReader(io.BytesIO(plaintext), KEY, chunk_size=SMALL)
    parts = []
    while part := reader.read(7):
        parts.append(part)
    assert decrypt(b"".join(parts)) == plaintext
    assert reader.plaintext_size == len(plaintext)
    assert reader.plaintext_sha256 == hashlib.sha256(plaintext).hexdigest()


class TrickleStream(io.RawIOBase):
    """A stream whose reads return at most 5 bytes, as sockets and pipes may."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(size, 5) if size >= 0 else 5)


def test_short_reads_from_the_source_make_the_same_chunks() -> None:
    plaintext = os.urandom(3 * SMALL)
    ciphertext = EncryptingReader(TrickleStream(plaintext), KEY, chunk_size=SMALL).read()  # type: ignore[arg-type]
    assert len(ciphertext) == Layout(SMALL).ciphertext_size(len(plaintext))
    assert decrypt(ciphertext) == plaintext


def test_two_encryptions_of_one_plaintext_differ() -> None:
    plaintext = b"x" * 100
    assert encrypt(plaintext) != encrypt(plaintext)


@given(st.integers(min_value=0, max_value=20 * SMALL))
def test_sizes_map_both_ways(size: int) -> None:
    layout = Layout(SMALL)
    assert layout.plaintext_size(layout.ciphertext_size(size)) == size


def test_sizes_no_encryption_produces_are_refused() -> None:
    layout = Layout(SMALL)
    impossible = [0, HEADER_SIZE, HEADER_SIZE + TAG_SIZE - 1, HEADER_SIZE + layout.stride + 3]
    impossible.append(HEADER_SIZE + layout.stride + TAG_SIZE)  # an empty chunk after a full one
    for size in impossible:
        with pytest.raises(TruncatedCiphertext):
            layout.plaintext_size(size)


def test_the_span_of_a_range_names_only_its_chunks() -> None:
    layout = Layout(SMALL)
    span = layout.span(SMALL + 3, 2 * SMALL + 1, 10 * SMALL)
    assert (span.first, span.last, span.skip, span.length) == (1, 2, 3, SMALL - 1)
    assert span.ciphertext_start == HEADER_SIZE + layout.stride
    assert span.ciphertext_end == HEADER_SIZE + 3 * layout.stride - 1
    last = layout.span(10 * SMALL + 2, 10 * SMALL + 2, 10 * SMALL + 5)
    assert last.ciphertext_end == layout.ciphertext_size(10 * SMALL + 5) - 1
    with pytest.raises(ValueError, match="not within"):
        layout.span(5, 5, 5)


@settings(max_examples=300, deadline=None)  # a loaded CI machine is no timing failure
@given(st.data())
def test_every_range_decrypts_to_the_slice_of_the_plaintext(data: st.DataObject) -> None:
    size = data.draw(st.integers(min_value=1, max_value=8 * SMALL + 9), label="size")
    start = data.draw(st.integers(min_value=0, max_value=size - 1), label="start")
    end = data.draw(st.integers(min_value=start, max_value=size - 1), label="end")
    plaintext = bytes(i % 251 for i in range(size))
    ciphertext = encrypt(plaintext)
    assert read_range(ciphertext, start, end) == plaintext[start : end + 1]


def test_a_range_read_fetches_only_its_chunks() -> None:
    plaintext = os.urandom(20 * SMALL)
    ciphertext = encrypt(plaintext)
    header = Header.parse(ciphertext[:HEADER_SIZE])
    fetched = []

    def fetch(first: int, last: int) -> io.BytesIO:
        fetched.append((first, last))
        return io.BytesIO(ciphertext[first : last + 1])

    reader = open_decrypted_range(fetch, KEY, header, len(ciphertext), 10 * SMALL, 10 * SMALL + 9)
    assert reader.read() == plaintext[10 * SMALL : 10 * SMALL + 10]
    stride = SMALL + TAG_SIZE
    assert fetched == [(HEADER_SIZE + 10 * stride, HEADER_SIZE + 11 * stride - 1)]


# --- tampering ------------------------------------------------------------------------------


def test_any_altered_byte_is_detected() -> None:
    ciphertext = encrypt(os.urandom(3 * SMALL + 5))
    for position in range(len(ciphertext)):
        altered = bytearray(ciphertext)
        altered[position] ^= 0x01
        # Magic, version and reserved bytes are refused as such; another chunk size,
        # object id or commitment no longer belongs to the key; any chunk byte fails it.
        if position < 8 and position != 5:
            error: type[Exception] = UnsupportedEncryption
        elif position < HEADER_SIZE:
            error = HeaderMismatch
        else:
            error = ChunkAuthenticationFailed
        with pytest.raises(error):
            decrypt(bytes(altered))


def test_an_altered_chunk_is_named() -> None:
    ciphertext = bytearray(encrypt(os.urandom(3 * SMALL)))
    ciphertext[HEADER_SIZE + SMALL + TAG_SIZE + 4] ^= 0x80
    with pytest.raises(ChunkAuthenticationFailed) as caught:
        decrypt(bytes(ciphertext))
    assert caught.value.index == 1


def test_an_object_cut_at_a_chunk_boundary_is_truncated() -> None:
    ciphertext = encrypt(os.urandom(3 * SMALL))
    stride = SMALL + TAG_SIZE
    with pytest.raises(TruncatedCiphertext, match="not its final chunk"):
        decrypt(ciphertext[: HEADER_SIZE + 2 * stride])  # the last chunk dropped


@pytest.mark.parametrize("cut", [1, 5, 20 + TAG_SIZE - 1, 20 + TAG_SIZE, SMALL + 20 + TAG_SIZE])
def test_an_object_cut_anywhere_is_truncated_given_its_size(cut: int) -> None:
    size = 3 * SMALL + 20
    ciphertext = encrypt(os.urandom(size))
    with pytest.raises(TruncatedCiphertext):
        decrypt(ciphertext[:-cut], expected_size=size)
    # Without the size, a cut inside the final chunk looks like an altered final chunk.
    with pytest.raises((TruncatedCiphertext, ChunkAuthenticationFailed)):
        decrypt(ciphertext[:-cut])


def test_a_header_alone_is_truncated() -> None:
    ciphertext = encrypt(b"")
    with pytest.raises(TruncatedCiphertext):
        decrypt(ciphertext[:HEADER_SIZE])
    with pytest.raises(TruncatedCiphertext):
        decrypt(ciphertext[: HEADER_SIZE - 1])


def test_a_chunk_appended_after_the_final_one_is_detected() -> None:
    ciphertext = encrypt(os.urandom(2 * SMALL))
    stride = SMALL + TAG_SIZE
    with pytest.raises(ChunkAuthenticationFailed):
        decrypt(ciphertext + ciphertext[HEADER_SIZE : HEADER_SIZE + stride])


def test_reordered_chunks_fail() -> None:
    ciphertext = encrypt(os.urandom(3 * SMALL))
    stride = SMALL + TAG_SIZE
    chunks = [
        ciphertext[HEADER_SIZE + i * stride : HEADER_SIZE + (i + 1) * stride] for i in range(3)
    ]
    swapped = ciphertext[:HEADER_SIZE] + chunks[1] + chunks[0] + chunks[2]
    with pytest.raises(ChunkAuthenticationFailed) as caught:
        decrypt(swapped)
    assert caught.value.index == 0


def test_a_chunk_from_another_object_fails_even_under_the_same_data_key() -> None:
    first, second = encrypt(os.urandom(2 * SMALL)), encrypt(os.urandom(2 * SMALL))
    stride = SMALL + TAG_SIZE
    mixed = first[: HEADER_SIZE + stride] + second[HEADER_SIZE + stride :]
    with pytest.raises(ChunkAuthenticationFailed) as caught:
        decrypt(mixed)
    assert caught.value.index == 1


def test_a_header_from_another_object_is_refused() -> None:
    other_key = new_data_key()
    mine, theirs = encrypt(b"a" * 100), encrypt(b"b" * 100, key=other_key)
    with pytest.raises(HeaderMismatch):
        decrypt(theirs[:HEADER_SIZE] + mine[HEADER_SIZE:])
    with pytest.raises(HeaderMismatch):
        decrypt(mine, key=other_key)


def test_a_header_from_another_object_under_the_same_key_fails_its_chunks() -> None:
    mine, theirs = encrypt(b"a" * 100), encrypt(b"b" * 100)
    with pytest.raises(ChunkAuthenticationFailed):
        decrypt(theirs[:HEADER_SIZE] + mine[HEADER_SIZE:])


def test_a_range_of_a_tampered_chunk_fails() -> None:
    ciphertext = bytearray(encrypt(os.urandom(4 * SMALL)))
    ciphertext[HEADER_SIZE + 2 * (SMALL + TAG_SIZE) + 1] ^= 0x04
    assert read_range(bytes(ciphertext), 0, SMALL - 1) is not None  # untouched chunk: fine
    with pytest.raises(ChunkAuthenticationFailed):
        read_range(bytes(ciphertext), 2 * SMALL, 2 * SMALL)


def test_plaintext_or_foreign_data_is_not_taken_for_an_encrypted_object() -> None:
    with pytest.raises(UnsupportedEncryption):
        decrypt(b"RIFF" + bytes(200))
    header = bytearray(encrypt(b"")[:HEADER_SIZE])
    header[4] = 2
    with pytest.raises(UnsupportedEncryption, match="version 2"):
        Header.parse(bytes(header))


def test_the_nonce_binds_index_and_finality() -> None:
    assert ChunkCipher.nonce(1, final=False) == bytes(10) + b"\x01\x00"
    assert ChunkCipher.nonce(1, final=True) == bytes(10) + b"\x01\x01"
    assert len({ChunkCipher.nonce(i, final=f) for i in range(3) for f in (True, False)}) == 6


def test_chunk_sizes_are_powers_of_two_in_bounds() -> None:
    for size in (0, 32, 100, 1 << 25):
        with pytest.raises(ValueError, match="power of two"):
            Layout(size)
