"""Object store on an S3 API server: AWS S3, MinIO or Ceph RADOS Gateway.

Only the common S3 API is used (no ``x-amz-checksum-*`` features, which
Ceph Pacific lacks): integrity rests on the SHA-256 this store computes
itself and keeps in the ``sha256`` metadata, and on signed payloads: every
PutObject and UploadPart carries the SHA-256 of its body in its SigV4
signature (``x-amz-content-sha256``), which the server checks against the
bytes it received before it stores them.
Every botocore error is translated at one boundary (:meth:`S3ObjectStore._boundary`)
into a :class:`~recarchive.errors.StoreError` subclass, chained with ``from``;
the mapping itself is in :mod:`recarchive.storage.s3_errors`, the handling
of bytes that needs no store state (Content-MD5, upload parts, the reader) in
:mod:`recarchive.storage.s3_transfer`, and the sweep of abandoned multipart
uploads in :mod:`recarchive.storage.s3_sweep`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from recarchive.errors import BucketNotFound, ConfigError, ObjectNotFound, StoreError
from recarchive.storage.interfaces import (
    SHA256_METADATA,
    ByteRange,
    DeleteResult,
    ObjectInfo,
    SweepResult,
    check_written,
    validate_content_type,
    validate_expected,
    validate_key,
    validate_metadata,
    validate_tags,
)
from recarchive.storage.s3_errors import boundary
from recarchive.storage.s3_sweep import sweep_uploads
from recarchive.storage.s3_transfer import (
    S3Reader,
    add_content_md5,
    iter_parts,
    object_info,
    prehash,
    read_up_to,
    stream_position,
    tag_set_from_header,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, TagTypeDef

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB
MAX_PARTS = 10_000
DELETE_BATCH = 1000


class S3ObjectStore:
    """Objects in one bucket of an S3 API server.

    ``put`` never leaves a partial or unverified object: data up to
    ``multipart_threshold`` bytes is buffered, verified, then sent in one
    PutObject; larger data goes by multipart upload, completed only after
    the size and SHA-256 are verified, and aborted on any failure. When the
    caller gives no SHA-256 for large data, it is computed in a first pass
    (re-reading a seekable stream, or spooling another stream to a temporary
    file) so that it can be stored as metadata when the upload is created;
    with ``checksum=False`` (encrypted objects) there is no SHA-256 and no
    first pass.
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
                # Every body's SHA-256 goes into the request signature, which the
                # server verifies against what it received (also over HTTPS, where
                # botocore would otherwise send UNSIGNED-PAYLOAD). That one hash
                # does what a Content-MD5 would, and SHA-256 is the cheaper of the
                # two on CPUs with SHA extensions.
                "s3": {"addressing_style": addressing_style, "payload_signing_enabled": True},
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
        for operation in ("DeleteObjects", "PutObjectTagging", "PutBucketLifecycleConfiguration"):
            client.meta.events.register(
                f"before-sign.s3.{operation}",
                add_content_md5,
                unique_id=f"recarchive-content-md5-{operation}",
            )

    @property
    def endpoint_url(self) -> str:
        return str(self._client.meta.endpoint_url)

    @property
    def client(self) -> S3Client:
        """The boto3 client (for another bucket of the same server: the audit anchors)."""
        return self._client

    # --- the error boundary -------------------------------------------------

    def _boundary(self, action: str, key: str | None = None) -> AbstractContextManager[None]:
        """Translate every botocore (and urllib3) error raised inside into a StoreError."""
        return boundary(action, key, bucket=self.bucket, endpoint_url=self.endpoint_url)

    # --- lifecycle backstop ------------------------------------------------------

    def install_expiry_rules(self, periods: Mapping[str, int], *, tag: str) -> int:
        """Replace the bucket's lifecycle rules with one expiry rule per retention class.

        ``periods`` maps a tag value to days: objects tagged ``tag=value``
        expire that many days after they were written. A rule also cleans up
        multipart uploads left incomplete for two days. Returns the number of
        expiry rules installed.
        """
        rules: list[Any] = [
            {
                "ID": f"recarchive-expire-{value}",
                "Filter": {"Tag": {"Key": tag, "Value": value}},
                "Status": "Enabled",
                "Expiration": {"Days": max(1, days)},
            }
            for value, days in sorted(periods.items())
        ]
        rules.append(
            {
                "ID": "recarchive-abort-incomplete-uploads",
                "Filter": {"Prefix": ""},
                "Status": "Enabled",
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2},
            }
        )
        with self._boundary("install lifecycle rules"):
            self._client.put_bucket_lifecycle_configuration(
                Bucket=self.bucket, LifecycleConfiguration={"Rules": rules}
            )
        return len(periods)

    def expiry_rules(self) -> dict[str, int]:
        """The installed expiry rules, as ``{tag value: days}``."""
        with self._boundary("read lifecycle rules"):
            try:
                response = self._client.get_bucket_lifecycle_configuration(Bucket=self.bucket)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "NoSuchLifecycleConfiguration":
                    return {}
                raise
        found: dict[str, int] = {}
        for rule in response.get("Rules", []):
            tag = rule.get("Filter", {}).get("Tag")
            days = rule.get("Expiration", {}).get("Days")
            if tag and days is not None:
                found[tag["Value"]] = days
        return found

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
        checksum: bool = True,
    ) -> ObjectInfo:
        """Upload, verified before it becomes visible (see the class docstring).

        Errors raised by ``stream`` itself propagate unchanged after cleanup.
        """
        validate_key(key)
        expected = validate_expected(key, size, sha256, checksum=checksum)
        extra: dict[str, Any] = {
            "ContentType": validate_content_type(content_type),
            "Metadata": validate_metadata(metadata or {}),
        }
        tag_set = validate_tags(tags or {})
        if tag_set:
            extra["Tagging"] = urllib.parse.urlencode(tag_set, quote_via=urllib.parse.quote)
        start = stream_position(stream)
        head = b""
        if size is None or size <= self.multipart_threshold:
            limit = self.multipart_threshold + 1 if size is None else size + 1
            head = read_up_to(stream, limit)
            if len(head) <= self.multipart_threshold:
                return self._put_small(key, head, size, expected, extra, checksum=checksum)
        source, spool = stream, None
        if expected is None and checksum:
            source, expected, spool = prehash(key, head, stream, start, size)
            head = b""
        try:
            total = self._put_multipart(key, head, source, size, expected, extra)
        finally:
            if spool is not None:
                spool.close()
        return self._put_info(key, total, expected, extra)

    def _put_info(
        self, key: str, size: int, sha256: str | None, extra: Mapping[str, Any]
    ) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            size=size,
            last_modified=dt.datetime.now(dt.UTC),
            sha256=sha256,
            content_type=extra["ContentType"],
            metadata=dict(extra["Metadata"]),
        )

    def _put_small(
        self,
        key: str,
        data: bytes,
        size: int | None,
        expected: str | None,
        extra: dict[str, Any],
        *,
        checksum: bool,
    ) -> ObjectInfo:
        digest = hashlib.sha256(data).hexdigest() if checksum else None
        check_written(
            key, expected_size=size, expected_sha256=expected, size=len(data), sha256=digest
        )
        metadata = dict(extra["Metadata"])
        if digest is not None:
            metadata[SHA256_METADATA] = digest
        with self._boundary("put", key):
            self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                **{**extra, "Metadata": metadata},
            )
        return self._put_info(key, len(data), digest, extra)

    def _put_multipart(
        self,
        key: str,
        head: bytes,
        source: BinaryIO,
        size: int | None,
        expected: str | None,
        extra: dict[str, Any],
    ) -> int:
        """Multipart upload completed only when the data matches; aborted otherwise.

        ``expected`` None (a put with ``checksum=False``): only the size is checked.
        """
        metadata = dict(extra["Metadata"])
        if expected is not None:
            metadata[SHA256_METADATA] = expected
        with self._boundary("put", key):
            upload = self._client.create_multipart_upload(
                Bucket=self.bucket, Key=key, **{**extra, "Metadata": metadata}
            )
        upload_id = upload["UploadId"]
        try:
            hasher = None if expected is None else hashlib.sha256()
            total = 0
            parts: list[CompletedPartTypeDef] = []
            for number, part in enumerate(iter_parts(head, source, self.part_size), start=1):
                if hasher is not None:
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
                    )
                parts.append({"ETag": response["ETag"], "PartNumber": number})
            check_written(
                key,
                expected_size=size,
                expected_sha256=expected,
                size=total,
                sha256=None if hasher is None else hasher.hexdigest(),
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
                        Tagging={"TagSet": tag_set_from_header(extra["Tagging"])},
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

    def get(self, key: str, *, byte_range: ByteRange | None = None) -> S3Reader:
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
            info = object_info(key, response, int(total))
            return S3Reader(self._boundary, info, body, (int(first), int(last)))
        info = object_info(key, response, length)
        if byte_range is not None and byte_range.resolve(length) != (0, length - 1):
            body.close()
            raise StoreError(f"S3 server ignored the byte range asked for {key!r}")
        return S3Reader(self._boundary, info, body, (0, length - 1))

    def head(self, key: str) -> ObjectInfo:
        validate_key(key)
        with self._boundary("head", key):
            response = self._client.head_object(Bucket=self.bucket, Key=key)
        return object_info(key, response, response["ContentLength"])

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

    def sweep_abandoned(self, older_than: dt.datetime, *, dry_run: bool = False) -> SweepResult:
        """Abort multipart uploads initiated before ``older_than`` (see ``s3_sweep``)."""
        return sweep_uploads(self._client, self.bucket, self._boundary, older_than, dry_run=dry_run)
