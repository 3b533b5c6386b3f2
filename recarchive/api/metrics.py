"""Prometheus metrics of one API process: requests, latencies, integrity mismatches, and
catalogue gauges.

Requests are labelled by route template (``/api/v1/recordings/{recording_id}``),
never by the URL itself, so no id or number reaches the metrics.
Catalogue gauges (the figures of ``recarchive status``, from
:func:`recarchive.status.installation_status`, and recordings by status) are
read when scraped, at most every ``GAUGE_TTL_S`` seconds.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from recarchive.catalogue.models import Recording
from recarchive.errors import RecArchiveError
from recarchive.runtime import Runtime
from recarchive.status import InstallationStatus, installation_status

GAUGE_TTL_S = 15.0
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _CatalogueCollector(Collector):
    """``recarchive status``'s figures and recordings by status, read when scraped."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._lock = threading.Lock()
        self._cached: tuple[float, tuple[dict[str, int], InstallationStatus]] | None = None

    def _read(self) -> tuple[dict[str, int], InstallationStatus]:
        with self.runtime.sessions() as session:
            rows = session.execute(
                select(Recording.status, func.count()).group_by(Recording.status)
            ).all()
        by_status = {str(status.value): int(count) for status, count in rows}
        return by_status, installation_status(self.runtime)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] > GAUGE_TTL_S:
                try:
                    self._cached = (time.monotonic(), self._read())
                except (SQLAlchemyError, RecArchiveError):  # the catalogue is down: no gauges
                    return
            by_status, status = self._cached[1]
        recordings = GaugeMetricFamily(
            "recarchive_recordings", "Catalogued recordings by status.", labels=["status"]
        )
        for name, count in sorted(by_status.items()):
            recordings.add_metric([name], count)
        yield recordings
        yield from _status_gauges(status)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _labelled(
    name: str, documentation: str, label: str, values: dict[str, float]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


def _status_gauges(status: InstallationStatus) -> Iterator[GaugeMetricFamily]:
    """The figures of ``recarchive status`` (recarchive/status.py), as gauges."""
    yield _gauge("recarchive_stored_bytes", "Bytes of the active recordings.", status.bytes_stored)
    yield _gauge(
        "recarchive_encryption_enabled",
        "1 when new recordings are stored encrypted, else 0.",
        1 if status.encryption.enabled else 0,
    )
    yield _gauge(
        "recarchive_recordings_plaintext",
        "Recordings stored in plaintext (from before encryption was enabled).",
        status.encryption.plaintext,
    )
    yield _gauge("recarchive_work_waiting", "Work items waiting to be archived.", status.waiting)
    yield _gauge("recarchive_work_claimed", "Work items being archived now.", status.claimed)
    yield _gauge(
        "recarchive_quarantine_open",
        "Quarantine entries not yet resolved.",
        sum(status.quarantined.values()),
    )
    yield _labelled(
        "recarchive_quarantine_open_by_reason",
        "Quarantine entries not yet resolved, by reason.",
        "reason",
        {reason: count for reason, count in status.quarantined.items()},
    )
    lags = {s.name: s.lag_s for s in status.sources if s.lag_s is not None}
    yield _labelled(
        "recarchive_source_lag_seconds",
        "Seconds since the source's newest recording was archived.",
        "source",
        lags,
    )
    yield _labelled(
        "recarchive_source_waiting",
        "Work items of the source waiting to be archived.",
        "source",
        {s.name: s.waiting for s in status.sources},
    )
    nightly = status.nightly
    yield _gauge(
        "recarchive_nightly_done",
        "1 when the most recently due nightly run has finished, else 0.",
        1 if nightly.done_at is not None else 0,
    )
    if nightly.done_at is not None:
        yield _gauge(
            "recarchive_nightly_finished_timestamp_seconds",
            "When the most recently due nightly run finished (Unix time).",
            nightly.done_at.timestamp(),
        )
    yield _gauge(
        "recarchive_nightly_next_timestamp_seconds",
        "When the next nightly run is due (Unix time).",
        nightly.following.timestamp(),
    )
    yield _gauge("recarchive_holds_open", "Holds in force.", status.open_holds)
    yield _gauge(
        "recarchive_subject_requests_open",
        "Data-subject requests not yet completed.",
        status.open_requests,
    )
    yield _gauge(
        "recarchive_audit_last_seq",
        "Sequence number of the newest audit entry.",
        status.audit.head_seq,
    )
    if status.audit.unanchored is not None:
        yield _gauge(
            "recarchive_audit_unanchored_entries",
            "Audit entries after the newest anchor published outside the catalogue.",
            status.audit.unanchored,
        )
    yield _gauge("recarchive_store_up", "1 when the object store answers, else 0.", status.store_ok)
    yield _gauge(
        "recarchive_work_remains",
        "1 while something waits for the pipeline or for a person (status exit 3).",
        status.work_remains,
    )


class ApiMetrics:
    """The process's metrics; with several API processes, all of them in every scrape.

    ``recarchive serve --workers N`` sets ``PROMETHEUS_MULTIPROC_DIR``: each
    process then writes its counters there and a scrape adds them up.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.registry = CollectorRegistry()
        multiprocess_dir = os.environ.get(MULTIPROCESS_ENV)
        own = None if multiprocess_dir else self.registry
        self.requests = Counter(
            "recarchive_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=own,
        )
        self.latency = Histogram(
            "recarchive_http_request_duration_seconds",
            "Time to the response headers, by route template.",
            ["route"],
            buckets=_BUCKETS,
            registry=own,
        )
        self.integrity_mismatches = Counter(
            "recarchive_integrity_mismatches",
            "Full reads of a recording's audio cut because the bytes did not match its SHA-256.",
            registry=own,
        )
        if multiprocess_dir:
            MultiProcessCollector(self.registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]
        self.registry.register(_CatalogueCollector(runtime))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def integrity_mismatch(self) -> None:
        """Count a full read cut for not matching its SHA-256."""
        self.integrity_mismatches.inc()

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
