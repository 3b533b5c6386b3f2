"""Aborting the multipart uploads that writes to an S3 bucket abandoned.

A process killed during a large ``put`` of
:class:`~recarchive.storage.s3.S3ObjectStore` leaves its multipart upload
open: the parts already sent stay on the server, billed and holding audio,
but belong to no object. :func:`sweep_uploads` lists the bucket's uploads
(ListMultipartUploads, every page), adds up the parts of those initiated
before the cutoff (ListParts) and aborts them (AbortMultipartUpload). The
bucket's lifecycle rule does the same two days after initiation, where the
server applies it; this does not wait for it.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from recarchive.storage.interfaces import SweepResult, validate_cutoff
from recarchive.storage.s3_errors import Boundary

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

logger = logging.getLogger("recarchive.storage.s3")


def sweep_uploads(
    client: S3Client, bucket: str, boundary: Boundary, older_than: dt.datetime, *, dry_run: bool
) -> SweepResult:
    """Abort (or, dry, count) the bucket's multipart uploads initiated before ``older_than``."""
    validate_cutoff(older_than)
    count = size = 0
    with boundary("list multipart uploads", None):
        pages = client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket)
        for page in pages:
            for upload in page.get("Uploads", []):
                if "Key" not in upload or "UploadId" not in upload or "Initiated" not in upload:
                    continue
                if upload["Initiated"] >= older_than:
                    continue
                held = _sweep_one(
                    client, bucket, boundary, upload["Key"], upload["UploadId"], dry_run=dry_run
                )
                if held is not None:
                    count += 1
                    size += held
    if count and not dry_run:
        logger.info("storage.abandoned_swept", extra={"count": count, "size_bytes": size})
    return SweepResult(count=count, size_bytes=size)


def _sweep_one(
    client: S3Client, bucket: str, boundary: Boundary, key: str, upload_id: str, *, dry_run: bool
) -> int | None:
    """Bytes in the upload's parts, aborting it unless dry; None when it is gone already."""
    with boundary("abort abandoned upload", key):
        try:
            held = 0
            parts = client.get_paginator("list_parts").paginate(
                Bucket=bucket, Key=key, UploadId=upload_id
            )
            for page in parts:
                held += sum(part.get("Size", 0) for part in page.get("Parts", []))
            if not dry_run:
                client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchUpload":
                return None  # completed or aborted by its writer (or another sweep) meanwhile
            raise
    logger.debug("storage.abandoned_upload", extra={"object_key": key, "upload_id": upload_id})
    return held
