"""Streaming encryption and decryption, one chunk in memory at a time.

:class:`EncryptingReader` turns a plaintext stream into the ciphertext of
:mod:`recarchive.crypto.chunked`, readable like a file (a store's ``put``
reads it as it reads any stream), and hashes the plaintext as it goes.
:class:`DecryptingReader` turns the chunks of a :class:`ChunkSpan` back into
the plaintext bytes of that span.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

from recarchive.crypto.chunked import (
    DEFAULT_CHUNK_SIZE,
    HEADER_SIZE,
    TAG_SIZE,
    ChunkCipher,
    ChunkSpan,
    Header,
    Layout,
    read_exactly,
)
from recarchive.errors import TruncatedCiphertext

__all__ = ["DecryptingReader", "EncryptingReader", "open_decrypted", "open_decrypted_range"]


class _ChunkReader:
    """A readable stream over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""
        self._offset = 0
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            rest = [self._buffer[self._offset :], *self._chunks]
            self._buffer, self._offset = b"", 0
            return b"".join(rest)
        while self._offset >= len(self._buffer):
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._buffer, self._offset = chunk, 0
        data = self._buffer[self._offset : self._offset + size]
        self._offset += len(data)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


class EncryptingReader(_ChunkReader):
    """The ciphertext of the plaintext read from ``source``, as a readable stream.

    ``plaintext_size`` and ``plaintext_sha256`` are final once the stream has
    been read to its end. Holds at most two chunks of plaintext.
    """

    def __init__(
        self, source: BinaryIO, data_key: bytes, *, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> None:
        self.header = Header.create(data_key, chunk_size=chunk_size)
        self._cipher = ChunkCipher(data_key, self.header)
        self._source = source
        self._hash = hashlib.sha256()
        self.plaintext_size = 0
        self.finished = False
        super().__init__(self._generate())

    @property
    def plaintext_sha256(self) -> str:
        """SHA-256 of the plaintext read so far, lowercase hex."""
        return self._hash.hexdigest()

    def _generate(self) -> Iterator[bytes]:
        yield self.header.to_bytes()
        chunk_size = self.header.chunk_size
        current = read_exactly(self._source, chunk_size)
        index = 0
        while True:
            following = (
                read_exactly(self._source, chunk_size) if len(current) == chunk_size else b""
            )
            final = not following
            self._hash.update(current)
            self.plaintext_size += len(current)
            yield self._cipher.encrypt(index, current, final=final)
            if final:
                break
            current, index = following, index + 1
        self.finished = True


class DecryptingReader(_ChunkReader):
    """The plaintext of ``span`` from ``ciphertext``, a stream positioned at its first chunk.

    Each chunk is authenticated before any of its bytes is returned. Raises,
    while reading, :class:`~recarchive.errors.TruncatedCiphertext` when the
    stream ends early and
    :class:`~recarchive.errors.ChunkAuthenticationFailed` for a chunk that
    fails authentication.
    """

    def __init__(
        self,
        ciphertext: BinaryIO,
        cipher: ChunkCipher,
        span: ChunkSpan,
        plaintext_size: int,
    ) -> None:
        self._ciphertext = ciphertext
        self._cipher = cipher
        self._span = span
        self._layout = cipher.header.layout
        self._last_index = self._layout.chunk_count(plaintext_size) - 1
        self._plaintext_size = plaintext_size
        super().__init__(self._generate())

    def _chunk_length(self, index: int) -> int:
        if index < self._last_index:
            return self._layout.stride
        return self._plaintext_size - index * self._layout.chunk_size + TAG_SIZE

    def _generate(self) -> Iterator[bytes]:
        skip, remaining = self._span.skip, self._span.length
        for index in range(self._span.first, self._span.last + 1):
            wanted = self._chunk_length(index)
            data = read_exactly(self._ciphertext, wanted)
            if len(data) < wanted:
                raise TruncatedCiphertext(
                    f"encrypted object ends inside chunk {index} ({len(data)} of {wanted} bytes)"
                )
            plaintext = self._cipher.decrypt(index, data, final=index == self._last_index)
            piece = plaintext[skip : skip + remaining]
            skip, remaining = 0, remaining - len(piece)
            if piece:
                yield piece

    def close(self) -> None:
        super().close()
        self._ciphertext.close()


def open_decrypted(
    ciphertext: BinaryIO,
    data_key: bytes,
    ciphertext_size: int,
    *,
    expected_size: int | None = None,
) -> DecryptingReader:
    """The whole plaintext of the encrypted object read from ``ciphertext`` (from its start).

    ``expected_size``, the plaintext size when known (the catalogue keeps it),
    tells a cut inside the final chunk from an altered final chunk: a
    ciphertext of another size raises
    :class:`~recarchive.errors.TruncatedCiphertext` before anything is read.
    Raises :class:`~recarchive.errors.TruncatedCiphertext`,
    :class:`~recarchive.errors.UnsupportedEncryption` or
    :class:`~recarchive.errors.HeaderMismatch` for the header at once, and the
    errors of :class:`DecryptingReader` while reading.
    """
    header = Header.parse(read_exactly(ciphertext, HEADER_SIZE))
    layout: Layout = header.layout
    plaintext_size = layout.plaintext_size(ciphertext_size)
    if expected_size is not None and plaintext_size != expected_size:
        raise TruncatedCiphertext(
            f"encrypted object holds {plaintext_size} bytes of plaintext, expected {expected_size}"
        )
    cipher = ChunkCipher(data_key, header)
    return DecryptingReader(ciphertext, cipher, layout.whole(plaintext_size), plaintext_size)


def open_decrypted_range(
    fetch: Callable[[int, int], BinaryIO],
    data_key: bytes,
    header: Header,
    ciphertext_size: int,
    start: int,
    end: int,
) -> DecryptingReader:
    """Plaintext bytes ``start`` to ``end`` (inclusive) of an encrypted object.

    ``fetch(first, last)`` opens the inclusive ciphertext byte range given:
    it is called once, for the chunks that hold the range and no others.
    ``0 <= start <= end < plaintext size``, else :class:`ValueError`.
    """
    layout = header.layout
    plaintext_size = layout.plaintext_size(ciphertext_size)
    span = layout.span(start, end, plaintext_size)
    cipher = ChunkCipher(data_key, header)
    stream = fetch(span.ciphertext_start, span.ciphertext_end)
    return DecryptingReader(stream, cipher, span, plaintext_size)
