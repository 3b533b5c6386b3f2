"""Object store on an S3 API server: AWS S3, MinIO or Ceph RADOS Gateway.

Only the common S3 API is used (no ``x-amz-checksum-*`` features, which
Ceph Pacific lacks): integrity rests on Content-MD5 per request and on the
SHA-256 this store computes itself and keeps in the ``sha256`` metadata.
Every botocore error is translated at one boundary (:meth:`S3ObjectStore._boundary`)
into a :class:`~recarchive.errors.StoreError` subclass, chained with ``from``.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import logging
import tempfile
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from recarchive.errors import (
    BucketNotFound,
    ConfigError,
    InvalidRange,
    ObjectNotFound,
    StoreAccessDenied,
    StoreError,
    StoreUnavailable,
)
from recarchive.storage.interfaces import (
    CHUNK_SIZE,
    SHA256_METADATA,
    ByteRange,
    DeleteResult,
    ObjectInfo,
    check_written,
    validate_content_type,
    validate_expected,
    validate_key,
    validate_metadata,
    validate_tags,
)

if TYPE_CHECKING:
    from botocore.awsrequest import AWSRequest
    from botocore.response import StreamingBody
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, TagTypeDef

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB
MAX_PARTS = 10_000
DELETE_BATCH = 1000
_DENIED_CODES = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "Forbidden"}
)
_TRANSPORT_ERRORS = (BotoConnectionError, HTTPClientError, IncompleteReadError, Urllib3HTTPError)


def _tag_set(encoded: str) -> list[TagTypeDef]:
    """The TagSet form of an URL-encoded ``Tagging`` header value."""
    return [
        {"Key": name, "Value": value}
        for name, value in urllib.parse.parse_qsl(encoded, keep_blank_values=True)
    ]


def _md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def _add_content_md5(request: AWSRequest, **kwargs: Any) -> None:
    """Send Content-MD5 on requests that older S3 servers refuse without it."""
    body: object = request.body  # bytes at this stage, whatever the stubs say
    if isinstance(body, bytes | bytearray) and "Content-MD5" not in request.headers:
        request.headers["Content-MD5"] = _md5_b64(bytes(body))


def _iter_parts(head: bytes, source: BinaryIO, part_size: int) -> Iterator[bytes]:
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


class _S3Reader:
    """A GetObject response body; botocore errors while reading are translated."""

    def __init__(
        self, store: S3ObjectStore, info: ObjectInfo, body: StreamingBody, span: tuple[int, int]
    ) -> None:
        self.info = info
        self.content_range = span
        self._store = store
        self._body = body

    def read(self, size: int = -1) -> bytes:
        with self._store._boundary("read", self.info.key):
            return self._body.read(None if size < 0 else size)

    def iter_chunks(self, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        while chunk := self.read(chunk_size):
            yield chunk

    def close(self) -> None:
        with self._store._boundary("close", self.info.key):
            self._body.close()

    def __enter__(self) -> _S3Reader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class S3ObjectStore:
    """Objects in one bucket of an S3 API server.

    ``put`` never leaves a partial or unverified object: data up to
    ``multipart_threshold`` bytes is buffered, verified, then sent in one
    PutObject; larger data goes by multipart upload, completed only after
    the size and SHA-256 are verified, and aborted on any failure. When the
    caller gives no SHA-256 for large data, it is computed in a first pass
    (re-reading a seekable stream, or spooling another stream to a temporary
    file) so that it can be stored as metadata when the upload is created.
    Memory use is at most ``multipart_threshold`` plus one part.
    """

    backend = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        addressing_style: Literal["path", "virtual", "auto"] = "path",
        multipart_threshold: int = 16 * MiB,
        part_size: int = 8 * MiB,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_attempts: int = 5,
        client: S3Client | None = None,
    ) -> None:
        if not MIN_PART_SIZE <= part_size <= 5 * 1024 * MiB:
            raise ConfigError(f"s3 part_size must be 5 MiB to 5 GiB, got {part_size}")
        if multipart_threshold < 0:
            raise ConfigError(f"s3 multipart_threshold must be >= 0, got {multipart_threshold}")
        self.bucket = bucket
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        if client is None:
            options: dict[str, Any] = {
                "signature_version": "s3v4",
                # Payload integrity comes from Content-MD5 on every PutObject and
                # UploadPart (checked by the server) and from our SHA-256 check before
                # anything is committed; signing the payload too would hash every byte
                # once more. (Over HTTPS botocore does not sign S3 payloads anyway.)
                "s3": {"addressing_style": addressing_style, "payload_signing_enabled": False},
                "retries": {"mode": "standard", "max_attempts": max_attempts},
                "connect_timeout": connect_timeout,
                "read_timeout": read_timeout,
            }
            for name in ("request_checksum_calculation", "response_checksum_validation"):
                if name in Config.OPTION_DEFAULTS:  # botocore >= 1.36 only
                    options[name] = "when_required"
            try:
                client = boto3.session.Session().client(
                    "s3",
                    endpoint_url=endpoint_url,
                    region_name=region,
                    aws_access_key_id=access_key_id,
                    aws_secret_access_key=secret_access_key,
                    config=Config(**options),
                )
            except (BotoCoreError, ValueError) as exc:
                raise ConfigError(f"cannot set up an S3 client for {endpoint_url}: {exc}") from exc
        self._client = client
        for operation in ("DeleteObjects", "PutObjectTagging"):
            client.meta.events.register(
                f"before-sign.s3.{operation}",
                _add_content_md5,
                unique_id=f"recarchive-content-md5-{operation}",
            )

    @property
    def endpoint_url(self) -> str:
        return str(self._client.meta.endpoint_url)

    # --- the error boundary -------------------------------------------------

    @contextlib.contextmanager
    def _boundary(self, action: str, key: str | None = None) -> Iterator[None]:
        """Translate every botocore (and urllib3) error raised inside into a StoreError."""
        try:
            yield
        except ClientError as exc:
            raise self._client_error(exc, action, key) from exc
        except (BotoCoreError, Urllib3HTTPError) as exc:
            raise self._transport_error(exc, action) from exc

    def _client_error(self, exc: ClientError, action: str, key: str | None) -> StoreError:
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        where = f"key {key!r} in bucket {self.bucket!r}" if key else f"bucket {self.bucket!r}"
        if code == "NoSuchBucket" or (key is None and code in ("404", "NotFound", "NoSuchKey")):
            return BucketNotFound(
                f"S3 bucket {self.bucket!r} does not exist at {self.endpoint_url}; "
                "`recarchive init` creates it"
            )
        if code in ("NoSuchKey", "404", "NotFound"):
            return ObjectNotFound(f"no object under key {key!r}")
        if code in _DENIED_CODES or status == 403:
            return StoreAccessDenied(
                f"S3 at {self.endpoint_url} refused {action} on {where} ({code or status}): "
                "check s3.access_key_id / s3.secret_access_key and the bucket's permissions"
            )
        if code == "InvalidRange" or status == 416:
            return InvalidRange(f"byte range lies outside object {key!r}")
        message = error.get("Message") or ""
        return StoreError(f"S3 {action} on {where} failed: {code or status} {message}".strip())

    def _transport_error(self, exc: Exception, action: str) -> StoreError:
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return StoreAccessDenied(
                "no complete S3 credentials found: set s3.access_key_id / s3.secret_access_key"
            )
        if isinstance(exc, _TRANSPORT_ERRORS):
            return StoreUnavailable(
                f"cannot reach the S3 endpoint {self.endpoint_url} ({action}): {type(exc).__name__}"
            )
        return StoreError(f"S3 {action} failed: {exc}")

    # --- the ObjectStore contract -------------------------------------------

    def check(self) -> None:
        """HeadBucket: raise BucketNotFound, StoreAccessDenied or StoreUnavailable."""
        with self._boundary("check"):
            self._client.head_bucket(Bucket=self.bucket)

    def create(self) -> bool:
        """Create the bucket unless it exists; True when created.

        HeadBucket comes first because some servers (Ceph RGW) answer a
        re-create of one's own bucket with success.
        """
        try:
            self.check()
            return False
        except BucketNotFound:
            pass
        region = self._client.meta.region_name
        config: Any = {}
        if region and region not in ("us-east-1", "aws-global"):
            config = {"CreateBucketConfiguration": {"LocationConstraint": region}}
        try:
            with self._boundary("create bucket"):
                self._client.create_bucket(Bucket=self.bucket, **config)
        except StoreError as exc:
            cause = exc.__cause__
            if (
                isinstance(cause, ClientError)
                and cause.response.get("Error", {}).get("Code") == "BucketAlreadyOwnedByYou"
            ):
                return False
            raise
        return True

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
    ) -> ObjectInfo:
        """Upload, verified before it becomes visible (see the class docstring).

        Errors raised by ``stream`` itself propagate unchanged after cleanup.
        """
        validate_key(key)
        expected = validate_expected(key, size, sha256)
        extra: dict[str, Any] = {
            "ContentType": validate_content_type(content_type),
            "Metadata": validate_metadata(metadata or {}),
        }
        tag_set = validate_tags(tags or {})
        if tag_set:
            extra["Tagging"] = urllib.parse.urlencode(tag_set, quote_via=urllib.parse.quote)
        start = self._position(stream)
        head = b""
        if size is None or size <= self.multipart_threshold:
            limit = self.multipart_threshold + 1 if size is None else size + 1
            head = self._read_up_to(stream, limit)
            if len(head) <= self.multipart_threshold:
                return self._put_small(key, head, size, expected, extra)
        source, spool = stream, None
        if expected is None:
            source, expected, spool = self._prehash(key, head, stream, start, size)
            head = b""
        try:
            total = self._put_multipart(key, head, source, size, expected, extra)
        finally:
            if spool is not None:
                spool.close()
        return self._put_info(key, total, expected, extra)

    @staticmethod
    def _position(stream: BinaryIO) -> int | None:
        try:
            return stream.tell() if stream.seekable() else None
        except (AttributeError, OSError, ValueError):
            return None

    @staticmethod
    def _read_up_to(stream: BinaryIO, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while total < limit and (chunk := stream.read(min(CHUNK_SIZE, limit - total))):
            parts.append(chunk)
            total += len(chunk)
        return b"".join(parts)

    def _put_info(self, key: str, size: int, sha256: str, extra: Mapping[str, Any]) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            size=size,
            last_modified=dt.datetime.now(dt.UTC),
            sha256=sha256,
            content_type=extra["ContentType"],
            metadata=dict(extra["Metadata"]),
        )

    def _put_small(
        self, key: str, data: bytes, size: int | None, expected: str | None, extra: dict[str, Any]
    ) -> ObjectInfo:
        digest = hashlib.sha256(data).hexdigest()
        check_written(
            key, expected_size=size, expected_sha256=expected, size=len(data), sha256=digest
        )
        metadata = {**extra["Metadata"], SHA256_METADATA: digest}
        with self._boundary("put", key):
            self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentMD5=_md5_b64(data),
                **{**extra, "Metadata": metadata},
            )
        return self._put_info(key, len(data), digest, extra)

    def _prehash(
        self, key: str, head: bytes, stream: BinaryIO, start: int | None, size: int | None
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
                spool = self._spool_write(None, head, key)
            while chunk := stream.read(CHUNK_SIZE):
                hasher.update(chunk)
                total += len(chunk)
                if spool is not None:
                    self._spool_write(spool, chunk, key)
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

    @staticmethod
    def _spool_write(spool: BinaryIO | None, data: bytes, key: str) -> BinaryIO:
        try:
            if spool is None:
                spool = tempfile.TemporaryFile()  # noqa: SIM115 - the caller closes it
            spool.write(data)
        except OSError as exc:
            raise StoreError(f"cannot spool {key!r} to a temporary file: {exc}") from exc
        return spool

    def _put_multipart(
        self,
        key: str,
        head: bytes,
        source: BinaryIO,
        size: int | None,
        expected: str,
        extra: dict[str, Any],
    ) -> int:
        """Multipart upload completed only when the data matches; aborted otherwise."""
        metadata = {**extra["Metadata"], SHA256_METADATA: expected}
        with self._boundary("put", key):
            upload = self._client.create_multipart_upload(
                Bucket=self.bucket, Key=key, **{**extra, "Metadata": metadata}
            )
        upload_id = upload["UploadId"]
        try:
            hasher = hashlib.sha256()
            total = 0
            parts: list[CompletedPartTypeDef] = []
            for number, part in enumerate(_iter_parts(head, source, self.part_size), start=1):
                hasher.update(part)
                total += len(part)
                if size is not None and total > size:
                    break
                if number > MAX_PARTS:
                    raise StoreError(f"{key!r} needs more than {MAX_PARTS} parts: raise part_size")
                with self._boundary("put", key):
                    response = self._client.upload_part(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=part,
                        ContentMD5=_md5_b64(part),
                    )
                parts.append({"ETag": response["ETag"], "PartNumber": number})
            check_written(
                key,
                expected_size=size,
                expected_sha256=expected,
                size=total,
                sha256=hasher.hexdigest(),
            )
            with self._boundary("put", key):
                self._client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
            if "Tagging" in extra:
                # Not every server applies the tagging header of CreateMultipartUpload
                # (Ceph RGW 16 drops it): set the tags explicitly, they carry retention.
                with self._boundary("put", key):
                    self._client.put_object_tagging(
                        Bucket=self.bucket,
                        Key=key,
                        Tagging={"TagSet": _tag_set(extra["Tagging"])},
                    )
        except BaseException:
            try:
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except Exception:
                logger.warning(
                    "storage.multipart_abort_failed",
                    extra={"object_key": key, "upload_id": upload_id},
                    exc_info=True,
                )
            raise
        return total

    def get(self, key: str, *, byte_range: ByteRange | None = None) -> _S3Reader:
        """GetObject, with a Range header for ``byte_range``."""
        validate_key(key)
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if byte_range is not None:
            end = "" if byte_range.end is None else str(byte_range.end)
            request["Range"] = f"bytes={byte_range.start}-{end}"
        with self._boundary("get", key):
            response = self._client.get_object(**request)
        body = response["Body"]
        length = response.get("ContentLength", 0)
        content_range = response.get("ContentRange")
        if content_range:  # "bytes START-END/TOTAL"
            span, _, total = content_range.removeprefix("bytes ").partition("/")
            first, _, last = span.partition("-")
            info = self._info(key, response, int(total))
            return _S3Reader(self, info, body, (int(first), int(last)))
        info = self._info(key, response, length)
        if byte_range is not None and byte_range.resolve(length) != (0, length - 1):
            body.close()
            raise StoreError(f"S3 server ignored the byte range asked for {key!r}")
        return _S3Reader(self, info, body, (0, length - 1))

    def _info(self, key: str, response: Mapping[str, Any], size: int) -> ObjectInfo:
        metadata = dict(response.get("Metadata") or {})
        return ObjectInfo(
            key=key,
            size=size,
            last_modified=response["LastModified"],
            sha256=metadata.pop(SHA256_METADATA, None),
            content_type=response.get("ContentType"),
            metadata=metadata,
        )

    def head(self, key: str) -> ObjectInfo:
        validate_key(key)
        with self._boundary("head", key):
            response = self._client.head_object(Bucket=self.bucket, Key=key)
        return self._info(key, response, response["ContentLength"])

    def exists(self, key: str) -> bool:
        try:
            self.head(key)
        except ObjectNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        validate_key(key)
        with self._boundary("delete", key):
            self._client.delete_object(Bucket=self.bucket, Key=key)

    def delete_many(self, keys: Iterable[str]) -> DeleteResult:
        """DeleteObjects in batches of 1000, all keys validated first.

        A batch request that fails as a whole raises; earlier batches stay deleted.
        """
        wanted = [validate_key(key) for key in dict.fromkeys(keys)]
        failed: dict[str, str] = {}
        for start in range(0, len(wanted), DELETE_BATCH):
            batch = wanted[start : start + DELETE_BATCH]
            with self._boundary("delete_many"):
                response = self._client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
                )
            for error in response.get("Errors", []):
                if error.get("Code") != "NoSuchKey":
                    failed[error.get("Key", "")] = f"{error.get('Code')}: {error.get('Message')}"
        deleted = tuple(key for key in wanted if key not in failed)
        return DeleteResult(deleted=deleted, failed=failed)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """ListObjectsV2 pages; sha256, content type and metadata are not in listings."""
        with self._boundary("list"):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
        return self._iter_listing(pages)

    def _iter_listing(self, pages: Iterable[Mapping[str, Any]]) -> Iterator[ObjectInfo]:
        with self._boundary("list"):
            for page in pages:
                for item in page.get("Contents", []):
                    yield ObjectInfo(
                        key=item["Key"], size=item["Size"], last_modified=item["LastModified"]
                    )

    def get_tags(self, key: str) -> dict[str, str]:
        validate_key(key)
        with self._boundary("get tags", key):
            response = self._client.get_object_tagging(Bucket=self.bucket, Key=key)
        # An object without tags may come back without a TagSet at all.
        return {tag["Key"]: tag["Value"] for tag in response.get("TagSet", [])}

    def set_tags(self, key: str, tags: Mapping[str, str]) -> None:
        validate_key(key)
        tag_set: list[TagTypeDef] = [
            {"Key": name, "Value": value} for name, value in validate_tags(tags).items()
        ]
        with self._boundary("set tags", key):
            self._client.put_object_tagging(
                Bucket=self.bucket, Key=key, Tagging={"TagSet": tag_set}
            )
