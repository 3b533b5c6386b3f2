"""Encrypted recordings in any object store: encrypted on put, decrypted on get.

:func:`put_encrypted` stores a recording's audio encrypted under its data key
(:mod:`recarchive.crypto.chunked`) and reports what the catalogue keeps of
it: the encryption header, the plaintext's size and SHA-256.
:class:`SealedObjectStore` wraps the configured store: its ``get`` decrypts
the objects its ``lookup`` knows as encrypted (the catalogue's data keys,
given by the runtime: storage knows nothing of the catalogue) and passes
every other object through unchanged, so that a mix of encrypted and older
plaintext recordings reads alike. A byte range is a range of the audio: only
the chunks that hold it are fetched and decrypted.

Sizes, listings, tags and ``head`` are the stored object's (the ciphertext's):
a ciphertext is its plaintext's size plus 56 bytes and 16 per 64 KiB, so it
reveals no more than the plaintext's size did. The store keeps no SHA-256 of
an encrypted object (it is put with ``checksum=False``): every chunk carries
its own GCM tag, which authenticates it better than a hash beside it could,
and the audio's SHA-256 lives only in the catalogue, where ``verify`` checks it
after decrypting.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, BinaryIO, cast

from recarchive.crypto.chunked import HEADER_SIZE, ChunkCipher, Header, Layout, read_exactly
from recarchive.crypto.streams import DecryptingReader, EncryptingReader
from recarchive.errors import ChecksumMismatch, HeaderMismatch, SizeMismatch, TruncatedCiphertext
from recarchive.storage.interfaces import (
    CHUNK_SIZE,
    DEFAULT_CONTENT_TYPE,
    ByteRange,
    DeleteResult,
    ObjectInfo,
    ObjectReader,
    ObjectStore,
    SweepResult,
    validate_expected,
)

__all__ = ["ObjectSeal", "SealedObjectStore", "SealedPut", "put_encrypted"]


@dataclasses.dataclass(frozen=True, slots=True)
class ObjectSeal:
    """What decrypting one object takes: its data key, its header, its plaintext's size."""

    data_key: bytes = dataclasses.field(repr=False)
    header: bytes
    plaintext_size: int


#: Looks up the seal of an object key: None for an object stored in plaintext (or unknown).
SealLookup = Callable[[str], ObjectSeal | None]


@dataclasses.dataclass(frozen=True, slots=True)
class SealedPut:
    """An object stored encrypted, and what the catalogue keeps of it."""

    #: The stored object (the ciphertext's size; no SHA-256, see the module).
    info: ObjectInfo
    header: bytes
    plaintext_size: int
    plaintext_sha256: str


def put_encrypted(
    store: ObjectStore,
    key: str,
    stream: BinaryIO,
    data_key: bytes,
    *,
    size: int | None = None,
    sha256: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> SealedPut:
    """Store the plaintext read from ``stream`` under ``key``, encrypted with ``data_key``.

    ``size`` and ``sha256`` are the plaintext's, checked as
    :meth:`ObjectStore.put` checks them: a stream of another size raises
    :class:`~recarchive.errors.SizeMismatch` and nothing is stored; another
    SHA-256 raises :class:`~recarchive.errors.ChecksumMismatch` and the
    object is deleted again. The object's content type is
    ``application/octet-stream`` whatever the audio (it is no longer audio).
    """
    expected_sha = validate_expected(key, size, sha256)
    encrypting = EncryptingReader(stream, data_key)
    ciphertext_size = None if size is None else encrypting.header.layout.ciphertext_size(size)
    try:
        info = store.put(
            key,
            cast(BinaryIO, encrypting),
            size=ciphertext_size,
            content_type=DEFAULT_CONTENT_TYPE,
            tags=tags,
            checksum=False,  # the GCM tags authenticate every chunk
        )
    except SizeMismatch:
        raise SizeMismatch(
            f"size mismatch for {key!r}: expected {size} bytes of audio, the stream has "
            f"{'more' if encrypting.plaintext_size > (size or 0) else encrypting.plaintext_size}; "
            "nothing was stored"
        ) from None
    if not encrypting.finished:
        store.delete(key)
        raise SizeMismatch(f"the store did not read the whole stream for {key!r}")
    if expected_sha is not None and encrypting.plaintext_sha256 != expected_sha:
        store.delete(key)
        raise ChecksumMismatch(
            f"sha256 mismatch for {key!r}: expected {expected_sha}, got "
            f"{encrypting.plaintext_sha256}; nothing was kept"
        )
    return SealedPut(
        info,
        encrypting.header.to_bytes(),
        encrypting.plaintext_size,
        encrypting.plaintext_sha256,
    )


class _DecryptedReader:
    """The plaintext of an encrypted object (or a range of it), read from the store's reader."""

    def __init__(
        self,
        info: ObjectInfo,
        content_range: tuple[int, int],
        stored: ObjectReader,
        plaintext: DecryptingReader,
    ) -> None:
        self.info = info
        self.content_range = content_range
        self._stored = stored
        self._plaintext = plaintext

    def read(self, size: int = -1) -> bytes:
        return self._plaintext.read(size)

    def iter_chunks(self, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        while chunk := self.read(chunk_size):
            yield chunk

    def close(self) -> None:
        self._stored.close()

    def __enter__(self) -> _DecryptedReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SealedObjectStore:
    """An object store whose ``get`` decrypts the encrypted objects ``lookup`` knows.

    Only keys under ``prefix`` (the recordings') are looked up; everything
    else, and every other method, is the wrapped store's. ``get`` raises,
    besides what the store raises,
    :class:`~recarchive.errors.TruncatedCiphertext` when the stored object
    is not the size its audio encrypts to,
    :class:`~recarchive.errors.HeaderMismatch` when its header is not the
    one the catalogue holds, and, while reading,
    :class:`~recarchive.errors.ChunkAuthenticationFailed` for a chunk that
    fails authentication; the ``lookup``'s errors pass through (a destroyed
    or unwrappable data key).
    """

    def __init__(self, inner: ObjectStore, lookup: SealLookup, *, prefix: str = "") -> None:
        self.inner = inner
        self.backend = inner.backend
        self._lookup = lookup
        self._prefix = prefix

    def get(self, key: str, *, byte_range: ByteRange | None = None) -> ObjectReader:
        seal = self._lookup(key) if key.startswith(self._prefix) else None
        if seal is None:
            return self.inner.get(key, byte_range=byte_range)
        header = Header.parse(seal.header)
        layout: Layout = header.layout
        size = seal.plaintext_size
        if byte_range is not None:
            start, end = byte_range.resolve(size)
            span = layout.span(start, end, size)
            fetch_from = span.ciphertext_start
        else:
            start, end = 0, size - 1
            span = layout.whole(size)
            fetch_from = 0  # the whole object: its header is checked too
        stored = self.inner.get(key, byte_range=ByteRange(fetch_from, span.ciphertext_end))
        try:
            expected = layout.ciphertext_size(size)
            if stored.info.size != expected:
                raise TruncatedCiphertext(
                    f"object {key!r} has {stored.info.size} bytes; its {size} bytes of audio "
                    f"encrypt to {expected}"
                )
            if byte_range is None and read_exactly(cast(BinaryIO, stored), HEADER_SIZE) != (
                seal.header
            ):
                raise HeaderMismatch(f"object {key!r} carries another encryption header")
            cipher = ChunkCipher(seal.data_key, header)
            plaintext = DecryptingReader(cast(BinaryIO, stored), cipher, span, size)
        except BaseException:
            stored.close()
            raise
        info = dataclasses.replace(stored.info, size=size, sha256=None)
        return _DecryptedReader(info, (start, end), stored, plaintext)

    # --- everything else is the wrapped store's -------------------------------------------

    def __getattr__(self, name: str) -> Any:
        """The wrapped store's own attributes (``root``, ``bucket``, ``client``...)."""
        if name == "inner":  # not set yet: being unpickled or half-built
            raise AttributeError(name)
        return getattr(self.inner, name)

    def check(self) -> None:
        self.inner.check()

    def create(self) -> bool:
        return self.inner.create()

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
        return self.inner.put(
            key,
            stream,
            size=size,
            sha256=sha256,
            content_type=content_type,
            metadata=metadata,
            tags=tags,
            checksum=checksum,
        )

    def head(self, key: str) -> ObjectInfo:
        return self.inner.head(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def delete_many(self, keys: Iterable[str]) -> DeleteResult:
        return self.inner.delete_many(keys)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def get_tags(self, key: str) -> dict[str, str]:
        return self.inner.get_tags(key)

    def set_tags(self, key: str, tags: Mapping[str, str]) -> None:
        self.inner.set_tags(key, tags)

    def sweep_abandoned(self, older_than: dt.datetime, *, dry_run: bool = False) -> SweepResult:
        return self.inner.sweep_abandoned(older_than, dry_run=dry_run)
