"""What runs in an ingest worker: passes over the sources, once or forever.

``recarchive ingest`` calls :func:`run_ingest`. With ``workers > 1`` the
parent process discovers and the children only claim and process work, so
discovery never runs twice at once on one machine; on PostgreSQL any number
of such processes on any number of machines share the queue safely.

After a ``--once`` run, and in a continuous run hourly and after each
nightly run, the parent process housekeeps
(:func:`~recarchive.ingest.housekeeping.housekeep_ingest`): done_dir copies
and quarantine entries past their time are deleted.

SIGTERM and SIGINT finish the recording in hand, then stop. A catalogue or
store that cannot be reached pauses the run: the pass ends, the claims in
hand are released (or their short leases run out), and the run tries again
with backoff until it is back. A catalogue that vanished or was replaced
under the run stops it for good (a restart opens the new one), as do
refused credentials, a missing schema or bucket: nothing more is
acknowledged to a source.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import multiprocessing
import os
import queue
import signal
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from recarchive.catalogue.guard import CatalogueIdentity
from recarchive.catalogue.intake import WorkItem, WorkState
from recarchive.config import Settings
from recarchive.errors import (
    BucketNotFound,
    CatalogueMisconfigured,
    CatalogueReplaced,
    RecArchiveError,
    StoreAccessDenied,
)
from recarchive.ingest.housekeeping import HousekeepingClock, housekeep_safely
from recarchive.ingest.interfaces import INFRASTRUCTURE_FAILURES
from recarchive.ingest.services import Pipeline
from recarchive.ingest.sources import build_sources
from recarchive.ingest.summary import IngestSummary
from recarchive.lifecycle import Backoff, StopFlag
from recarchive.logs import configure_logging
from recarchive.parts import Sessions
from recarchive.retention.tasks import run_nightly_if_due
from recarchive.runtime import Runtime

logger = logging.getLogger(__name__)

#: Failures that waiting does not cure: the run stops with one line (the operator must act).
_FATAL = (CatalogueReplaced, CatalogueMisconfigured, StoreAccessDenied, BucketNotFound)
#: Failures of the infrastructure, not of a recording: the pass ends, the run waits and goes on.
_PAUSING = INFRASTRUCTURE_FAILURES


class IngestIncomplete(RecArchiveError):
    """Ingest stopped early; what was archived is kept and the rest is retried next run."""

    def __init__(self, message: str, summary: IngestSummary) -> None:
        super().__init__(message)
        self.summary = summary


@dataclasses.dataclass
class PassResult:
    """What one pass (discovery and a drain) did, and the failure that ended it early."""

    summary: IngestSummary = dataclasses.field(default_factory=IngestSummary)
    error: str | None = None
    #: The failure ends the run: waiting will not cure it.
    fatal: bool = False

    def failed(self, exc: RecArchiveError) -> PassResult:
        self.error = exc.message
        self.fatal = isinstance(exc, _FATAL)
        return self


def _drain_safely(
    pipeline: Pipeline, stop: StopFlag, on_item: Callable[[str], None] | None
) -> PassResult:
    """Drain; an infrastructure failure ends the drain and is returned, counts kept."""
    result = PassResult()
    try:
        pipeline.drain(should_stop=stop, on_item=on_item, summary=result.summary)
    except _PAUSING as exc:
        return result.failed(exc)
    return result


def _stopped(error: str, summary: IngestSummary) -> IngestIncomplete:
    logger.error("ingest_stopped", extra={"error": error})
    return IngestIncomplete(
        f"ingest stopped: {error}; nothing was acknowledged to a source after that, "
        "restart once the catalogue or the store is in place",
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

    Returns the summary of everything this process and its workers did. A
    catalogue or store that cannot be reached ends the pass, not the run: the
    run waits (:class:`~recarchive.lifecycle.Backoff`) and goes on when it is
    back; with ``once`` it stops with :class:`IngestIncomplete`. A failure
    that waiting does not cure (a replaced catalogue, no schema, refused
    credentials, no bucket) stops the run.
    """
    stop = stop or StopFlag()
    runtime = Runtime(settings)
    built = build_sources(settings, sources)
    pipeline = Pipeline(runtime, built)
    run = _Run(settings, runtime, pipeline, workers, sources, stop)
    logger.info(
        "ingest_started", extra={"sources": sorted(built), "workers": workers, "once": once}
    )
    try:
        while True:
            result = run.one_pass(on_discovered, on_item)
            run.total.merge(result.summary)
            if result.fatal and result.error is not None:
                raise _stopped(result.error, run.total)
            if result.error is not None:
                run.total.paused += 1
                run.total.last_error = result.error
            if once or stop():
                return run.finish(result.error, once=once)
            wait = (
                settings.ingest.poll_interval_s
                if result.error is None
                else run.backoff.failed(result.error)
            )
            stop.sleep(wait)
            if stop():
                return run.finish(None, once=False)
            if result.error is None and (_nightly(runtime) or run.housekeeping.due()):
                housekeep_safely(runtime)
                run.housekeeping.done()
    finally:
        runtime.close()


class _Run:
    """The state of one ``run_ingest``: its totals, its backoff, how to run a pass."""

    def __init__(
        self,
        settings: Settings,
        runtime: Runtime,
        pipeline: Pipeline,
        workers: int,
        sources: list[str] | None,
        stop: StopFlag,
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.pipeline = pipeline
        self.workers = workers
        self.sources = sources
        self.stop = stop
        self.total = IngestSummary()
        self.housekeeping = HousekeepingClock()
        self.backoff = Backoff("ingest")

    def one_pass(
        self,
        on_discovered: Callable[[int], None] | None,
        on_item: Callable[[str], None] | None,
    ) -> PassResult:
        """Discover, then drain here or in worker processes."""
        try:
            self.runtime.check_catalogue(reread=True)  # the first pass records what was opened
            self.pipeline.release_owed()
            discovered = self.pipeline.discover()
            if on_discovered is not None:
                on_discovered(_pending(self.runtime))
        except _PAUSING as exc:
            return PassResult().failed(exc)
        self.backoff.succeeded()  # the catalogue answers: an outage ends here
        if self.workers > 1:
            self.runtime.quiesce()  # no helper thread runs across a fork
            self.runtime.engine.dispose()  # no open connection may be shared with a child
            opened = self.runtime.catalogue_guard.opened
            result = _drain_in_children(
                self.settings, self.workers, self.sources, self.stop, opened
            )
        else:
            result = _drain_safely(self.pipeline, self.stop, on_item)
        result.summary.merge(discovered)
        return result

    def finish(self, error: str | None, *, once: bool) -> IngestSummary:
        """The run's summary, with what still waits; raise if ``once`` ended early."""
        if once and error is None:
            housekeep_safely(self.runtime)
        try:
            self.total.waiting = _pending(self.runtime)
        except _PAUSING as exc:  # the catalogue went away again: say so, do not guess
            self.total.waiting = None
            error = error or exc.message
        if once and error is None and self.total.unreadable_sources:
            names = ", ".join(sorted(self.total.unreadable_sources))
            error = f"source(s) {names} could not be read"
        if once and error is not None:
            raise IngestIncomplete(
                f"ingest stopped early: {error}; what was archived is kept, "
                "the rest is retried on the next run",
                self.total,
            )
        return self.total


def _nightly(runtime: Runtime) -> bool:
    """A long-running ingest also runs the nightly expiry when it is due (one runner).

    True when this process ran it.
    """
    try:
        return run_nightly_if_due(runtime) is not None
    except RecArchiveError as exc:
        logger.error("nightly_failed", extra={"error": exc.message})
        return False


def _pending(runtime: Sessions) -> int:
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
    settings: Settings,
    sources: list[str] | None,
    results: Any,
    opened: CatalogueIdentity,
    index: int,
    log_level: str,
) -> None:
    """Drain in a worker process; report the counts after every recording and at the end.

    The running counts reach the parent as they change, so a worker that is
    killed mid-pass still has what it archived counted. It logs at the
    parent's level (``log_level``: a one-shot command logs less than a service).
    """
    configure_logging(log_level, settings.general.log_format)
    stop = StopFlag()
    stop.install()
    result = PassResult()

    def progress(_outcome: str) -> None:
        results.put(("progress", index, result.summary.as_dict(), None, False))

    runtime = Runtime(settings, opened=opened)  # the catalogue the parent opened, no other
    try:
        pipeline = Pipeline(runtime, build_sources(settings, sources))
        pipeline.drain(should_stop=stop, on_item=progress, summary=result.summary)
    except _PAUSING as exc:
        result.failed(exc)
    try:
        results.put(("done", index, result.summary.as_dict(), result.error, result.fatal))
    finally:
        runtime.close()


def _drain_in_children(
    settings: Settings,
    workers: int,
    sources: list[str] | None,
    stop: StopFlag,
    opened: CatalogueIdentity,
) -> PassResult:
    # fork where there is one: the children start with everything imported (a
    # spawned child spends about a second importing); the parent holds no open
    # connection at this point and runs no threads. Each child builds its own
    # runtime and sources.
    context: Any = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    )
    results = context.Queue()
    level = logging.getLevelName(logging.getLogger("recarchive").getEffectiveLevel())
    children = [
        context.Process(
            target=_child, args=(settings, sources, results, opened, index, level), daemon=False
        )
        for index in range(workers)
    ]
    for child in children:
        child.start()
    counts: dict[int, dict[str, Any]] = {}
    done: set[int] = set()
    asked: set[int] = set()  # children told to stop: each is told once
    result = PassResult()
    while len(done) < len(children):
        if stop():
            for child in children:
                if child.is_alive() and child.pid is not None and child.pid not in asked:
                    asked.add(child.pid)
                    _signal_child(child.pid)
        try:
            kind, index, values, child_error, child_fatal = results.get(timeout=0.5)
        except queue.Empty:
            if not any(child.is_alive() for child in children) and results.empty():
                result.error = result.error or "a worker process died"
                break
            continue
        counts[index] = values
        if kind != "done":
            continue
        done.add(index)
        if child_fatal and not result.fatal:  # the reason that ends the run is the one reported
            result.error, result.fatal = child_error, True
        result.error = result.error or child_error
    for child in children:
        child.join()
        if child.exitcode not in (0, None):
            result.error = result.error or f"a worker process exited with status {child.exitcode}"
    for values in counts.values():
        result.summary.merge(_summary_from_dict(values))
    return result


def _signal_child(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


def _summary_from_dict(values: dict[str, Any]) -> IngestSummary:
    quarantined = collections.Counter(values.pop("quarantined"))
    return IngestSummary(**values, quarantined=quarantined)
