"""Discovery's half of the ingest pipeline: what every source holds now, queued.

:class:`Discoverer` runs one pass over the sources: it releases the claims
of dead workers on this host, queues each recording found as a work item
(keyed by source and reference, so a second delivery is counted, not queued
twice), records the problems found at the source in quarantine, enriches
recordings whose CDR row came late, and acknowledges a recording the
archive already holds when its bytes are the archived ones (a crash
between the commit and the acknowledgement, or a delivery made twice).
The other half, claiming and archiving work items, is
:class:`recarchive.ingest.services.Pipeline`.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import uuid
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

from recarchive.catalogue.database import transaction
from recarchive.ingest import queue
from recarchive.ingest.discovery import SourceStates, collect, count_found
from recarchive.ingest.enrichment import enrich_late
from recarchive.ingest.files import process_alive, release, source_digest
from recarchive.ingest.interfaces import (
    Discovery,
    Problem,
    Source,
    SourceError,
    SourceUnavailable,
)
from recarchive.ingest.summary import IngestSummary
from recarchive.runtime import Runtime

logger = logging.getLogger(__name__)


class Discoverer:
    """Queues what the sources hold; acknowledges what is archived already."""

    def __init__(
        self,
        runtime: Runtime,
        sources: Mapping[str, Source],
        work_dir: Path,
        forget_key: Callable[[], str],
        acknowledge: Callable[[Source, Discovery, uuid.UUID], None],
    ) -> None:
        self.runtime = runtime
        self.sources = sources
        self.work_dir = work_dir
        #: The identity-hash key (read when first needed): forgotten work items' references.
        self._forget_key = forget_key
        #: The pipeline's acknowledgement (it checks the catalogue is still the one opened).
        self._acknowledge = acknowledge
        self.source_states = SourceStates(runtime.sessions)

    def discover(self, now: dt.datetime) -> IngestSummary:
        """Queue what every source holds now and record the problems found there."""
        summary = IngestSummary()
        with transaction(self.runtime.sessions) as session:
            released = queue.release_dead_claims(session, socket.gethostname(), process_alive)
        if released:
            logger.warning("dead_claims_released", extra={"count": released})
        for name, source in self.sources.items():
            outage = self.source_states.outage(name)
            try:
                self._discover_source(name, source, now, summary)
            except SourceUnavailable as exc:
                # Its discovery pauses (what is queued goes on); logged once, and its end.
                summary.unreadable_sources[name] = exc.message
                outage.failed(exc.message)
            except SourceError as exc:
                summary.unreadable_sources[name] = exc.message
                logger.error("source_unreadable", extra={"source": name, "error": exc.message})
            else:
                outage.succeeded()
        return summary

    def _discover_source(
        self, name: str, source: Source, now: dt.datetime, summary: IngestSummary
    ) -> None:
        self.source_states.restore(name, source)
        found = collect(source, now, lambda refs: self._known(name, refs))
        discoveries, problems = found.discoveries, found.problems
        count_found(name, found, summary)
        with transaction(self.runtime.sessions) as session:
            for reason in queue.record_problems(session, name, problems, self._forget_key()):
                summary.quarantined[reason] += 1
                logger.warning("quarantined", extra={"source": name, "reason": reason})
            outcomes = queue.enqueue(session, name, discoveries, forget_key=self._forget_key())
            if found.bookmark is not None:  # committed with the work it read, or not at all
                queue.save_bookmark(session, name, found.bookmark.value)
        summary.enriched += enrich_late(self.runtime, name, found.late_cdrs)
        committed = getattr(source, "committed", None)
        if committed is not None:  # the source may now forget (or delete) what it handed over
            committed()
        again = [o.discovery for o in outcomes if o.outcome is queue.Enqueued.ARCHIVED]
        seen: set[str] = set()
        for outcome in outcomes:
            ref = outcome.discovery.source_ref
            if outcome.outcome is queue.Enqueued.NEW and ref not in seen:
                seen.add(ref)
                continue
            if outcome.outcome in (queue.Enqueued.NEW, queue.Enqueued.QUEUED) and ref in seen:
                summary.duplicates += 1
                with transaction(self.runtime.sessions) as session:
                    queue.count_duplicate(session, name, ref)
        for discovery in again:
            self._acknowledge_redelivery(name, source, discovery, summary)

    def _known(self, source: str, refs: Collection[str]) -> dict[str, str]:
        return queue.known_states(
            self.runtime.sessions, source, refs, forget_key=self._forget_key()
        )

    def _acknowledge_redelivery(
        self, name: str, source: Source, discovery: Discovery, summary: IngestSummary
    ) -> None:
        """A recording the archive already holds is at the source again.

        Either the acknowledgement after archiving never happened (a crash),
        or the source delivered it twice. When its bytes are the ones that
        were archived, it is acknowledged now and counted as a duplicate;
        otherwise it is quarantined and left in place.
        """
        with self.runtime.sessions() as session:
            item = queue.find_item(session, name, discovery.source_ref, self._forget_key())
            archived_sha = (item.payload or {}).get("source_sha256")
        try:
            fetched = source.fetch(discovery, self.work_dir)
        except SourceError:
            return
        try:
            same = archived_sha is not None and source_digest(fetched) == archived_sha
        finally:
            release(fetched)
        if same:
            self._acknowledge(source, discovery, item.id)
            summary.duplicates += 1
            with transaction(self.runtime.sessions) as session:
                queue.count_duplicate(session, name, item.source_ref)
            logger.info("duplicate_acknowledged", extra={"work_item_id": str(item.id)})
            return
        with transaction(self.runtime.sessions) as session:
            added = queue.record_problem(
                session,
                name,
                Problem(
                    discovery.source_ref,
                    "conflicting_redelivery",
                    f"already archived as recording {item.recording_id}, but the source now "
                    "holds different bytes under the same reference",
                ),
            )
        if added:
            summary.quarantined["conflicting_redelivery"] += 1
