"""The contract every object store keeps.

An object store holds recordings as opaque byte objects under keys such as
``recordings/2026/11/28/<uuid>.wav``. Keys, tags and metadata never carry
personal data; the catalogue is the only place that links an object to a
person.

Implementations: :class:`~recarchive.storage.filesystem.FilesystemObjectStore`
(the embedded default), :class:`~recarchive.storage.s3.S3ObjectStore` (AWS S3,
MinIO, Ceph RGW) and :class:`~recarchive.storage.memory.InMemoryObjectStore`
(unit tests). One contract test suite (``tests/integration/test_store_contract.py``)
runs against all of them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import BinaryIO, Protocol, runtime_checkable

from recarchive.errors import (
    ChecksumMismatch,
    InvalidMetadata,
    InvalidObjectKey,
    InvalidRange,
    InvalidTags,
    SizeMismatch,
)

#: Prefix of every recording's object key (``recordings/YYYY/MM/DD/<uuid>.<ext>``).
RECORDINGS_PREFIX = "recordings/"

#: Size of the chunks in which objects are read and written.
CHUNK_SIZE = 1024 * 1024

#: Longest key accepted (S3 allows 1024 bytes of UTF-8).
MAX_KEY_LENGTH = 1024

#: Metadata entry in which stores keep the SHA-256 given at write time.
SHA256_METADATA = "sha256"

#: Content type stored when ``put`` is given none (S3 servers disagree on their default).
DEFAULT_CONTENT_TYPE = "application/octet-stream"

#: Most bytes of user metadata (names plus values) per object, as S3 allows.
MAX_METADATA_BYTES = 2048

_KEY_CHARACTERS = re.compile(r"^[A-Za-z0-9!_.*'()/=+,:@-]+$")
_TAG_CHARACTERS = re.compile(r"^[A-Za-z0-9 +\-=._:/@]*$")
_METADATA_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,127}$")
_HEADER_VALUE = re.compile(r"^[\x20-\x7e]*$")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


@dataclasses.dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a store knows about one object, without reading its data."""

    key: str
    size: int
    last_modified: dt.datetime
    sha256: str | None = None
    content_type: str | None = None
    metadata: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class ByteRange:
    """An inclusive byte range, as in HTTP: ``end`` None means to the end."""

    start: int
    end: int | None = None

    def __post_init__(self) -> None:
        if self.start < 0 or (self.end is not None and self.end < self.start):
            raise InvalidRange(f"invalid byte range {self.start}-{self.end}")

    def resolve(self, size: int) -> tuple[int, int]:
        """Return ``(start, end_inclusive)`` within an object of ``size`` bytes.

        Raises :class:`~recarchive.errors.InvalidRange` when the range starts at
        or past the end of the object; an end past the object is clipped, as in
        HTTP.
        """
        if self.start >= size:
            raise InvalidRange(f"byte range starts at {self.start}, object has {size} bytes")
        end = size - 1 if self.end is None else min(self.end, size - 1)
        return self.start, end


@dataclasses.dataclass(frozen=True, slots=True)
class DeleteResult:
    """Outcome of a batch delete: keys deleted (or already absent), keys that failed."""

    deleted: tuple[str, ...]
    failed: Mapping[str, str]


@dataclasses.dataclass(frozen=True, slots=True)
class SweepResult:
    """Outcome of :meth:`ObjectStore.sweep_abandoned`: leftovers removed (or, dry, found)."""

    #: Leftovers of abandoned writes removed (found, in a dry run).
    count: int = 0
    #: Bytes they held (as far as the backend tells: uploaded parts on S3).
    size_bytes: int = 0


class ObjectReader(Protocol):
    """An open object (or byte range of one): read it, then close it."""

    info: ObjectInfo
    #: Inclusive range served, as ``(start, end)``; ``(0, size - 1)`` for the whole object
    #: (``(0, -1)`` for an empty object).
    content_range: tuple[int, int]

    def read(self, size: int = -1) -> bytes: ...

    def iter_chunks(self, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]: ...

    def close(self) -> None: ...

    def __enter__(self) -> ObjectReader: ...

    def __exit__(self, *exc_info: object) -> None: ...


@runtime_checkable
class ObjectStore(Protocol):
    """Durable storage of byte objects under keys.

    Every method raises :class:`~recarchive.errors.InvalidObjectKey` for a key
    that fails :func:`validate_key`, :class:`~recarchive.errors.StoreUnavailable`
    when the backend cannot be reached and
    :class:`~recarchive.errors.StoreAccessDenied` when it refuses the
    credentials. No backend exception (botocore, OSError) escapes.
    """

    #: Short name for logs and messages, e.g. ``"filesystem"``.
    backend: str

    def check(self) -> None:
        """Prove the store is reachable, the credentials work and the bucket exists.

        Raises :class:`~recarchive.errors.BucketNotFound` when the bucket (or
        root directory) is missing.
        """

    def create(self) -> bool:
        """Create the bucket (or root directory) if missing; True when it was created."""

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
        """Store the bytes read from ``stream`` under ``key``, replacing any object there.

        The SHA-256 of the data is computed while it streams and returned in
        the :class:`ObjectInfo` (and kept in the object's metadata). When
        ``size`` or ``sha256`` (lowercase hex) is given and the data does not
        match, :class:`~recarchive.errors.SizeMismatch` or
        :class:`~recarchive.errors.ChecksumMismatch` is raised and nothing is
        stored: no partial object becomes visible and an existing object under
        the same key is left as it was.

        ``checksum=False`` is for data the caller authenticates itself (an
        encrypted object, each of whose chunks carries its own tag): the store
        computes and keeps no SHA-256 of it, and the returned info's ``sha256``
        is None; the size is checked all the same. It excludes ``sha256``.
        """

    def get(self, key: str, *, byte_range: ByteRange | None = None) -> ObjectReader:
        """Open the object (or an inclusive byte range of it) for reading.

        Raises :class:`~recarchive.errors.ObjectNotFound` and
        :class:`~recarchive.errors.InvalidRange`.
        """

    def head(self, key: str) -> ObjectInfo:
        """Describe the object. Raises :class:`~recarchive.errors.ObjectNotFound`."""

    def exists(self, key: str) -> bool:
        """True when an object is stored under ``key``."""

    def delete(self, key: str) -> None:
        """Delete the object; deleting an absent key is not an error."""

    def delete_many(self, keys: Iterable[str]) -> DeleteResult:
        """Delete many objects with as few requests as the backend allows.

        Absent keys count as deleted. Per-key failures are reported in the
        result, not raised.
        """

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in key order.

        Only ``key``, ``size`` and ``last_modified`` are guaranteed: S3
        listings carry no SHA-256, content type or metadata (use :meth:`head`).
        Errors may surface while iterating, not only on the call.
        """

    def get_tags(self, key: str) -> dict[str, str]:
        """The object's tags. Raises :class:`~recarchive.errors.ObjectNotFound`."""

    def set_tags(self, key: str, tags: Mapping[str, str]) -> None:
        """Replace the object's tags. Raises :class:`~recarchive.errors.ObjectNotFound`."""

    def sweep_abandoned(self, older_than: dt.datetime, *, dry_run: bool = False) -> SweepResult:
        """Remove the leftovers of writes that never finished, from before ``older_than``.

        A write killed mid-way (``kill -9``, a crash, a power cut) can leave a
        partial copy of the data outside any object: a temporary file of the
        filesystem store, an incomplete multipart upload on S3. No object,
        listing or key shows it, so nothing else ever deletes it. This
        removes such leftovers whose last write (filesystem: modification
        time; S3: initiation of the upload) is strictly before ``older_than``,
        an aware datetime, and returns how many there were and how many bytes
        they held. Objects are never touched.

        A write still in progress keeps writing, so its leftovers stay young:
        the caller chooses ``older_than`` far enough back (the setting
        ``storage.abandoned_after_hours``) that only abandoned writes are
        older. A write whose leftovers are removed under it fails; it never
        makes a partial object visible. With ``dry_run`` nothing is removed
        and the result counts what would be. Raises :class:`ValueError` for a
        naive ``older_than``; leftovers removed before a
        :class:`~recarchive.errors.StoreError` stay removed.
        """


def validate_cutoff(older_than: dt.datetime) -> dt.datetime:
    """Return ``older_than`` if it is an aware datetime; raise :class:`ValueError` otherwise."""
    if older_than.tzinfo is None or older_than.utcoffset() is None:
        raise ValueError(f"sweep cutoff must be an aware datetime, got {older_than.isoformat()}")
    return older_than


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe, portable object key; raise otherwise.

    A key is a relative, ``/``-separated path of printable ASCII characters
    from the set S3 documents as safe. Absolute keys, empty segments, ``.``
    and ``..`` segments, backslashes and keys longer than
    :data:`MAX_KEY_LENGTH` bytes are refused, so a key can never name
    anything outside a filesystem store's root.
    """
    if not isinstance(key, str) or not key:
        raise InvalidObjectKey("object key is empty")
    shown = key if len(key) <= 80 else key[:77] + "..."
    if len(key.encode()) > MAX_KEY_LENGTH:
        raise InvalidObjectKey(f"object key is longer than {MAX_KEY_LENGTH} bytes: {shown!r}")
    if key.startswith("/"):
        raise InvalidObjectKey(f"object key must be relative, not absolute: {shown!r}")
    if not _KEY_CHARACTERS.match(key):
        raise InvalidObjectKey(f"object key has characters outside the safe set: {shown!r}")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidObjectKey(f"object key has an empty, '.' or '..' path segment: {shown!r}")
    return key


def validate_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Return ``tags`` as a dict if they fit the common S3 tagging limits; raise otherwise.

    At most 10 tags; keys 1-128 and values 0-256 characters from the S3 tag
    character set. Raises :class:`~recarchive.errors.InvalidTags` naming the
    offending tag.
    """
    result = dict(tags)
    if len(result) > 10:
        raise InvalidTags(f"at most 10 tags per object, got {len(result)}")
    for name, value in result.items():
        if not 1 <= len(name) <= 128 or not _TAG_CHARACTERS.match(name):
            raise InvalidTags(f"invalid tag name {name!r}")
        if len(value) > 256 or not _TAG_CHARACTERS.match(value):
            raise InvalidTags(f"invalid value for tag {name!r}")
    return result


def validate_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """Return ``metadata`` as a dict if every S3 server keeps it unchanged; raise otherwise.

    Names are 1-128 characters of lowercase ASCII letters, digits and ``-``
    (S3 sends them as HTTP headers and hands them back lowercased); values
    are printable ASCII without leading or trailing spaces (HTTP would drop
    them); names and values together take at most
    :data:`MAX_METADATA_BYTES` bytes. The name :data:`SHA256_METADATA` is
    reserved for the store. Raises :class:`~recarchive.errors.InvalidMetadata`
    naming the offending entry.
    """
    result = dict(metadata)
    for name, value in result.items():
        if not isinstance(name, str) or not _METADATA_NAME.match(name):
            raise InvalidMetadata(
                f"invalid metadata name {name!r}: use 1-128 lowercase letters, digits or '-'"
            )
        if name == SHA256_METADATA:
            raise InvalidMetadata(f"metadata name {name!r} is reserved for the store")
        if not isinstance(value, str) or not _HEADER_VALUE.match(value) or value != value.strip():
            raise InvalidMetadata(
                f"value of metadata {name!r} must be printable ASCII without leading or "
                "trailing spaces"
            )
    total = sum(len(name) + len(value) for name, value in result.items())
    if total > MAX_METADATA_BYTES:
        raise InvalidMetadata(f"metadata takes {total} bytes, at most {MAX_METADATA_BYTES}")
    return result


def validate_content_type(content_type: str | None) -> str:
    """Return the content type to store: :data:`DEFAULT_CONTENT_TYPE` for None.

    Raises :class:`~recarchive.errors.InvalidMetadata` unless it is printable
    ASCII (it travels as an HTTP header).
    """
    if content_type is None:
        return DEFAULT_CONTENT_TYPE
    if (
        not content_type
        or not _HEADER_VALUE.match(content_type)
        or content_type.strip() != content_type
    ):
        raise InvalidMetadata(f"invalid content type {content_type!r}")
    return content_type


def validate_expected(
    key: str, size: int | None, sha256: str | None, *, checksum: bool = True
) -> str | None:
    """Check the ``size`` and ``sha256`` promised to ``put`` before any data is read.

    Returns the SHA-256 in lowercase. Raises :class:`ValueError` for a
    ``sha256`` with ``checksum=False`` (nothing would check it),
    :class:`~recarchive.errors.SizeMismatch` for a negative size and
    :class:`~recarchive.errors.ChecksumMismatch` for a SHA-256 that is not 64
    hexadecimal digits.
    """
    if size is not None and size < 0:
        raise SizeMismatch(f"expected size of {key!r} is negative: {size}")
    if sha256 is not None and not checksum:
        raise ValueError(f"put of {key!r}: an expected sha256 needs checksum=True")
    if sha256 is None:
        return None
    digest = sha256.lower()
    if not _SHA256_HEX.match(digest):
        raise ChecksumMismatch(f"expected sha256 of {key!r} is not 64 hex digits: {sha256!r}")
    return digest


def check_written(
    key: str,
    *,
    expected_size: int | None,
    expected_sha256: str | None,
    size: int,
    sha256: str | None,
) -> None:
    """Raise unless the data read for ``key`` matches what the caller promised.

    Stores call this after reading the whole stream and before making the
    object visible; they may stop reading as soon as the stream runs past
    ``expected_size`` and pass the size read so far. Raises
    :class:`~recarchive.errors.SizeMismatch` or
    :class:`~recarchive.errors.ChecksumMismatch` naming the key, the expected
    and the actual value.
    """
    if expected_size is not None and size > expected_size:
        raise SizeMismatch(
            f"size mismatch for {key!r}: expected {expected_size} bytes, "
            f"the stream has more; nothing was stored"
        )
    if expected_size is not None and size < expected_size:
        raise SizeMismatch(
            f"size mismatch for {key!r}: expected {expected_size} bytes, got {size}; "
            "nothing was stored"
        )
    if expected_sha256 is not None and sha256 != expected_sha256:
        raise ChecksumMismatch(
            f"sha256 mismatch for {key!r}: expected {expected_sha256}, got {sha256}; "
            "nothing was stored"
        )
