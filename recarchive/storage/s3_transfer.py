"""Moving bytes to and from an S3 server: request helpers, upload data, the reader.

Pieces of :class:`~recarchive.storage.s3.S3ObjectStore` that need none of its
state: the Content-MD5 header, the
TagSet form of tags, the ObjectInfo of a response, reading and pre-hashing
the data to upload (spooling it when it cannot be read twice), cutting it into
multipart-upload parts, and the reader of GetObject bodies.
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO

from recarchive.errors import StoreError
from recarchive.storage.interfaces import (
    CHUNK_SIZE,
    SHA256_METADATA,
    ObjectInfo,
    check_written,
)
from recarchive.storage.s3_errors import Boundary

if TYPE_CHECKING:
    from botocore.awsrequest import AWSRequest
    from botocore.response import StreamingBody
    from mypy_boto3_s3.type_defs import TagTypeDef


def tag_set_from_header(encoded: str) -> list[TagTypeDef]:
    """The TagSet form of an URL-encoded ``Tagging`` header value."""
    return [
        {"Key": name, "Value": value}
        for name, value in urllib.parse.parse_qsl(encoded, keep_blank_values=True)
    ]


def md5_b64(data: bytes) -> str:
    """The Content-MD5 header value for ``data``."""
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def add_content_md5(request: AWSRequest, **kwargs: Any) -> None:
    """Send Content-MD5 on requests that older S3 servers refuse without it."""
    body: object = request.body  # bytes at this stage, whatever the stubs say
    if isinstance(body, bytes | bytearray) and "Content-MD5" not in request.headers:
        request.headers["Content-MD5"] = md5_b64(bytes(body))


def stream_position(stream: BinaryIO) -> int | None:
    """Where ``stream`` stands, or None when it cannot seek back there."""
    try:
        return stream.tell() if stream.seekable() else None
    except (AttributeError, OSError, ValueError):
        return None


def read_up_to(stream: BinaryIO, limit: int) -> bytes:
    """The next ``limit`` bytes of ``stream``, fewer only at its end."""
    parts: list[bytes] = []
    total = 0
    while total < limit and (chunk := stream.read(min(CHUNK_SIZE, limit - total))):
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)


def prehash(
    key: str, head: bytes, stream: BinaryIO, start: int | None, size: int | None
) -> tuple[BinaryIO, str, BinaryIO | None]:
    """First pass over large data of unknown SHA-256: return a re-readable source.

    A seekable stream is read to the end and rewound; any other is copied
    to a temporary file. Returns ``(source, sha256, spool_to_close)``.
    """
    hasher = hashlib.sha256(head)
    total = len(head)
    spool: BinaryIO | None = None
    try:
        if start is None:
            spool = _spool_write(None, head, key)
        while chunk := stream.read(CHUNK_SIZE):
            hasher.update(chunk)
            total += len(chunk)
            if spool is not None:
                _spool_write(spool, chunk, key)
            if size is not None and total > size:
                break
        check_written(key, expected_size=size, expected_sha256=None, size=total, sha256="")
        if spool is None:
            stream.seek(start or 0)
            return stream, hasher.hexdigest(), None
        spool.seek(0)
    except BaseException:
        if spool is not None:
            spool.close()
        raise
    return spool, hasher.hexdigest(), spool


def _spool_write(spool: BinaryIO | None, data: bytes, key: str) -> BinaryIO:
    try:
        if spool is None:
            spool = tempfile.TemporaryFile()  # noqa: SIM115 - the caller closes it
        spool.write(data)
    except OSError as exc:
        raise StoreError(f"cannot spool {key!r} to a temporary file: {exc}") from exc
    return spool


def iter_parts(head: bytes, source: BinaryIO, part_size: int) -> Iterator[bytes]:
    """``head`` followed by the rest of ``source``, cut into parts of ``part_size``."""
    buffer = bytearray(head)
    eof = False
    while True:
        while len(buffer) < part_size and not eof:
            chunk = source.read(min(CHUNK_SIZE, part_size - len(buffer)))
            eof = not chunk
            buffer += chunk or b""
        if not buffer:
            return
        part = bytes(buffer[:part_size])
        del buffer[:part_size]
        yield part


def object_info(key: str, response: Mapping[str, Any], size: int) -> ObjectInfo:
    """The ObjectInfo of a GetObject or HeadObject response for an object of ``size`` bytes."""
    metadata = dict(response.get("Metadata") or {})
    return ObjectInfo(
        key=key,
        size=size,
        last_modified=response["LastModified"],
        sha256=metadata.pop(SHA256_METADATA, None),
        content_type=response.get("ContentType"),
        metadata=metadata,
    )


class S3Reader:
    """A GetObject response body; botocore errors while reading are translated."""

    def __init__(
        self, boundary: Boundary, info: ObjectInfo, body: StreamingBody, span: tuple[int, int]
    ) -> None:
        self.info = info
        self.content_range = span
        self._boundary = boundary
        self._body = body

    def read(self, size: int = -1) -> bytes:
        with self._boundary("read", self.info.key):
            return self._body.read(None if size < 0 else size)

    def iter_chunks(self, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        while chunk := self.read(chunk_size):
            yield chunk

    def close(self) -> None:
        with self._boundary("close", self.info.key):
            self._body.close()

    def __enter__(self) -> S3Reader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
