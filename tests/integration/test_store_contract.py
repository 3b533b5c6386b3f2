"""The ObjectStore contract, run against every store: memory, filesystem and S3.

The S3 runs need the real server (``eval "$(scripts/s3-server start)"``); they
are skipped without ``RECARCHIVE_S3_ENDPOINT_URL`` unless
``RECARCHIVE_TEST_REQUIRE_S3=1`` turns the skip into a failure. Each module
gets its own fresh bucket, emptied after every test and deleted at the end.
Filesystem-only behaviour (symlinks, the sidecar tree, temp files) is at the
end of this file; S3-only behaviour is in ``test_s3_store.py``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest

from recarchive.errors import (
    BucketNotFound,
    ChecksumMismatch,
    InvalidMetadata,
    InvalidObjectKey,
    InvalidRange,
    InvalidTags,
    ObjectNotFound,
    SizeMismatch,
    StoreAccessDenied,
    StoreError,
)
from recarchive.storage.filesystem import FilesystemObjectStore
from recarchive.storage.interfaces import ByteRange, ObjectStore
from recarchive.storage.memory import InMemoryObjectStore
from recarchive.storage.s3 import S3ObjectStore
from tests.s3env import s3_environment

MiB = 1024 * 1024
BAD_KEYS = ["../x", "a/../b", "/x", "a//b", "a/", "a\\b", "./a", "a/./b", "x" * 1025, ""]


def s3_settings() -> dict[str, Any]:
    """Connection settings of the test S3 server from the environment; skip or fail without."""
    env = s3_environment()
    return {
        "endpoint_url": env["RECARCHIVE_S3_ENDPOINT_URL"],
        "region": env["RECARCHIVE_S3_REGION"],
        "access_key_id": env["RECARCHIVE_S3_ACCESS_KEY_ID"] or None,
        "secret_access_key": env["RECARCHIVE_S3_SECRET_ACCESS_KEY"] or None,
    }


def raw_client(settings: dict[str, Any]) -> Any:
    """A plain boto3 client, to look behind the store's back (ETags, uploads)."""
    return boto3.client(
        "s3",
        endpoint_url=settings["endpoint_url"],
        region_name=settings["region"],
        aws_access_key_id=settings["access_key_id"],
        aws_secret_access_key=settings["secret_access_key"],
    )


def empty_bucket(client: Any, bucket: str) -> None:
    """Delete every object and abort every multipart upload in ``bucket``."""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    for upload in uploads:
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])


@contextlib.contextmanager
def fresh_bucket(**options: Any) -> Iterator[S3ObjectStore]:
    """An S3 store on a new bucket of the test server (``options`` go to the store),
    deleted with its content when the block ends."""
    settings = s3_settings()
    store = S3ObjectStore(bucket=f"recarchive-test-{secrets.token_hex(6)}", **settings, **options)
    assert store.create() is True
    try:
        yield store
    finally:
        client = raw_client(settings)
        empty_bucket(client, store.bucket)
        client.delete_bucket(Bucket=store.bucket)


@pytest.fixture(scope="module")
def s3_store() -> Iterator[S3ObjectStore]:
    """A fresh bucket for this module, deleted with its content at the end."""
    with fresh_bucket() as store:
        yield store


@pytest.fixture
def s3_raw() -> Any:
    return raw_client(s3_settings())


@pytest.fixture(params=["memory", "filesystem", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "memory":
        yield InMemoryObjectStore()
    elif request.param == "filesystem":
        fs_store = FilesystemObjectStore(tmp_path / "store")
        fs_store.create()
        yield fs_store
    else:
        s3: S3ObjectStore = request.getfixturevalue("s3_store")
        yield s3
        empty_bucket(raw_client(s3_settings()), s3.bucket)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_all(store: ObjectStore, key: str, byte_range: ByteRange | None = None) -> bytes:
    with store.get(key, byte_range=byte_range) as reader:
        return b"".join(reader.iter_chunks(64 * 1024))


def keys(store: ObjectStore, prefix: str = "") -> list[str]:
    return [info.key for info in store.list(prefix)]


def assert_no_pending_uploads(store: ObjectStore) -> None:
    if isinstance(store, S3ObjectStore):
        client = raw_client(s3_settings())
        assert client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []


class FailingStream(io.RawIOBase):
    """Serves ``data`` and then fails as a dropped connection would; not seekable."""

    def __init__(self, data: bytes, *, error: BaseException | None = None) -> None:
        self._data = io.BytesIO(data)
        self._error = error or OSError("connection reset by peer")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(len(buffer))
        if not chunk:
            raise self._error
        buffer[: len(chunk)] = chunk
        return len(chunk)


# --- round trips --------------------------------------------------------------


def test_put_get_round_trip_returns_sha256(store: ObjectStore) -> None:
    data = b"RIFF fake wave data" * 1000
    info = store.put("recordings/2026/11/28/one.wav", io.BytesIO(data))
    assert (info.key, info.size, info.sha256) == (
        "recordings/2026/11/28/one.wav",
        len(data),
        sha(data),
    )
    assert read_all(store, "recordings/2026/11/28/one.wav") == data
    assert store.head("recordings/2026/11/28/one.wav").sha256 == sha(data)


def test_metadata_and_content_type_are_kept(store: ObjectStore) -> None:
    info = store.put(
        "m.wav", io.BytesIO(b"x"), content_type="audio/wav", metadata={"recording-id": "r-42"}
    )
    with store.get("m.wav") as reader:
        read_info = reader.info
    for seen in (info, store.head("m.wav"), read_info):
        assert seen.content_type == "audio/wav"
        assert dict(seen.metadata) == {"recording-id": "r-42"}
        assert seen.sha256 == sha(b"x")
    store.put("plain", io.BytesIO(b"x"))
    assert store.head("plain").content_type == "application/octet-stream"


def test_invalid_metadata_is_refused_before_anything_is_stored(store: ObjectStore) -> None:
    for metadata in ({"Upper": "x"}, {"sha256": "x"}, {"name": "ä"}, {"name": " padded "}):
        with pytest.raises(InvalidMetadata):
            store.put("k", io.BytesIO(b"x"), metadata=metadata)
    assert keys(store) == []


def test_head_and_exists(store: ObjectStore) -> None:
    store.put("a/b.wav", io.BytesIO(b"12345"))
    info = store.head("a/b.wav")
    assert (info.key, info.size) == ("a/b.wav", 5)
    assert info.last_modified.tzinfo is not None
    assert store.exists("a/b.wav")
    assert not store.exists("a/c.wav")
    assert not store.exists("a")


def test_absent_object_is_not_found(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound, match="nope"):
        store.get("nope")
    with pytest.raises(ObjectNotFound):
        store.head("nope")
    store.delete("nope")  # deleting what is not there is fine


def test_overwrite_replaces_data(store: ObjectStore) -> None:
    store.put("k", io.BytesIO(b"first version"))
    store.put("k", io.BytesIO(b"second"))
    assert read_all(store, "k") == b"second"
    assert store.head("k").sha256 == sha(b"second")
    assert store.head("k").size == 6


# --- integrity ------------------------------------------------------------------


def test_correct_size_and_sha256_are_accepted(store: ObjectStore) -> None:
    data = b"payload" * 100
    info = store.put("k", io.BytesIO(data), size=len(data), sha256=sha(data).upper())
    assert info.sha256 == sha(data)


def test_wrong_sha256_is_rejected_and_nothing_stored(store: ObjectStore) -> None:
    with pytest.raises(ChecksumMismatch, match=r"'k'.*expected 0{64}, got " + sha(b"data")):
        store.put("k", io.BytesIO(b"data"), sha256="0" * 64)
    assert not store.exists("k")
    assert keys(store) == []


def test_wrong_sha256_leaves_older_object_unchanged(store: ObjectStore) -> None:
    store.put("k", io.BytesIO(b"old"), tags={"kept": "yes"})
    with pytest.raises(ChecksumMismatch):
        store.put("k", io.BytesIO(b"new"), sha256=sha(b"other"), tags={"kept": "no"})
    assert read_all(store, "k") == b"old"
    assert store.head("k").sha256 == sha(b"old")
    assert store.get_tags("k") == {"kept": "yes"}


@pytest.mark.parametrize(("declared", "actual"), [(30, 20), (10, 20), (0, 1), (1, 0)])
def test_wrong_size_is_rejected_and_nothing_stored(
    store: ObjectStore, declared: int, actual: int
) -> None:
    with pytest.raises(SizeMismatch, match=rf"'k'.*expected {declared} bytes"):
        store.put("k", io.BytesIO(b"z" * actual), size=declared)
    assert keys(store) == []


def test_malformed_expected_sha256_is_refused(store: ObjectStore) -> None:
    with pytest.raises(ChecksumMismatch, match="64 hex"):
        store.put("k", io.BytesIO(b"x"), sha256="abc")
    assert keys(store) == []


def test_failing_stream_leaves_nothing(store: ObjectStore) -> None:
    with pytest.raises(OSError, match="connection reset"):
        store.put("k", io.BufferedReader(FailingStream(b"a" * 100_000)))
    assert keys(store) == []
    assert_no_pending_uploads(store)


@pytest.mark.slow
def test_failing_large_stream_leaves_nothing(store: ObjectStore) -> None:
    """Fails after 20 MiB: on S3 that is inside a multipart upload, which must be aborted."""
    data = os.urandom(20 * MiB)
    stream = io.BufferedReader(FailingStream(data))
    with pytest.raises(OSError, match="connection reset"):
        store.put("big", stream, sha256=sha(data + b"more"))
    assert keys(store) == []
    assert_no_pending_uploads(store)


# --- objects the caller authenticates itself (checksum=False) ------------------


class OneWayStream(io.RawIOBase):
    """Serves ``data`` once and cannot seek, as the encrypting stream of a sealed put."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_put_without_checksum_keeps_no_sha256_and_the_bytes(store: ObjectStore) -> None:
    data = os.urandom(300_000)
    info = store.put("sealed", io.BytesIO(data), size=len(data), tags={"c": "x"}, checksum=False)
    assert (info.size, info.sha256) == (len(data), None)
    assert (store.head("sealed").size, store.head("sealed").sha256) == (len(data), None)
    assert read_all(store, "sealed") == data
    assert read_all(store, "sealed", ByteRange(1000, 1999)) == data[1000:2000]
    assert store.get_tags("sealed") == {"c": "x"}


@pytest.mark.parametrize(("declared", "actual"), [(30, 20), (10, 20)])
def test_put_without_checksum_still_checks_the_size(
    store: ObjectStore, declared: int, actual: int
) -> None:
    store.put("k", io.BytesIO(b"old"))
    with pytest.raises(SizeMismatch, match=rf"'k'.*expected {declared} bytes"):
        store.put("k", io.BytesIO(b"z" * actual), size=declared, checksum=False)
    assert read_all(store, "k") == b"old"
    assert store.head("k").sha256 == sha(b"old")


def test_an_expected_sha256_needs_the_checksum(store: ObjectStore) -> None:
    with pytest.raises(ValueError, match="checksum"):
        store.put("k", io.BytesIO(b"x"), sha256=sha(b"x"), checksum=False)
    assert keys(store) == []


@pytest.mark.slow
def test_large_put_without_checksum_streams_in_one_pass(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """No SHA-256 to put in the metadata first: a one-way stream goes up as it is read."""
    import recarchive.storage.s3 as s3_module

    def no_first_pass(*args: object) -> None:
        raise AssertionError("a put without checksum must not spool or re-read its stream")

    monkeypatch.setattr(s3_module, "prehash", no_first_pass)
    data = os.urandom(18 * MiB)
    info = store.put("big", io.BufferedReader(OneWayStream(data)), size=len(data), checksum=False)
    assert (info.size, info.sha256) == (len(data), None)
    assert hashlib.sha256(read_all(store, "big")).hexdigest() == sha(data)
    if isinstance(store, S3ObjectStore):  # it went by multipart upload
        head = request.getfixturevalue("s3_raw").head_object(Bucket=store.bucket, Key="big")
        assert head["ETag"].strip('"').endswith("-3")  # 18 MiB in 8 MiB parts
        assert "sha256" not in head["Metadata"]


@pytest.mark.slow
def test_failing_large_put_without_checksum_leaves_nothing(store: ObjectStore) -> None:
    stream = io.BufferedReader(FailingStream(os.urandom(20 * MiB)))
    with pytest.raises(OSError, match="connection reset"):
        store.put("big", stream, size=30 * MiB, checksum=False)
    assert keys(store) == []
    assert_no_pending_uploads(store)


# --- empty objects and ranges -------------------------------------------------


def test_zero_byte_object(store: ObjectStore) -> None:
    info = store.put("empty", io.BytesIO(b""), size=0, sha256=sha(b""))
    assert (info.size, info.sha256) == (0, sha(b""))
    assert store.head("empty").size == 0
    with store.get("empty") as reader:
        assert reader.read() == b""
        assert reader.content_range == (0, -1)
    with pytest.raises(InvalidRange):
        store.get("empty", byte_range=ByteRange(0))


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 0, (0, 0)),
        (100, 199, (100, 199)),
        (1023, 1023, (1023, 1023)),
        (1000, None, (1000, 1023)),
        (1000, 5000, (1000, 1023)),
        (0, None, (0, 1023)),
    ],
)
def test_range_reads(
    store: ObjectStore, start: int, end: int | None, expected: tuple[int, int]
) -> None:
    data = bytes(range(256)) * 4
    store.put("r", io.BytesIO(data))
    with store.get("r", byte_range=ByteRange(start, end)) as reader:
        assert reader.content_range == expected
        assert reader.info.size == len(data)
        assert reader.read() == data[expected[0] : expected[1] + 1]


@pytest.mark.parametrize("start", [1024, 5000])
def test_range_starting_past_the_end_is_invalid(store: ObjectStore, start: int) -> None:
    store.put("r", io.BytesIO(bytes(1024)))
    with pytest.raises(InvalidRange):
        store.get("r", byte_range=ByteRange(start))


@pytest.mark.slow
def test_50_mb_object_round_trip(store: ObjectStore, request: pytest.FixtureRequest) -> None:
    data = os.urandom(50 * MiB)
    info = store.put("big.wav", io.BytesIO(data), tags={"retention-class": "standard"})
    assert (info.size, info.sha256) == (len(data), sha(data))
    # Tags carry retention: they must stick to a multipart upload too.
    assert store.get_tags("big.wav") == {"retention-class": "standard"}
    hasher = hashlib.sha256()
    with store.get("big.wav") as reader:
        for chunk in reader.iter_chunks():
            hasher.update(chunk)
    assert hasher.hexdigest() == sha(data)
    assert store.head("big.wav").sha256 == sha(data)
    if isinstance(store, S3ObjectStore):  # it went by multipart upload
        etag = request.getfixturevalue("s3_raw").head_object(Bucket=store.bucket, Key="big.wav")
        assert etag["ETag"].strip('"').endswith("-7")  # 50 MiB in 8 MiB parts


# --- keys -----------------------------------------------------------------------


@pytest.mark.parametrize("key", BAD_KEYS, ids=lambda key: repr(key)[:20])
def test_unsafe_keys_are_refused_everywhere(store: ObjectStore, key: str) -> None:
    for call in (
        lambda: store.put(key, io.BytesIO(b"x")),
        lambda: store.get(key),
        lambda: store.head(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
        lambda: store.delete_many(["fine", key]),
        lambda: store.get_tags(key),
        lambda: store.set_tags(key, {}),
    ):
        with pytest.raises(InvalidObjectKey):
            call()
    assert keys(store) == []


# --- delete and list ------------------------------------------------------------


@pytest.mark.slow
def test_delete_many_spans_batches_and_tolerates_absent_keys(store: ObjectStore) -> None:
    count = 1200 if isinstance(store, S3ObjectStore) else 2500
    names = [f"batch/{number:05d}" for number in range(count)]
    for name in names:
        store.put(name, io.BytesIO(name.encode()))
    doomed = [*names[:-3], "batch/absent-1", "absent/2"]
    result = store.delete_many(doomed)
    assert set(result.deleted) == set(doomed)
    assert dict(result.failed) == {}
    assert keys(store) == names[-3:]


def test_list_by_prefix_in_key_order(store: ObjectStore) -> None:
    contents = {"p/a": 1, "p/b/c": 2, "p-x": 3, "p/a0": 4, "q/z": 5, "p/b/b": 6}
    for name, size in contents.items():
        store.put(name, io.BytesIO(b"s" * size))
    assert keys(store) == sorted(contents)
    listed = [(info.key, info.size) for info in store.list("p/")]
    assert listed == [("p/a", 1), ("p/a0", 4), ("p/b/b", 6), ("p/b/c", 2)]
    assert keys(store, "p") == ["p-x", "p/a", "p/a0", "p/b/b", "p/b/c"]
    assert keys(store, "p/b/") == ["p/b/b", "p/b/c"]
    assert keys(store, "p/a") == ["p/a", "p/a0"]
    assert keys(store, "nothing/") == []


def test_delete_removes_only_that_object(store: ObjectStore) -> None:
    store.put("d/one", io.BytesIO(b"1"))
    store.put("d/two", io.BytesIO(b"2"))
    store.delete("d/one")
    assert keys(store) == ["d/two"]
    store.delete("d/two")
    assert keys(store) == []
    store.put("d/one", io.BytesIO(b"again"))  # the key is usable again
    assert read_all(store, "d/one") == b"again"


def test_concurrent_puts_and_deletes_stay_consistent(store: ObjectStore) -> None:
    def work(worker: int) -> None:
        for number in range(12):
            key = f"c/{number % 3}/{worker}-{number}"
            store.put(key, io.BytesIO(key.encode() * 50))
            if number % 2:
                store.delete(key)  # may prune a directory another thread is filling
        for _ in range(5):  # readers racing writers of one key see a matching sha256
            store.put("c/shared", io.BytesIO(bytes([worker]) * 1000))
            with store.get("c/shared") as reader:
                assert reader.info.sha256 == sha(reader.read())

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(work, range(6)))
    expected = [f"c/{n % 3}/{w}-{n}" for w in range(6) for n in range(12) if n % 2 == 0]
    assert keys(store, "c/") == sorted([*expected, "c/shared"])
    shared = read_all(store, "c/shared")
    assert len(set(shared)) == 1
    assert store.head("c/shared").sha256 == sha(shared)


# --- tags -----------------------------------------------------------------------


def test_tags_on_put_set_and_replace(store: ObjectStore) -> None:
    store.put("t", io.BytesIO(b"x"), tags={"retention": "7y", "note": "a b+c=d"})
    assert store.get_tags("t") == {"retention": "7y", "note": "a b+c=d"}
    store.set_tags("t", {"hold": "legal"})
    assert store.get_tags("t") == {"hold": "legal"}
    store.set_tags("t", {})
    assert store.get_tags("t") == {}
    store.put("untagged", io.BytesIO(b"x"))
    assert store.get_tags("untagged") == {}


def test_tags_of_absent_object_are_not_found(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        store.get_tags("absent")
    with pytest.raises(ObjectNotFound):
        store.set_tags("absent", {"a": "b"})


def test_invalid_tags_are_refused(store: ObjectStore) -> None:
    with pytest.raises(InvalidTags):
        store.put("t", io.BytesIO(b"x"), tags={f"k{n}": "v" for n in range(11)})
    store.put("t", io.BytesIO(b"x"))
    with pytest.raises(InvalidTags):
        store.set_tags("t", {"bad*name": "v"})
    assert store.get_tags("t") == {}


# --- filesystem only ------------------------------------------------------------


@pytest.fixture
def fs_store(tmp_path: Path) -> FilesystemObjectStore:
    store = FilesystemObjectStore(tmp_path / "store")
    store.create()
    return store


def test_fs_missing_root_and_create(tmp_path: Path) -> None:
    store = FilesystemObjectStore(tmp_path / "absent")
    with pytest.raises(BucketNotFound, match=r"absent.*recarchive init"):
        store.check()
    with pytest.raises(BucketNotFound):
        store.put("k", io.BytesIO(b"x"))
    assert store.create() is True
    assert store.create() is False
    store.check()


def test_fs_symlink_out_of_root_is_refused(fs_store: FilesystemObjectStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"not yours")
    (fs_store.root / "link").symlink_to(outside)
    (fs_store.root / "file-link").symlink_to(outside / "secret")
    for key in ("link/secret", "link/new", "file-link"):
        with pytest.raises(InvalidObjectKey, match="symbolic link"):
            fs_store.put(key, io.BytesIO(b"overwritten"))
        for call in (fs_store.get, fs_store.head, fs_store.delete, fs_store.get_tags):
            with pytest.raises(InvalidObjectKey):
                call(key)
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert (outside / "secret").read_bytes() == b"not yours"
    assert keys(fs_store) == []  # links are not listed


def test_fs_internal_directory_is_not_a_key(fs_store: FilesystemObjectStore) -> None:
    for key in (".recarchive/tmp/x", ".recarchive/meta/k.json", ".recarchive"):
        with pytest.raises(InvalidObjectKey, match=r"\.recarchive"):
            fs_store.put(key, io.BytesIO(b"x"))
        with pytest.raises(InvalidObjectKey):
            fs_store.delete(key)
    assert keys(fs_store) == []
    fs_store.put(".recarchive-not/x", io.BytesIO(b"x"))  # only the exact segment is reserved
    assert keys(fs_store) == [".recarchive-not/x"]


def test_fs_failed_puts_leave_no_temp_file(fs_store: FilesystemObjectStore) -> None:
    tmp_dir = fs_store.root / ".recarchive" / "tmp"
    with pytest.raises(ChecksumMismatch):
        fs_store.put("k", io.BytesIO(b"data"), sha256="0" * 64)
    with pytest.raises(SizeMismatch):
        fs_store.put("k", io.BytesIO(b"data"), size=3)
    with pytest.raises(OSError, match="connection reset"):
        fs_store.put("k", io.BufferedReader(FailingStream(b"x" * 3 * MiB)))
    with pytest.raises(KeyboardInterrupt):
        fs_store.put("k", io.BufferedReader(FailingStream(b"x", error=KeyboardInterrupt())))
    assert list(tmp_dir.iterdir()) == []
    assert [p.name for p in fs_store.root.iterdir()] == [".recarchive"]


def test_fs_crash_leftovers_do_not_show(fs_store: FilesystemObjectStore) -> None:
    internal = fs_store.root / ".recarchive"
    (internal / "tmp" / "put-crashed").write_bytes(b"half an upload")
    (internal / "meta" / "ghost.json").write_text('{"size": 3, "sha256": "00"}')
    fs_store.put("real", io.BytesIO(b"abc"))
    assert keys(fs_store) == ["real"]
    assert not fs_store.exists("ghost")


def test_fs_stale_sidecar_never_reports_a_wrong_sha256(fs_store: FilesystemObjectStore) -> None:
    """A crash between the two renames leaves a sidecar of another version: ignore it."""
    fs_store.put("k", io.BytesIO(b"new data"), metadata={"v": "2"})
    (fs_store.root / "k").write_bytes(b"old")  # as if the data rename never happened
    info = fs_store.head("k")
    assert (info.size, info.sha256, dict(info.metadata)) == (3, None, {})
    fs_store.set_tags("k", {"a": "b"})  # tagging still works and keeps the file as is
    assert fs_store.get_tags("k") == {"a": "b"}
    assert read_all(fs_store, "k") == b"old"


def test_fs_key_and_prefix_directory_conflict(fs_store: FilesystemObjectStore) -> None:
    fs_store.put("a/b", io.BytesIO(b"child"))
    with pytest.raises(InvalidObjectKey, match="conflicts"):
        fs_store.put("a", io.BytesIO(b"parent"))
    fs_store.put("c", io.BytesIO(b"parent"))
    with pytest.raises(InvalidObjectKey, match="conflicts"):
        fs_store.put("c/d", io.BytesIO(b"child"))
    fs_store.put("e", io.BytesIO(b"e"))
    with pytest.raises(InvalidObjectKey, match="conflicts"):
        fs_store.put("e.json/f", io.BytesIO(b"sidecar clash"))
    assert [(i.key, i.size) for i in fs_store.list()] == [("a/b", 5), ("c", 6), ("e", 1)]
    assert not fs_store.exists("a")
    fs_store.delete("a")  # a directory is not an object: nothing to delete
    assert read_all(fs_store, "a/b") == b"child"
    assert sorted(p.name for p in fs_store.root.iterdir()) == [".recarchive", "a", "c", "e"]


def test_fs_delete_prunes_empty_directories(fs_store: FilesystemObjectStore) -> None:
    fs_store.put("x/y/z", io.BytesIO(b"1"))
    fs_store.delete("x/y/z")
    assert [p.name for p in fs_store.root.iterdir()] == [".recarchive"]
    assert list((fs_store.root / ".recarchive" / "meta").iterdir()) == []
    fs_store.put("x", io.BytesIO(b"now a file"))
    assert keys(fs_store) == ["x"]


@pytest.mark.parametrize(
    ("code", "error", "text"),
    [
        (errno.EACCES, StoreAccessDenied, "permission denied"),
        (errno.ENOSPC, StoreError, "no space left"),
        (errno.EIO, StoreError, "filesystem error"),
    ],
)
def test_fs_os_errors_become_store_errors(
    fs_store: FilesystemObjectStore,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    error: type[StoreError],
    text: str,
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr("recarchive.storage.filesystem.tempfile.mkstemp", fail)
    with pytest.raises(error, match=text) as raised:
        fs_store.put("k", io.BytesIO(b"x"))
    assert isinstance(raised.value.__cause__, OSError)
