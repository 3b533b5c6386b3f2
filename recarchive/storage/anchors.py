"""Where the audit chain's anchors are published: outside the catalogue, hard to rewrite.

An anchor is a small signed document naming the audit chain's head (see
:mod:`recarchive.access.anchoring`). Its worth is that whoever can rewrite
the catalogue cannot rewrite the anchors as well:

- :class:`S3AnchorSink`: one object per anchor in a bucket of its own,
  created with S3 Object Lock and written with a retention period, so that
  not even the credentials that wrote an anchor can delete or overwrite it
  before the period ends (COMPLIANCE mode; GOVERNANCE where an administrator
  must be able to override it). Recordings are not in this bucket: Object
  Lock needs versioning, which would keep deleted recordings as old versions.
- :class:`FileAnchorSink`: one JSON line per anchor, appended to a file
  opened ``O_APPEND``. Put it where the catalogue's owner cannot rewrite it:
  a file marked append-only (``chattr +a``), another host's mount, a log
  shipper's input.

A sink stores bytes under names; it knows nothing of the audit log.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Literal, Protocol

from recarchive.errors import BucketNotFound, StoreError
from recarchive.private_files import make_private_dir
from recarchive.storage.s3_errors import boundary

LockMode = Literal["COMPLIANCE", "GOVERNANCE"]


class AnchorSink(Protocol):
    """An append-only place for anchors."""

    #: Where the anchors go, for messages (no credentials).
    where: str

    def create(self) -> bool:
        """Make the place ready (bucket with Object Lock, file); True when created now."""
        ...

    def append(self, name: str, data: bytes) -> None:
        """Publish one anchor; ``data`` is one line of JSON, ``name`` sorts by sequence."""
        ...

    def read_all(self) -> list[bytes]:
        """Every anchor's bytes, in the order of their names."""
        ...

    def read_newest(self, prefix: str) -> bytes | None:
        """The bytes of the anchor whose name, starting with ``prefix``, sorts last."""
        ...


class FileAnchorSink:
    """Anchors as lines of a file that recarchive only ever appends to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = f"file {path}"

    def create(self) -> bool:
        make_private_dir(self.path.parent)
        try:
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            return False
        return True

    def append(self, name: str, data: bytes) -> None:
        if b"\n" in data:
            raise ValueError("an anchor is one line")
        make_private_dir(self.path.parent)
        try:
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(
                    descriptor, data + b"\n"
                )  # one write: whole lines, even from several processes
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        except OSError as exc:
            raise StoreError(
                f"cannot append an audit anchor to {self.path}: {exc.strerror}"
            ) from exc

    def _lines(self) -> list[bytes]:
        try:
            content = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StoreError(
                f"cannot read the audit anchors in {self.path}: {exc.strerror}"
            ) from exc
        return [line for line in content.split(b"\n") if line.strip()]

    def read_all(self) -> list[bytes]:
        """Every line, in one read of the file."""
        return self._lines()

    def read_newest(self, prefix: str) -> bytes | None:
        """The last line of ``prefix``'s installation (lines are appended in order)."""
        marker = b'"installation_id":"' + prefix.rstrip("/").encode() + b'"'
        mine = [line for line in self._lines() if marker in line]
        return mine[-1] if mine else None


class S3AnchorSink:
    """Anchors as Object Lock objects in a bucket of their own."""

    PREFIX = "audit-anchors/"

    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        endpoint_url: str,
        mode: LockMode = "COMPLIANCE",
        retain_days: int = 3650,
    ) -> None:
        self._client = client
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.mode = mode
        self.retain_days = retain_days
        self.where = f"s3 bucket {bucket} at {endpoint_url}"

    def _boundary(self, action: str, key: str | None = None) -> AbstractContextManager[None]:
        return boundary(action, key, bucket=self.bucket, endpoint_url=self.endpoint_url)

    def create(self) -> bool:
        """Create the bucket with Object Lock enabled, unless it exists (then check it has it)."""
        try:
            with self._boundary("check anchor bucket"):
                self._client.head_bucket(Bucket=self.bucket)
        except BucketNotFound:
            with self._boundary("create anchor bucket"):
                self._client.create_bucket(Bucket=self.bucket, ObjectLockEnabledForBucket=True)
            return True
        self.check_locked()
        return False

    def check_locked(self) -> None:
        """Raise :class:`~recarchive.errors.StoreError` unless the bucket has Object Lock."""
        try:
            with self._boundary("read the anchor bucket's Object Lock configuration"):
                found = self._client.get_object_lock_configuration(Bucket=self.bucket)
        except StoreError as exc:
            raise StoreError(
                f"{self.where}: Object Lock is not enabled, anchors could be deleted "
                f"({exc.message}); use a bucket created by `recarchive init`"
            ) from exc
        enabled = found.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled")
        if enabled != "Enabled":
            raise StoreError(f"{self.where}: Object Lock is not enabled, anchors could be deleted")

    def append(self, name: str, data: bytes) -> None:
        until = dt.datetime.now(dt.UTC) + dt.timedelta(days=self.retain_days)
        key = self.PREFIX + name
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        with self._boundary("publish audit anchor", key):
            self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType="application/json",
                ContentMD5=md5,  # Object Lock writes must carry a checksum
                ObjectLockMode=self.mode,
                ObjectLockRetainUntilDate=until,
            )

    def names(self) -> list[str]:
        found: list[str] = []
        with self._boundary("list audit anchors"):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.PREFIX
            )
            for page in pages:
                found.extend(item["Key"][len(self.PREFIX) :] for item in page.get("Contents", []))
        return sorted(found)

    def read(self, name: str) -> bytes:
        key = self.PREFIX + name
        with self._boundary("read audit anchor", key):
            body: bytes = self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    def read_all(self) -> list[bytes]:
        """Every anchor (one GET each: a few per minute of activity, at most)."""
        return [self.read(name) for name in self.names()]

    def read_newest(self, prefix: str) -> bytes | None:
        """One listing and one GET: names sort by sequence number."""
        mine = [name for name in self.names() if name.startswith(prefix)]
        return self.read(mine[-1]) if mine else None


class S3DeletionSink(S3AnchorSink):
    """The record of deleted recordings, next to the anchors in their Object Lock bucket."""

    PREFIX = "deleted-recordings/"
