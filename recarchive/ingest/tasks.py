"""What runs in an ingest worker: passes over the sources, once or forever.

``recarchive ingest`` calls :func:`run_ingest`. With ``workers > 1`` the
parent process discovers and the children only claim and process work, so
discovery never runs twice at once on one machine; on PostgreSQL any number
of such processes on any number of machines share the queue safely.

After a ``--once`` run, and in a continuous run hourly and after each
nightly run, the parent process housekeeps
(:func:`~recarchive.ingest.housekeeping.housekeep_ingest`): done_dir copies
and quarantine entries past their time are deleted.

SIGTERM and SIGINT finish the recording in hand, then stop. A catalogue
that vanished or was replaced under the run stops it for good (a restart
opens the new one): nothing more is acknowledged to a source.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import multiprocessing
import os
import queue
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from sqlalchemy import func, select

from recarchive.catalogue.guard import CatalogueIdentity
from recarchive.catalogue.intake import WorkItem, WorkState
from recarchive.config import Settings
from recarchive.errors import CatalogueError, CatalogueReplaced, RecArchiveError, StoreError
from recarchive.ingest.housekeeping import HousekeepingClock, housekeep_safely
from recarchive.ingest.services import Pipeline
from recarchive.ingest.sources import build_sources
from recarchive.ingest.summary import IngestSummary
from recarchive.logs import configure_logging
from recarchive.media.interfaces import MediaToolFailed
from recarchive.retention.tasks import run_nightly_if_due
from recarchive.runtime import Runtime

logger = logging.getLogger(__name__)

#: Seconds to wait after the store or the catalogue failed before trying again.
_INFRASTRUCTURE_BACKOFF_S = 10.0


class StopFlag:
    """Set by SIGTERM/SIGINT; the loops check it between recordings."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def install(self) -> None:
        def handler(signum: int, _frame: FrameType | None) -> None:
            logger.info("stop_requested", extra={"signal": signal.Signals(signum).name})
            self.event.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def __call__(self) -> bool:
        return self.event.is_set()

    def sleep(self, seconds: float) -> None:
        self.event.wait(seconds)


class IngestIncomplete(RecArchiveError):
    """Ingest stopped early; what was archived is kept and the rest is retried next run."""

    def __init__(self, message: str, summary: IngestSummary) -> None:
        super().__init__(message)
        self.summary = summary


def _drain_safely(
    pipeline: Pipeline, stop: StopFlag, on_item: Callable[[str], None] | None
) -> tuple[IngestSummary, str | None, bool]:
    """Drain; on an infrastructure failure log it and return what went wrong, and
    whether it ends the run (the catalogue opened is gone or was replaced)."""
    summary = IngestSummary()
    try:
        summary = pipeline.drain(should_stop=stop, on_item=on_item, summary=summary)
    except CatalogueReplaced as exc:
        logger.error("ingest_stopped", extra={"error": exc.message})
        return summary, exc.message, True
    except (StoreError, CatalogueError, MediaToolFailed) as exc:
        logger.error("ingest_paused", extra={"error": exc.message})
        return summary, exc.message, False
    return summary, None, False


def _replaced(error: str, summary: IngestSummary) -> IngestIncomplete:
    return IngestIncomplete(
        f"ingest stopped: {error}; nothing was acknowledged to a source after that, "
        "restart once the catalogue is in place",
        summary,
    )


def run_ingest(
    settings: Settings,
    *,
    once: bool,
    workers: int = 1,
    sources: list[str] | None = None,
    on_discovered: Callable[[int], None] | None = None,
    on_item: Callable[[str], None] | None = None,
    stop: StopFlag | None = None,
) -> IngestSummary:
    """Discover and archive; with ``once``, drain what is there and return.

    Returns the summary of everything this process and its workers did.
    """
    stop = stop or StopFlag()
    runtime = Runtime(settings)
    pipeline = Pipeline(runtime, build_sources(settings, sources))
    total = IngestSummary()
    housekeeping = HousekeepingClock()
    try:
        while True:
            runtime.check_catalogue(reread=True)  # the first pass records what was opened
            discovered = pipeline.discover()
            total.merge(discovered)
            if on_discovered is not None:
                on_discovered(_pending(runtime))
            if workers > 1:
                runtime.engine.dispose()  # no open connection may be shared with a child
                opened = runtime.catalogue_guard.opened
                drained, error, fatal = _drain_in_children(settings, workers, sources, stop, opened)
            else:
                drained, error, fatal = _drain_safely(pipeline, stop, on_item)
            total.merge(drained)
            if fatal and error is not None:
                raise _replaced(error, total)
            if once or stop():
                if once and error is None:
                    housekeep_safely(runtime)
                if error is None and total.unreadable_sources:
                    names = ", ".join(sorted(total.unreadable_sources))
                    error = f"source(s) {names} could not be read"
                if error is not None:
                    raise IngestIncomplete(
                        f"ingest stopped early: {error}; what was archived is kept, "
                        "the rest is retried on the next run",
                        total,
                    )
                return total
            stop.sleep(
                settings.ingest.poll_interval_s if error is None else _INFRASTRUCTURE_BACKOFF_S
            )
            if stop():
                return total
            if _nightly(runtime) or housekeeping.due():
                housekeep_safely(runtime)
                housekeeping.done()
    except CatalogueReplaced as exc:  # found between drains (discovery, a new pass)
        logger.error("ingest_stopped", extra={"error": exc.message})
        raise _replaced(exc.message, total) from exc
    finally:
        runtime.close()


def _nightly(runtime: Runtime) -> bool:
    """A long-running ingest also runs the nightly expiry when it is due (one runner).

    True when this process ran it.
    """
    try:
        return run_nightly_if_due(runtime) is not None
    except RecArchiveError as exc:
        logger.error("nightly_failed", extra={"error": exc.message})
        return False


def _pending(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return int(
            session.scalar(
                select(func.count(WorkItem.id)).where(
                    WorkItem.state.in_([WorkState.PENDING, WorkState.CLAIMED])
                )
            )
            or 0
        )


def _child(
    settings: Settings, sources: list[str] | None, results: Any, opened: CatalogueIdentity
) -> None:
    configure_logging(settings.general.log_level, settings.general.log_format)
    stop = StopFlag()
    stop.install()
    runtime = Runtime(settings, opened=opened)  # the catalogue the parent opened, no other
    try:
        pipeline = Pipeline(runtime, build_sources(settings, sources))
        summary, error, fatal = _drain_safely(pipeline, stop, None)
        results.put((summary.as_dict(), error, fatal))
    finally:
        runtime.close()


def _drain_in_children(
    settings: Settings,
    workers: int,
    sources: list[str] | None,
    stop: StopFlag,
    opened: CatalogueIdentity,
) -> tuple[IngestSummary, str | None, bool]:
    # fork where there is one: the children start with everything imported (a
    # spawned child spends about a second importing); the parent holds no open
    # connection at this point and runs no threads. Each child builds its own
    # runtime and sources.
    context: Any = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    )
    results = context.Queue()
    children = [
        context.Process(target=_child, args=(settings, sources, results, opened), daemon=False)
        for _ in range(workers)
    ]
    for child in children:
        child.start()
    summary = IngestSummary()
    error: str | None = None
    fatal = False
    received = 0
    while received < len(children):
        if stop():
            for child in children:
                if child.is_alive() and child.pid is not None:
                    _signal_child(child.pid)
        try:
            values, child_error, child_fatal = results.get(timeout=0.5)
        except queue.Empty:
            if not any(child.is_alive() for child in children) and results.empty():
                error = error or "a worker process died"
                break
            continue
        received += 1
        if child_fatal and not fatal:  # the reason that ends the run is the one reported
            error, fatal = child_error, True
        error = error or child_error
        summary.merge(_summary_from_dict(values))
    for child in children:
        child.join()
        if child.exitcode not in (0, None):
            error = error or f"a worker process exited with status {child.exitcode}"
    return summary, error, fatal


def _signal_child(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


def _summary_from_dict(values: dict[str, Any]) -> IngestSummary:
    quarantined = collections.Counter(values.pop("quarantined"))
    return IngestSummary(**values, quarantined=quarantined)
