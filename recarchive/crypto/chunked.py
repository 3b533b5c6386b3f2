"""The format of an encrypted object: AES-256-GCM in fixed-size chunks (version 1).

An encrypted object is a header followed by chunks::

    header (56 bytes) | chunk 0 | chunk 1 | ... | chunk n-1

The header, all of it public::

    offset  size  field
    0       4     magic b"RCAE"
    4       1     format version: 1
    5       1     log2 of the plaintext chunk size (16: 64 KiB)
    6       2     reserved, zero
    8       16    object id: random, new for every encryption
    24      32    key commitment

From the data key (32 random bytes, one per recording) HKDF-SHA256, salted
with the object id and given the first 24 header bytes as info, derives 64
bytes: the chunk key (the first 32) and the key commitment (the last 32).
The commitment in the header proves that header and data key belong
together before any chunk is opened: a header moved from another object
is refused as :class:`~recarchive.errors.HeaderMismatch`.

Chunk ``i`` is ``AES-256-GCM(chunk key, nonce_i, plaintext_i, aad=header[0:24])``
with its 16-byte tag appended; ``nonce_i`` is ``i`` as an 11-byte big-endian
number followed by one byte, 1 for the final chunk and 0 for the others.
Every chunk but the last holds exactly the chunk size of plaintext; the last
holds 1 to chunk-size bytes, or nothing when the whole plaintext is empty (an
empty plaintext is one empty final chunk). So a chunk decrypts only at its
own position of its own object, a cut at a chunk boundary is detected (the
last chunk left is not marked final) and nothing can be appended after the
final chunk.

The plaintext size follows from the ciphertext size and back
(:meth:`Layout.ciphertext_size`, :meth:`Layout.plaintext_size`), and a
plaintext byte range maps to the chunks that hold it
(:meth:`Layout.span`): a range read fetches and decrypts only those.
Streams are encrypted and decrypted one chunk at a time: memory does not grow
with the object.
"""

from __future__ import annotations

import dataclasses
import hmac
import os
import struct
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from recarchive.errors import (
    ChunkAuthenticationFailed,
    HeaderMismatch,
    TruncatedCiphertext,
    UnsupportedEncryption,
)

__all__ = [
    "DATA_KEY_SIZE",
    "DEFAULT_CHUNK_SIZE",
    "HEADER_SIZE",
    "TAG_SIZE",
    "ChunkCipher",
    "ChunkSpan",
    "Header",
    "Layout",
    "new_data_key",
]

MAGIC = b"RCAE"
VERSION = 1
DATA_KEY_SIZE = 32
OBJECT_ID_SIZE = 16
TAG_SIZE = 16
NONCE_SIZE = 12
#: Header bytes that every chunk authenticates (all but the commitment).
_BOUND_SIZE = 24
HEADER_SIZE = _BOUND_SIZE + 32
DEFAULT_CHUNK_SIZE = 64 * 1024
#: Chunk sizes a header may name: 64 bytes (tests) to 16 MiB.
_MIN_CHUNK_LOG2, _MAX_CHUNK_LOG2 = 6, 24
_PREFIX = struct.Struct(">4sBB2s16s")
_KDF_INFO = b"recarchive chunked aes-256-gcm v1\x00"


def new_data_key() -> bytes:
    """A fresh random 256-bit data key (from the operating system's CSPRNG)."""
    return AESGCM.generate_key(bit_length=256)


def _check_chunk_size(chunk_size: int) -> int:
    log2 = max(0, chunk_size.bit_length() - 1)
    if chunk_size != 1 << log2 or not _MIN_CHUNK_LOG2 <= log2 <= _MAX_CHUNK_LOG2:
        raise ValueError(
            f"chunk size must be a power of two from {1 << _MIN_CHUNK_LOG2} "
            f"to {1 << _MAX_CHUNK_LOG2} bytes, got {chunk_size}"
        )
    return log2


def _derive(data_key: bytes, bound: bytes, object_id: bytes) -> tuple[bytes, bytes]:
    """The chunk key and the key commitment of a data key and a header."""
    if len(data_key) != DATA_KEY_SIZE:
        raise ValueError(f"a data key has {DATA_KEY_SIZE} bytes, got {len(data_key)}")
    okm = HKDF(hashes.SHA256(), 64, salt=object_id, info=_KDF_INFO + bound).derive(data_key)
    return okm[:32], okm[32:]


@dataclasses.dataclass(frozen=True, slots=True)
class Header:
    """The header of one encrypted object."""

    chunk_size: int
    object_id: bytes
    commitment: bytes

    @classmethod
    def create(cls, data_key: bytes, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Header:
        """A header for a new object under ``data_key``, with a new random object id."""
        object_id = os.urandom(OBJECT_ID_SIZE)
        bound = _bound_bytes(chunk_size, object_id)
        _, commitment = _derive(data_key, bound, object_id)
        return cls(chunk_size, object_id, commitment)

    @classmethod
    def parse(cls, data: bytes) -> Header:
        """Read a header from the first :data:`HEADER_SIZE` bytes of an object.

        Raises :class:`~recarchive.errors.TruncatedCiphertext` when fewer bytes
        are given and :class:`~recarchive.errors.UnsupportedEncryption` for an
        unknown magic, version, chunk size or non-zero reserved bytes.
        """
        if len(data) < HEADER_SIZE:
            raise TruncatedCiphertext(
                f"encrypted object has {len(data)} bytes, its header alone has {HEADER_SIZE}"
            )
        magic, version, log2, reserved, object_id = _PREFIX.unpack_from(data)
        if magic != MAGIC:
            raise UnsupportedEncryption("object does not start with an encryption header")
        if version != VERSION:
            raise UnsupportedEncryption(f"encryption format version {version} is not supported")
        if reserved != b"\0\0" or not _MIN_CHUNK_LOG2 <= log2 <= _MAX_CHUNK_LOG2:
            raise UnsupportedEncryption("encryption header has unsupported fields")
        return cls(1 << log2, object_id, bytes(data[_BOUND_SIZE:HEADER_SIZE]))

    @property
    def bound(self) -> bytes:
        """The header bytes every chunk authenticates."""
        return _bound_bytes(self.chunk_size, self.object_id)

    def to_bytes(self) -> bytes:
        return self.bound + self.commitment

    @property
    def layout(self) -> Layout:
        return Layout(self.chunk_size)


def _bound_bytes(chunk_size: int, object_id: bytes) -> bytes:
    if len(object_id) != OBJECT_ID_SIZE:
        raise ValueError(f"an object id has {OBJECT_ID_SIZE} bytes")
    return _PREFIX.pack(MAGIC, VERSION, _check_chunk_size(chunk_size), b"\0\0", object_id)


@dataclasses.dataclass(frozen=True, slots=True)
class ChunkSpan:
    """The chunks that hold a plaintext byte range, and where they lie in the ciphertext."""

    #: Indexes of the first and the last chunk.
    first: int
    last: int
    #: Inclusive byte range of those chunks in the encrypted object.
    ciphertext_start: int
    ciphertext_end: int
    #: Plaintext bytes to drop from the start of the first chunk.
    skip: int
    #: Plaintext bytes the range holds.
    length: int


@dataclasses.dataclass(frozen=True, slots=True)
class Layout:
    """Sizes and offsets of encrypted objects with one chunk size."""

    chunk_size: int = DEFAULT_CHUNK_SIZE

    def __post_init__(self) -> None:
        _check_chunk_size(self.chunk_size)

    @property
    def stride(self) -> int:
        """Bytes a full chunk takes in the ciphertext."""
        return self.chunk_size + TAG_SIZE

    def chunk_count(self, plaintext_size: int) -> int:
        """Chunks of a plaintext of that size: at least one (an empty final chunk)."""
        if plaintext_size < 0:
            raise ValueError(f"negative plaintext size {plaintext_size}")
        return max(1, -(-plaintext_size // self.chunk_size))

    def ciphertext_size(self, plaintext_size: int) -> int:
        """Size of the encrypted object of a plaintext of ``plaintext_size`` bytes."""
        return HEADER_SIZE + self.chunk_count(plaintext_size) * TAG_SIZE + plaintext_size

    def plaintext_size(self, ciphertext_size: int) -> int:
        """Size of the plaintext of an encrypted object of ``ciphertext_size`` bytes.

        Raises :class:`~recarchive.errors.TruncatedCiphertext` for a size no
        encryption produces (an object cut short, or lengthened).
        """
        body = ciphertext_size - HEADER_SIZE
        full, rest = divmod(body, self.stride)
        if body < TAG_SIZE or (rest < TAG_SIZE and not (rest == 0 and full > 0)):
            raise TruncatedCiphertext(
                f"an encrypted object of {ciphertext_size} bytes is cut short or lengthened"
            )
        if rest == TAG_SIZE and full > 0:
            raise TruncatedCiphertext(
                f"an encrypted object of {ciphertext_size} bytes has an empty chunk after "
                "full ones: it was altered"
            )
        return full * self.chunk_size + max(0, rest - TAG_SIZE)

    def span(self, start: int, end: int, plaintext_size: int) -> ChunkSpan:
        """The chunks holding plaintext bytes ``start`` to ``end`` (inclusive).

        ``0 <= start <= end < plaintext_size``; for the whole of an empty
        plaintext use :meth:`whole`. Raises :class:`ValueError` otherwise.
        """
        if not 0 <= start <= end < plaintext_size:
            raise ValueError(f"byte range {start}-{end} is not within {plaintext_size} bytes")
        first, last = start // self.chunk_size, end // self.chunk_size
        last_end = HEADER_SIZE + (last + 1) * self.stride - 1
        return ChunkSpan(
            first=first,
            last=last,
            ciphertext_start=HEADER_SIZE + first * self.stride,
            ciphertext_end=min(last_end, self.ciphertext_size(plaintext_size) - 1),
            skip=start - first * self.chunk_size,
            length=end - start + 1,
        )

    def whole(self, plaintext_size: int) -> ChunkSpan:
        """Every chunk of a plaintext of ``plaintext_size`` bytes (empty or not)."""
        if plaintext_size:
            return self.span(0, plaintext_size - 1, plaintext_size)
        return ChunkSpan(0, 0, HEADER_SIZE, HEADER_SIZE + TAG_SIZE - 1, 0, 0)


class ChunkCipher:
    """Encrypts and decrypts the chunks of one object under its data key and header.

    Raises :class:`~recarchive.errors.HeaderMismatch` when the header's key
    commitment does not match the data key.
    """

    def __init__(self, data_key: bytes, header: Header) -> None:
        chunk_key, commitment = _derive(data_key, header.bound, header.object_id)
        if not hmac.compare_digest(commitment, header.commitment):
            raise HeaderMismatch()
        self.header = header
        self._aad = header.bound
        self._aead = AESGCM(chunk_key)

    @staticmethod
    def nonce(index: int, *, final: bool) -> bytes:
        return index.to_bytes(NONCE_SIZE - 1, "big") + (b"\x01" if final else b"\x00")

    def encrypt(self, index: int, plaintext: bytes, *, final: bool) -> bytes:
        """Chunk ``index`` of the ciphertext: ``plaintext`` encrypted, its tag appended."""
        return self._aead.encrypt(self.nonce(index, final=final), plaintext, self._aad)

    def decrypt(self, index: int, ciphertext: bytes, *, final: bool) -> bytes:
        """The plaintext of chunk ``index``, authenticated.

        Raises :class:`~recarchive.errors.TruncatedCiphertext` when the last
        chunk present is not marked final (the object was cut at a chunk
        boundary) and :class:`~recarchive.errors.ChunkAuthenticationFailed`
        for any other chunk that fails authentication.
        """
        try:
            return self._aead.decrypt(self.nonce(index, final=final), ciphertext, self._aad)
        except InvalidTag:
            pass
        if final and self._opens(index, ciphertext, final=False):
            raise TruncatedCiphertext(
                f"encrypted object ends after chunk {index}, which is not its final chunk"
            )
        raise ChunkAuthenticationFailed(
            f"chunk {index} of the encrypted object failed authentication "
            "(altered, moved, or from another object)",
            index=index,
        )

    def _opens(self, index: int, ciphertext: bytes, *, final: bool) -> bool:
        try:
            self._aead.decrypt(self.nonce(index, final=final), ciphertext, self._aad)
        except InvalidTag:
            return False
        return True


def read_exactly(stream: BinaryIO, size: int) -> bytes:
    """Read ``size`` bytes, fewer only at the end of the stream (reads may come short)."""
    parts: list[bytes] = []
    wanted = size
    while wanted > 0:
        part = stream.read(wanted)
        if not part:
            break
        parts.append(part)
        wanted -= len(part)
    return b"".join(parts)
