"""Prometheus metrics of one API process: requests, latencies, and catalogue gauges.

Requests are labelled by route template (``/api/v1/recordings/{recording_id}``),
never by the URL itself, so no id or number reaches the metrics.
Catalogue gauges are read when scraped, at most every ``GAUGE_TTL_S`` seconds.
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

from recarchive.access.models import AuditEvent
from recarchive.catalogue.intake import QuarantineEntry
from recarchive.catalogue.models import Recording
from recarchive.errors import RecArchiveError
from recarchive.runtime import Runtime

GAUGE_TTL_S = 15.0
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _CatalogueCollector(Collector):
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, dict[str, int]]] | None = None

    def _read(self) -> dict[str, dict[str, int]]:
        with self.runtime.sessions() as session:
            rows = session.execute(
                select(Recording.status, func.count()).group_by(Recording.status)
            ).all()
            by_status = {status: count for status, count in rows}
            quarantined = session.scalar(
                select(func.count()).where(QuarantineEntry.resolved_at.is_(None))
            )
            audit = session.scalar(select(func.max(AuditEvent.seq)))
        return {
            "recordings": {str(k.value): int(v) for k, v in by_status.items()},
            "quarantine": {"open": int(quarantined or 0)},
            "audit": {"last_seq": int(audit or 0)},
        }

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] > GAUGE_TTL_S:
                try:
                    self._cached = (time.monotonic(), self._read())
                except (SQLAlchemyError, RecArchiveError):  # the catalogue is down: no gauges
                    return
            values = self._cached[1]
        recordings = GaugeMetricFamily(
            "recarchive_recordings", "Catalogued recordings by status.", labels=["status"]
        )
        for status, count in sorted(values["recordings"].items()):
            recordings.add_metric([status], count)
        yield recordings
        yield GaugeMetricFamily(
            "recarchive_quarantine_open",
            "Quarantine entries not yet resolved.",
            value=values["quarantine"]["open"],
        )
        yield GaugeMetricFamily(
            "recarchive_audit_last_seq",
            "Sequence number of the newest audit entry.",
            value=values["audit"]["last_seq"],
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
        if multiprocess_dir:
            MultiProcessCollector(self.registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]
        self.registry.register(_CatalogueCollector(runtime))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
