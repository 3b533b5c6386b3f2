#!/usr/bin/env python3
"""Benchmark nightly expiry on the real S3 server against bare DeleteObjects batches.

    eval "$(scripts/s3-server start)"
    .venv/bin/python scripts/bench_expire.py --count 100000

Creates ``--count`` due recordings (catalogue rows and small objects), runs
``recarchive expire`` on them in a fresh process (batched DeleteObjects,
tombstones), and in the same run deletes as many other objects with bare
DeleteObjects batches of 1,000 keys sent one at a time, as expiry sends them
(the rate the server itself allows: the target is expiry at 0.9 of it), and
with one DeleteObject request each. Prints the rates and the ratios, the
peak memory of the expiry process at a quarter of the count and at the full
count (it should not grow with the count), and all of it as one JSON line.

    # 1,000,000 due recordings on a filesystem store (memory from 10,000 up),
    # against bare unlinks of as many files:
    .venv/bin/python scripts/bench_expire.py --store filesystem --count 1000000 --small 10000
    # the catalogue on PostgreSQL (a database made and dropped for the run):
    .venv/bin/python scripts/bench_expire.py --count 20000 --no-single \
        --postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from bench_s3 import CREATED, client, describe_checkout, remove_buckets, require_environment
from sqlalchemy import create_engine, insert, make_url, text

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from recarchive.catalogue.database import create_catalogue_engine  # noqa: E402
from recarchive.catalogue.migrate import upgrade_schema  # noqa: E402
from recarchive.catalogue.models import Recording  # noqa: E402

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

PAYLOAD = b"x" * 1024
DUE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def fill_bucket(s3: S3Client, bucket: str, keys: list[str], workers: int) -> None:
    s3.create_bucket(Bucket=bucket)
    CREATED.append(bucket)

    def put(key: str) -> None:
        s3.put_object(Bucket=bucket, Key=key, Body=PAYLOAD)

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(put, keys))


def key_of(recording_id: uuid.UUID, n: int) -> str:
    """Spread over a year of day directories, as a real archive's keys are."""
    day = dt.date(2024, 1, 1) + dt.timedelta(days=n % 366)
    return f"recordings/{day:%Y/%m/%d}/{recording_id}.wav"


def fill_directory(root: Path, keys: list[str]) -> None:
    """The objects as the filesystem store keeps them (plain files; no fsync, a benchmark)."""
    for key in keys:
        path = root / key
        try:
            path.write_bytes(PAYLOAD)
        except FileNotFoundError:
            path.parent.mkdir(parents=True)
            path.write_bytes(PAYLOAD)


#: PostgreSQL databases made for a run, dropped at its end.
DATABASES: list[str] = []


def catalogue_url(work: Path, name: str, postgres_url: str | None) -> str:
    """A fresh catalogue: a SQLite file, or a new database on the PostgreSQL server."""
    if postgres_url is None:
        return f"sqlite:///{work / f'catalogue-{name}.db'}"
    server = make_url(postgres_url)
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    database = name.replace("-", "_")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    admin.dispose()
    DATABASES.append(database)
    return server.set(database=database).render_as_string(hide_password=False)


def drop_databases(postgres_url: str | None) -> None:
    if postgres_url is None or not DATABASES:
        return
    admin = create_engine(make_url(postgres_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for database in DATABASES:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    admin.dispose()


def installation(
    work: Path, count: int, workers: int, store: str, postgres_url: str | None
) -> tuple[Path, str]:
    """A catalogue with ``count`` due recordings and their objects in a fresh bucket
    (or, ``store`` "filesystem", a fresh directory)."""
    bucket = f"bench-expire-{uuid.uuid4().hex[:8]}"
    url = catalogue_url(work, bucket, postgres_url)
    engine = create_catalogue_engine(url)
    upgrade_schema(engine)
    ids = [uuid.uuid4() for _ in range(count)]
    keys = [key_of(i, n) for n, i in enumerate(ids)]
    root = work / f"objects-{bucket}"
    if store == "s3":
        fill_bucket(client(), bucket, keys, workers)
    else:
        fill_directory(root, keys)
    rows = [
        {
            "id": i, "source": "bench", "source_ref": str(i), "started_at": DUE,
            "duration_ms": 1000, "object_key": key, "format": "wav", "codec": "pcm_s16le",
            "channels": 1, "sample_rate": 8000, "size_bytes": len(PAYLOAD), "sha256": "0" * 64,
            "retain_until": DUE, "retention_rule": "default", "direction": "unknown",
            "customer_match": "unknown", "status": "active", "retention_class": "standard",
            "created_at": DUE, "updated_at": DUE,
        }
        for i, key in zip(ids, keys, strict=True)
    ]  # fmt: skip
    with engine.begin() as connection:
        for start in range(0, len(rows), 5000):
            connection.execute(insert(Recording), rows[start : start + 5000])
    engine.dispose()
    config = work / f"{bucket}.toml"
    config.write_text(
        f'[general]\ndata_dir = "{work / "var"}"\nlog_level = "WARNING"\n'
        f'[catalogue]\nurl = "{url}"\n'
        + (
            f'[storage]\nbackend = "s3"\n[s3]\nendpoint_url = '
            f'"{os.environ["RECARCHIVE_S3_ENDPOINT_URL"]}"\nbucket = "{bucket}"\n'
            if store == "s3"
            else f'[storage]\nbackend = "filesystem"\nroot = "{root}"\n'
        ),
        encoding="utf-8",
    )
    return config, bucket


def run_expiry(config: Path) -> tuple[float, dict[str, object], float]:
    """Seconds, the JSON report and the peak RSS (MiB) of ``recarchive expire``."""
    script = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stdout.write(done.stdout)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RECARCHIVE_")}
    for name in ("RECARCHIVE_S3_ACCESS_KEY_ID", "RECARCHIVE_S3_SECRET_ACCESS_KEY"):
        if name in os.environ:
            environment[name] = os.environ[name]
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script, sys.executable, "-m", "recarchive", "--config",
         str(config), "expire", "--json"],
        env=environment, capture_output=True, text=True, check=True,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    lines = done.stdout.strip().splitlines()
    return seconds, json.loads(lines[-2]), int(lines[-1]) / 1024


def single_deletes(count: int, workers: int) -> float:
    s3 = client()
    bucket = f"bench-single-{uuid.uuid4().hex[:8]}"
    keys = [f"recordings/{uuid.uuid4()}.wav" for _ in range(count)]
    fill_bucket(s3, bucket, keys, workers)
    started = time.perf_counter()

    def delete(key: str) -> None:
        s3.delete_object(Bucket=bucket, Key=key)

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(delete, keys))
    return time.perf_counter() - started


def bulk_deletes(count: int, workers: int) -> float:
    """Seconds for bare DeleteObjects batches of 1,000 keys, one request at a time."""
    s3 = client()
    bucket = f"bench-bulk-{uuid.uuid4().hex[:8]}"
    keys = [f"recordings/{uuid.uuid4()}.wav" for _ in range(count)]
    fill_bucket(s3, bucket, keys, workers)
    started = time.perf_counter()
    for start in range(0, len(keys), 1000):
        batch = keys[start : start + 1000]
        answer = s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
        )
        if answer.get("Errors"):
            sys.exit(
                f"the server refused {len(answer['Errors'])} bare deletes: {answer['Errors'][0]}"
            )
    return time.perf_counter() - started


def bare_unlinks(work: Path, count: int) -> float:
    """Seconds to unlink as many files, one at a time: the filesystem's own delete rate."""
    root = work / f"bare-{uuid.uuid4().hex[:8]}"
    keys = [key_of(uuid.uuid4(), n) for n in range(count)]
    fill_directory(root, keys)
    started = time.perf_counter()
    for key in keys:
        os.unlink(root / key)
    return time.perf_counter() - started


def main() -> None:
    options = parse_arguments()
    if options.store == "s3":
        require_environment("bench_expire.py")
    try:
        run(options)
    finally:
        remove_buckets()
        drop_databases(options.postgres_url)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="due recordings")
    parser.add_argument("--small", type=int, default=None,
                        help="due recordings of the first run, for the memory comparison "
                        "(default a quarter of --count)")  # fmt: skip
    parser.add_argument("--store", choices=("s3", "filesystem"), default="s3",
                        help="where the objects are: the S3 server (compared with bare "
                        "DeleteObjects) or a filesystem store (compared with bare unlinks; "
                        "for 1,000,000 when the S3 server cannot hold them)")  # fmt: skip
    parser.add_argument(
        "--no-single",
        action="store_true",
        help="skip the one-DELETE-per-object comparison (slow at large counts)",
    )
    parser.add_argument(
        "--postgres-url",
        default=None,
        help="catalogue on this PostgreSQL server (a database made and dropped per run) "
        "instead of SQLite, e.g. postgresql+psycopg://postgres@127.0.0.1/postgres",
    )
    parser.add_argument("--workers", type=int, default=16, help="threads filling the buckets")
    parser.add_argument("--delete-workers", type=int, default=1,
                        help="concurrency of the one-DELETE-per-object baseline "
                        "(expiry itself sends one request at a time)")  # fmt: skip
    return parser.parse_args()


def run(options: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="recarchive-bench-expire-"))
    results: dict[str, float | str] = {
        "store": options.store,
        "catalogue": "postgresql" if options.postgres_url else "sqlite",
        "commit": describe_checkout(),
    }
    small = options.small if options.small is not None else options.count // 4
    for label, count in (("quarter", small), ("full", options.count)):
        config, _bucket = installation(
            work, count, options.workers, options.store, options.postgres_url
        )
        seconds, report, peak = run_expiry(config)
        if report["deleted"] != count:
            sys.exit(f"expiry deleted {report['deleted']} of {count}: {report}")
        in_run = count / float(str(report["seconds"]))
        results[f"expire_{label}_per_s"] = count / seconds
        results[f"expire_{label}_in_run_per_s"] = in_run
        results[f"count_{label}"] = count
        results[f"peak_mib_{label}"] = peak
        print(
            f"expire {count:>7} recordings: {count / seconds:9.1f}/s with the process's start "
            f"({in_run:.1f}/s the run itself), peak {peak:.1f} MiB"
        )
    expired = float(results["expire_full_per_s"])
    if options.store == "s3":
        bulk = options.count / bulk_deletes(options.count, options.workers)
        print(f"bare DeleteObjects:      {bulk:9.1f}/s")
    else:
        bulk = options.count / bare_unlinks(work, options.count)
        print(f"bare unlinks:            {bulk:9.1f}/s")
    results["bulk_delete_per_s"] = bulk
    results["ratio_bulk"] = expired / bulk
    target = " (target 0.90)" if options.store == "s3" else " (the catalogue's own cost shows)"
    print(f"ratio (expire / bare bulk delete): {expired / bulk:9.2f}{target}")
    in_run = float(results["expire_full_in_run_per_s"])
    results["ratio_bulk_in_run"] = in_run / bulk
    print(f"ratio, the run itself (as the nightly job runs it in `serve`): {in_run / bulk:9.2f}")
    if options.store == "s3" and not options.no_single:
        single = options.count / single_deletes(options.count, options.delete_workers)
        results["single_delete_per_s"] = single
        results["ratio"] = expired / single
        print(f"one DELETE per object:   {single:9.1f}/s")
        print(f"ratio (expire / single): {expired / single:9.2f}")
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in results.items()}))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
