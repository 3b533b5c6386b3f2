"""S3-only behaviour: error translation, multipart clean-up, request headers.

Tests marked ``s3`` need the real server (``eval "$(scripts/s3-server start)"``)
and get a fresh bucket for this module. The others need no server: they
point at an unused loopback port or use botocore's Stubber.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from urllib3.exceptions import ProtocolError

from recarchive.errors import (
    BucketNotFound,
    ChecksumMismatch,
    ConfigError,
    SizeMismatch,
    StoreAccessDenied,
    StoreUnavailable,
)
from recarchive.storage.s3 import S3ObjectStore
from tests.integration.test_store_contract import (
    FailingStream,
    empty_bucket,
    fresh_bucket,
    raw_client,
    s3_settings,
)

MiB = 1024 * 1024
DEAD_ENDPOINT = "http://127.0.0.1:1"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dead_store(**options: Any) -> S3ObjectStore:
    return S3ObjectStore(
        bucket="recarchive-test-unreachable",
        endpoint_url=DEAD_ENDPOINT,
        region="us-east-1",
        access_key_id="test-access",
        secret_access_key="test-secret",
        max_attempts=1,
        connect_timeout=1.0,
        read_timeout=2.0,
        **options,
    )


@pytest.fixture(scope="module")
def bucket_store() -> Iterator[S3ObjectStore]:
    with fresh_bucket() as store:
        assert store.create() is False  # the second create finds it
        yield store


@pytest.fixture
def store(bucket_store: S3ObjectStore) -> Iterator[S3ObjectStore]:
    yield bucket_store
    empty_bucket(raw_client(s3_settings()), bucket_store.bucket)


def pending_uploads(store: S3ObjectStore) -> list[Any]:
    uploads = raw_client(s3_settings()).list_multipart_uploads(Bucket=store.bucket)
    return list(uploads.get("Uploads", []))


def etag(store: S3ObjectStore, key: str) -> str:
    return str(raw_client(s3_settings()).head_object(Bucket=store.bucket, Key=key)["ETag"])


# --- no server needed -----------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda store: store.check(),
        lambda store: store.put("k", io.BytesIO(b"x")),
        lambda store: store.get("k"),
        lambda store: list(store.list()),
        lambda store: store.delete_many(["a", "b"]),
    ],
    ids=["check", "put", "get", "list", "delete_many"],
)
def test_stopped_server_is_unavailable_quickly(call: Any) -> None:
    store = dead_store()  # building a client reads botocore's models from disk: not timed
    with pytest.raises(StoreUnavailable):
        call(store)  # nor is the first call: it loads the operation's model (a paginator...)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match=r"127\.0\.0\.1:1") as raised:
        call(store)
    assert time.monotonic() - started < 5
    assert "test-secret" not in str(raised.value)


def test_reader_errors_are_translated() -> None:
    """A connection dropped while streaming a body surfaces as StoreUnavailable."""

    class DroppingRaw:  # what urllib3 does when the peer goes away mid-body
        def read(self, amount: int | None = None) -> bytes:
            raise ProtocolError("connection broken")

        def close(self) -> None:
            pass

    store = dead_store()
    with Stubber(store._client) as stubber:  # white box: the store's own client
        body = StreamingBody(DroppingRaw(), 10)
        stubber.add_response(
            "get_object",
            {"Body": body, "ContentLength": 10, "LastModified": time.time(), "Metadata": {}},
            {"Bucket": store.bucket, "Key": "k"},
        )
        reader = store.get("k")
        with pytest.raises(StoreUnavailable, match="read"):
            reader.read()
        with pytest.raises(StoreUnavailable):
            list(reader.iter_chunks())
        reader.close()


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="part_size"):
        dead_store(part_size=MiB)
    with pytest.raises(ConfigError, match="not a url"):
        S3ObjectStore(bucket="b", endpoint_url="not a url")


# --- the real server ------------------------------------------------------------


@pytest.mark.s3
def test_wrong_secret_is_access_denied(bucket_store: S3ObjectStore) -> None:
    settings = {**s3_settings(), "secret_access_key": "wrong-secret-value"}
    store = S3ObjectStore(bucket=bucket_store.bucket, max_attempts=1, **settings)
    for call in (store.check, lambda: store.put("k", io.BytesIO(b"x")), lambda: store.head("k")):
        with pytest.raises(StoreAccessDenied, match=r"s3\.secret_access_key") as raised:
            call()
        assert "wrong-secret-value" not in str(raised.value)


@pytest.mark.s3
def test_missing_bucket_is_bucket_not_found() -> None:
    store = S3ObjectStore(bucket=f"recarchive-test-absent-{secrets.token_hex(4)}", **s3_settings())
    with pytest.raises(BucketNotFound, match=rf"{store.bucket}.*recarchive init"):
        store.check()
    with pytest.raises(BucketNotFound):
        store.put("k", io.BytesIO(b"x"))
    with pytest.raises(BucketNotFound):
        list(store.list())


@pytest.mark.s3
@pytest.mark.slow
def test_interrupt_during_multipart_upload_aborts_it(store: S3ObjectStore) -> None:
    data = os.urandom(20 * MiB)
    stream = io.BufferedReader(FailingStream(data, error=KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        store.put("big", stream, sha256=sha(data))
    assert list(store.list()) == []
    assert pending_uploads(store) == []


@pytest.mark.s3
@pytest.mark.slow
def test_unseekable_large_stream_without_sha256_is_spooled(store: S3ObjectStore) -> None:
    data = os.urandom(20 * MiB)

    class Pipe(io.RawIOBase):  # readable like a socket, not seekable
        def __init__(self) -> None:
            self._inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            return self._inner.readinto(buffer)

    info = store.put("big", io.BufferedReader(Pipe()))
    assert info.sha256 == sha(data)
    assert store.head("big").sha256 == sha(data)
    assert etag(store, "big").strip('"').endswith("-3")


@pytest.mark.s3
@pytest.mark.slow
@pytest.mark.parametrize(
    ("declared_size", "declared_sha", "error"),
    [
        (None, "0" * 64, ChecksumMismatch),  # found when all parts are up
        (30 * MiB, "0" * 64, SizeMismatch),  # stream shorter, found at its end
        (17 * MiB, "0" * 64, SizeMismatch),  # stream longer, found at the third part
        (30 * MiB, None, SizeMismatch),  # found by the first (hashing) pass
    ],
    ids=["sha256", "shorter", "longer", "shorter-prehashed"],
)
def test_bad_multipart_upload_is_aborted_and_old_object_kept(
    store: S3ObjectStore, declared_size: int | None, declared_sha: str | None, error: type
) -> None:
    store.put("big", io.BytesIO(b"old version"))
    data = os.urandom(20 * MiB)
    with pytest.raises(error):
        store.put("big", io.BytesIO(data), size=declared_size, sha256=declared_sha)
    assert pending_uploads(store) == []
    with store.get("big") as reader:
        assert reader.read() == b"old version"


@pytest.mark.s3
def test_requests_avoid_flexible_checksums_and_sign_their_payloads() -> None:
    """Servers without x-amz-checksum-* support (Ceph Pacific) must get plain requests.

    Bodies are protected by their SHA-256 in the signature; the requests that
    S3 servers refuse without it carry Content-MD5.
    """
    settings = s3_settings()
    client = boto3.client(
        "s3",
        endpoint_url=settings["endpoint_url"],
        region_name=settings["region"],
        aws_access_key_id=settings["access_key_id"],
        aws_secret_access_key=settings["secret_access_key"],
    )
    seen: dict[str, dict[str, str]] = {}

    def record(request: Any, **kwargs: Any) -> None:
        operation = kwargs["event_name"].rsplit(".", 1)[-1]
        seen[operation] = {
            k.lower(): v.decode() if isinstance(v, bytes) else str(v)
            for k, v in request.headers.items()
        }

    store = S3ObjectStore(bucket=f"recarchive-test-{secrets.token_hex(6)}", **settings)
    store.create()
    try:
        store._client.meta.events.register("before-send.s3.*", record)  # white box
        store.put("k", io.BytesIO(b"data"), tags={"a": "b"})
        store.set_tags("k", {"c": "d"})
        store.delete_many(["k"])
    finally:
        empty_bucket(client, store.bucket)
        client.delete_bucket(Bucket=store.bucket)
    assert seen["PutObject"]["x-amz-content-sha256"] == hashlib.sha256(b"data").hexdigest()
    assert not any(name.startswith("x-amz-checksum") for name in seen["PutObject"])
    assert "content-md5" in seen["PutObjectTagging"]
    assert "content-md5" in seen["DeleteObjects"]


def _corrupt_after_signing(request: Any, **kwargs: Any) -> None:
    """What a faulty network card or proxy does: one byte changes after the signature."""
    body = request.body if isinstance(request.body, bytes) else request.body.read()
    request.body = bytes([body[0] ^ 0xFF]) + body[1:]


@pytest.mark.s3
@pytest.mark.parametrize(
    ("operation", "size"), [("PutObject", 1 * MiB), ("UploadPart", 6 * MiB)], ids=["put", "part"]
)
def test_the_server_refuses_bytes_corrupted_in_transit(
    bucket_store: S3ObjectStore, operation: str, size: int
) -> None:
    """The signed SHA-256 makes the server itself check every body it receives."""
    settings = s3_settings()
    store = S3ObjectStore(
        bucket=bucket_store.bucket, multipart_threshold=5 * MiB, part_size=5 * MiB, **settings
    )
    store.put("kept", io.BytesIO(b"the version already stored"))
    handler = f"before-send.s3.{operation}"
    store._client.meta.events.register(handler, _corrupt_after_signing)  # white box
    data = os.urandom(size)
    try:
        with pytest.raises(ChecksumMismatch, match="differ from the ones signed"):
            store.put("kept", io.BytesIO(data), size=size, sha256=sha(data))
    finally:
        store._client.meta.events.unregister(handler, _corrupt_after_signing)
    assert pending_uploads(store) == []
    with store.get("kept") as reader:
        assert reader.read() == b"the version already stored"
    store.put("kept", io.BytesIO(data), size=size, sha256=sha(data))  # the same bytes, uncorrupted
    with store.get("kept") as reader:
        assert reader.read() == data
    store.delete_many(["kept"])


@pytest.mark.s3
def test_a_put_is_signed_with_the_digest_of_its_body(bucket_store: S3ObjectStore) -> None:
    """Over plain HTTP the signature covers the body's SHA-256: the server checks it."""
    signed: list[str] = []
    handler = "before-send.s3.PutObject"

    def record(request: Any, **kwargs: Any) -> None:
        signed.append(request.headers["X-Amz-Content-SHA256"].decode())

    bucket_store.client.meta.events.register(handler, record)
    data = os.urandom(300 * 1024)
    try:
        info = bucket_store.put("signed-known", io.BytesIO(data), size=len(data))
    finally:
        bucket_store.client.meta.events.unregister(handler, record)
    assert info.sha256 == sha(data)
    if bucket_store.endpoint_url.startswith("http://"):
        assert signed == [sha(data)]
    with bucket_store.get("signed-known") as reader:
        assert reader.read() == data
    bucket_store.delete_many(["signed-known"])
