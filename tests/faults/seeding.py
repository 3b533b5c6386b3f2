"""Many recordings past their retention: small objects in the store, rows inserted in bulk.

The same shape as ``scripts/bench_expire.py`` makes for its benchmark, on
any catalogue and store an installation's settings name: thousands of
recordings in seconds (objects are put from a thread pool; rows go in
batches), enough that an expiry runs several DeleteObjects batches.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import io
import uuid
from collections.abc import Mapping

from sqlalchemy import insert

from recarchive.catalogue.models import Recording
from recarchive.catalogue.services import CLASS_TAG
from recarchive.config import load_settings
from recarchive.runtime import Runtime

PAYLOAD = b"RIFF" + b"\0" * 1020
#: Long past: due whatever the clock says.
STARTED = dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC)


def seed_due_recordings(env: Mapping[str, str], count: int, *, threads: int = 24) -> list[str]:
    """``count`` due recordings with their objects; returns their object keys."""
    runtime = Runtime(load_settings(env=dict(env)))
    try:
        ids = [uuid.uuid4() for _ in range(count)]
        keys = [f"recordings/{STARTED:%Y/%m/%d}/{rid}.wav" for rid in ids]

        def put(key: str) -> str:
            info = runtime.store.put(
                key,
                io.BytesIO(PAYLOAD),
                content_type="audio/wav",
                tags={CLASS_TAG: runtime.settings.retention.retention_class},
            )
            return info.sha256 or ""

        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            digests = list(pool.map(put, keys))
        rows = [
            {
                "id": rid, "source": "faults", "source_ref": f"due-{rid}", "started_at": STARTED,
                "duration_ms": 1000, "object_key": key, "format": "wav", "codec": "pcm_s16le",
                "channels": 1, "sample_rate": 8000, "size_bytes": len(PAYLOAD), "sha256": digest,
                "retain_until": STARTED + dt.timedelta(days=365), "retention_rule": "default",
                "direction": "unknown", "customer_match": "unknown", "status": "active",
                "retention_class": runtime.settings.retention.retention_class,
                "created_at": STARTED, "updated_at": STARTED,
            }
            for rid, key, digest in zip(ids, keys, digests, strict=True)
        ]  # fmt: skip
        with runtime.engine.begin() as connection:
            for start in range(0, len(rows), 2000):
                connection.execute(insert(Recording), rows[start : start + 2000])
        return keys
    finally:
        runtime.close()
