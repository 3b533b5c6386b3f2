"""The ingest pipeline: discover, queue, then for each recording claim, probe,
validate, tag, (transcode), checksum, store, catalogue, acknowledge.

Every step is idempotent, keyed by ``(source, source_ref)``:

- the work item's id is the recording's id, and the object key derives from
  it, so a re-run after a crash rewrites the same object instead of leaving
  an orphan;
- the catalogue row and the work item's ``done`` state are committed in one
  transaction, only after the store has confirmed size and SHA-256;
- the source is acknowledged (file deleted or moved, remote deleted) only
  after that commit, and after checking that the catalogue is still the one
  the process opened (not deleted or replaced under it); a crash before the
  acknowledgement is repaired on the next pass, which finds the recording
  archived and acknowledges it then, once the source's bytes are proven to
  be the archived ones.

Bad input goes to quarantine with a specific reason and the line goes on.
Logs carry work-item ids and object keys, never numbers or names.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import logging
import uuid
from collections.abc import Callable, Collection, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from recarchive.catalogue.database import transaction, utcnow
from recarchive.catalogue.intake import WorkItem
from recarchive.catalogue.models import Recording
from recarchive.errors import CatalogueError, CatalogueReplaced, RecArchiveError
from recarchive.ingest import queue
from recarchive.ingest.cataloguing import Plan, Stored, catalogue_recording, plan_recording
from recarchive.ingest.discoverer import Discoverer
from recarchive.ingest.files import (
    CONTENT_TYPES,
    object_key,
    release,
    sha256_file,
    source_digest,
    stored_extension,
    worker_name,
)
from recarchive.ingest.grouping import CommitGroup, StoredRecording
from recarchive.ingest.interfaces import (
    INFRASTRUCTURE_FAILURES,
    Discovery,
    Fetched,
    InputRejected,
    Source,
    SourceError,
)
from recarchive.ingest.leases import LeaseKeeper, OwedReleases
from recarchive.ingest.storing import store_audio
from recarchive.ingest.summary import IngestSummary, count_outcome
from recarchive.ingest.tagging import ReasonTagger
from recarchive.media.formats import canonical_codecs
from recarchive.media.interfaces import (
    DEFAULT_ALLOWED_CODECS,
    AudioInfo,
    MediaError,
    MediaToolFailed,
    StillBeingWritten,
)
from recarchive.media.probe import probe_recording
from recarchive.media.transcode import transcode_to_opus
from recarchive.private_files import make_private_dir
from recarchive.retention.policy import RetentionPolicy
from recarchive.retention.rules import CLASS_TAG, retag_held_since_planned
from recarchive.runtime import Runtime

logger = logging.getLogger(__name__)

#: Shortest wait before a deferred recording (still being written) is looked at again.
_RECHECK_S = 30.0


class Pipeline:
    """Runs discovery and work items for the configured sources."""

    def __init__(self, runtime: Runtime, sources: Mapping[str, Source]) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.sources = dict(sources)
        self.tagger = ReasonTagger(self.settings.reasons)
        self.policy = RetentionPolicy(self.settings.retention)
        self.allowed_codecs = canonical_codecs(
            self.settings.audio.allowed_codecs or DEFAULT_ALLOWED_CODECS
        )
        self.worker = worker_name()
        self.owed = OwedReleases(self.worker)
        self.work_dir = self.settings.work_dir
        make_private_dir(self.work_dir)
        #: The clock of the item in hand (tests and operators may simulate it).
        self._now = utcnow()
        #: False once an acknowledgement found the catalogue gone: the rest of the group waits.
        self._acknowledging = True
        self.discoverer = Discoverer(
            runtime, self.sources, self.work_dir, lambda: self._forget_key, self._acknowledge
        )

    # --- discovery ---------------------------------------------------------

    def discover(self, now: dt.datetime | None = None) -> IngestSummary:
        """Queue what every source holds now and record the problems found there."""
        return self.discoverer.discover(now or utcnow())

    @functools.cached_property
    def _forget_key(self) -> str:
        """The identity-hash key: directory phone hashes and forgotten work items."""
        return self.settings.secret("identity_hash_key") or ""

    # --- work items --------------------------------------------------------

    def process_next(self, now: dt.datetime | None = None) -> tuple[str, WorkItem] | None:
        """Claim and process one work item, committed on its own; None when nothing is due.

        Returns the outcome (``archived``, ``duplicate``, ``deferred``,
        ``retry`` or ``quarantined:<reason>``) and the item. Raises
        one of :data:`~recarchive.ingest.interfaces.INFRASTRUCTURE_FAILURES` when the infrastructure
        fails; the item is then released for a later attempt.
        """
        taken = self._take_next(now)
        if isinstance(taken, StoredRecording):
            return self._commit([taken])[0]
        return taken

    def _take_next(
        self, now: dt.datetime | None = None, waiting: Collection[uuid.UUID] = ()
    ) -> tuple[str, WorkItem] | StoredRecording | None:
        """Claim and process one work item: its outcome, or its stored recording to commit.

        ``waiting``: the claims of recordings stored before, awaiting their group's commit
        (their leases are renewed while this one is worked on).
        """
        now = now or utcnow()
        self._now = now
        with transaction(self.runtime.sessions) as session:
            item = queue.claim(
                session,
                self.worker,
                now=now,
                lease_s=self.settings.ingest.lease_s,
                sources=list(self.sources),
            )
        if item is None:
            return None
        lease_s = self.settings.ingest.lease_s
        try:
            with LeaseKeeper(self.runtime.sessions, item.id, self.worker, lease_s, waiting=waiting):
                outcome = self._process(item)
        except CatalogueReplaced:
            raise  # nothing more is written to a catalogue that is not the one opened
        except INFRASTRUCTURE_FAILURES as exc:
            self._release_after(item, exc, now)
            raise
        return outcome if isinstance(outcome, StoredRecording) else (outcome, item)

    def _commit(self, group: list[StoredRecording]) -> list[tuple[str, WorkItem]]:
        """Catalogue the stored recordings in one transaction, then acknowledge each to its source.

        A commit that fails on the infrastructure releases every item of the
        group (their objects are stored again on the next attempt) and raises.
        """
        try:
            # One flush at the commit: the group's rows go as batched inserts.
            with transaction(self.runtime.sessions) as session, session.no_autoflush:
                committed = [
                    catalogue_recording(
                        session,
                        waiting.item,
                        self.worker,
                        waiting.discovery.facts,
                        waiting.plan,
                        waiting.decoded,
                        waiting.stored,
                        hash_key=self._forget_key,
                    )
                    for waiting in group
                ]
        except CatalogueReplaced:
            raise
        except INFRASTRUCTURE_FAILURES as exc:
            for waiting in group:
                self._release_after(waiting.item, exc, waiting.now)
            raise
        retention = self.settings.retention
        untagged = [
            waiting.item.id
            for waiting, ok in zip(group, committed, strict=True)
            if ok and waiting.plan.tag_class != retention.held_class
        ]
        # The group is archived from here on: a catalogue failing now costs the
        # acknowledgements (the next pass makes them), never the outcomes.
        try:
            store, sessions = self.runtime.store, self.runtime.sessions
            retag_held_since_planned(sessions, store, retention, untagged, utcnow())
        except CatalogueReplaced:
            raise
        except (CatalogueError, SQLAlchemyError) as exc:
            logger.warning("held_tags_not_checked", extra={"error": type(exc).__name__})
        self._acknowledging = True
        return [self._archived(waiting, ok) for waiting, ok in zip(group, committed, strict=True)]

    def _archived(self, waiting: StoredRecording, committed: bool) -> tuple[str, WorkItem]:
        item, key = waiting.item, waiting.stored.key
        if not committed:
            logger.warning("lease_lost", extra={"work_item_id": str(item.id)})
            return "retry", item
        if self._acknowledging:
            try:
                self._acknowledge(waiting.source, waiting.discovery, item.id)
            except CatalogueReplaced:
                raise
            except CatalogueError as exc:
                # Archived, not acknowledged: the next discovery finds it at the source and
                # acknowledges it then. The rest of the group waits for that too.
                self._acknowledging = False
                extra = {"work_item_id": str(item.id), "error": exc.message}
                logger.warning("acknowledge_deferred", extra=extra)
        logger.info(
            "archived",
            extra={"work_item_id": str(item.id), "recording_id": str(item.id), "object_key": key},
        )
        item.payload = {
            **item.payload,
            "bytes_in": waiting.bytes_in,
            "bytes_out": waiting.stored.size,
        }
        return "archived", item

    def _release_after(self, item: WorkItem, exc: RecArchiveError, now: dt.datetime) -> None:
        """Put ``item`` back after an infrastructure failure, or owe it until the catalogue is back.

        A catalogue that failed costs the recording no attempt: it was not its fault.
        """
        error = exc.message

        def change(current: WorkItem) -> None:
            queue.release_for_retry(current, now=now, error=error)
            if isinstance(exc, CatalogueError):
                current.attempts = max(0, current.attempts - 1)

        try:
            self._finish(item, change)
        except (RecArchiveError, SQLAlchemyError) as failed:
            self.owed.owe(item.id, failed)

    def release_owed(self) -> int:
        """Put back the claims this worker could not release during an outage."""
        return self.owed.pay(self.runtime.sessions)

    def _process(self, item: WorkItem) -> StoredRecording | str:
        label = f"work item {item.id}"
        source = self.sources[item.source]
        discovery = Discovery.from_payload(item.source_ref, item.payload)
        with self.runtime.sessions() as session:
            existing = session.scalar(
                select(Recording.id).where(
                    Recording.source == item.source, Recording.source_ref == item.source_ref
                )
            )
        if existing is not None:
            self._finish(item, lambda i: queue.complete(i, existing))
            self._acknowledge(source, discovery, item.id)
            return "duplicate"
        try:
            fetched = source.fetch(discovery, self.work_dir)
        except InputRejected as exc:  # RecordingGone among them
            return self._quarantine(item, exc.reason, exc.message, exc.kept_at)
        except SourceError as exc:
            return self._retry_or_quarantine(item, "fetch_failed", exc.message)
        try:
            return self._archive(item, source, discovery, fetched, label)
        finally:
            release(fetched)

    def _admit(
        self,
        item: WorkItem,
        source: Source,
        discovery: Discovery,
        fetched: Fetched,
        label: str,
        kept_at: str | None,
    ) -> AudioInfo | str:
        """The decoded audio's facts, or the outcome that stops here (too large, unsettled,
        not audio: quarantined or deferred)."""
        limit = self.settings.ingest.max_size_mb * 1024 * 1024
        if fetched.size > limit:
            maximum = self.settings.ingest.max_size_mb
            detail = f"{fetched.size} bytes, more than ingest.max_size_mb = {maximum}"
            return self._quarantine(item, "too_large", detail, kept_at)
        unsettled = getattr(source, "unsettled_locator", None)
        locator = unsettled(discovery, self._now) if unsettled is not None else None
        if locator is not None:
            return self._defer(item, "file changed since it was discovered", locator=locator)
        try:
            return probe_recording(
                fetched.path,
                extension=discovery.extension,
                allowed_codecs=self.allowed_codecs,
                label=label,
                timeout_s=self.settings.audio.decode_timeout_s,
            )
        except StillBeingWritten as exc:
            return self._defer(item, exc.message)
        except MediaError as exc:
            if isinstance(exc, MediaToolFailed):
                raise
            return self._quarantine(item, exc.reason, exc.message, kept_at)

    def _archive(
        self, item: WorkItem, source: Source, discovery: Discovery, fetched: Fetched, label: str
    ) -> StoredRecording | str:
        kept_at = None if fetched.temporary else str(fetched.path)
        admitted = self._admit(item, source, discovery, fetched, label, kept_at)
        if isinstance(admitted, str):
            return admitted
        info, audio = admitted, self.settings.audio
        with contextlib.ExitStack() as cleanup:
            sha: str | None
            if audio.store_format == "opus":
                source_sha = source_digest(fetched)
                stored_path = self.work_dir / f"{item.id}.opus.ogg"
                cleanup.callback(stored_path.unlink, missing_ok=True)
                try:
                    stored_info = transcode_to_opus(
                        fetched.path,
                        stored_path,
                        bitrate_kbps=audio.opus_bitrate_kbps,
                        extension=discovery.extension,
                        label=label,
                        timeout_s=audio.decode_timeout_s,
                    )
                except MediaError as exc:
                    if isinstance(exc, MediaToolFailed):
                        raise
                    return self._quarantine(item, exc.reason, exc.message, kept_at)
                extension, sha = "ogg", sha256_file(stored_path)
            else:
                # The store hashes the bytes as it reads them to send them, and the
                # server checks them against that hash: one pass over the file.
                stored_path, stored_info, sha = fetched.path, info, None
                extension = stored_extension(discovery.extension)
            plan = self._plan(item, discovery)
            key = object_key(discovery.facts.started_at, item.id, extension)
            kept = store_audio(
                self.runtime,
                item.id,
                key,
                stored_path,
                sha256=sha,
                content_type=CONTENT_TYPES.get(extension, "application/octet-stream"),
                tags={CLASS_TAG: plan.tag_class},
            )
            if sha is None:
                source_sha = fetched.digest or kept.sha256
            stored_as = Stored(
                key, extension, kept.size, kept.sha256, source_sha, stored_info, kept.sealing
            )
            stored_as = dataclasses.replace(stored_as, legs=fetched.legs)
        return StoredRecording(
            item, source, discovery, plan, info, stored_as, fetched.size, self._now
        )

    def _plan(self, item: WorkItem, discovery: Discovery) -> Plan:
        with self.runtime.sessions() as session:
            return plan_recording(
                session,
                self.settings,
                self.tagger,
                self.policy,
                source=item.source,
                facts=discovery.facts,
                hash_key=self._forget_key,
            )

    # --- outcomes ------------------------------------------------------------

    def _acknowledge(self, source: Source, discovery: Discovery, item_id: uuid.UUID) -> None:
        """Tell the source the recording is archived; a failure is retried next pass.

        The recording is safe in the archive either way: the next discovery
        finds it at the source again and acknowledges it then. First the
        catalogue its row was committed to must still be the one this process
        opened: :class:`~recarchive.errors.CatalogueReplaced` otherwise, and
        the source keeps the recording.
        """
        self.runtime.check_catalogue(reread=True)
        try:
            source.acknowledge(discovery)
        except (SourceError, OSError) as exc:
            logger.warning(
                "acknowledge_failed",
                extra={"work_item_id": str(item_id), "error": type(exc).__name__},
            )

    def _finish(self, item: WorkItem, change: Callable[[WorkItem], None]) -> None:
        with transaction(self.runtime.sessions) as session:
            current = session.get(WorkItem, item.id, with_for_update=True)
            if current is not None and current.claimed_by == self.worker:
                change(current)

    def _quarantine(self, item: WorkItem, reason: str, detail: str, kept_at: str | None) -> str:
        with transaction(self.runtime.sessions) as session:
            current = session.get(WorkItem, item.id, with_for_update=True)
            if current is None or current.claimed_by != self.worker:
                return "retry"
            queue.quarantine(session, current, reason=reason, detail=detail, kept_at=kept_at)
        logger.warning("quarantined", extra={"work_item_id": str(item.id), "reason": reason})
        return f"quarantined:{reason}"

    def _defer(self, item: WorkItem, note: str, locator: dict[str, Any] | None = None) -> str:
        """Back to the queue for a settle period; ``locator`` refreshes what the source saw."""
        # A file still being written is looked at again after a while, not in a tight loop.
        until = self._now + dt.timedelta(seconds=max(self.settings.ingest.settle_s, _RECHECK_S))

        def change(current: WorkItem) -> None:
            queue.defer(current, until=until, note=note)
            if locator is not None:
                current.payload = {**current.payload, "locator": locator}

        self._finish(item, change)
        logger.info("deferred", extra={"work_item_id": str(item.id)})
        return "deferred"

    def _retry_or_quarantine(self, item: WorkItem, reason: str, detail: str) -> str:
        if item.attempts >= self.settings.ingest.max_attempts:
            return self._quarantine(
                item, reason, f"{detail} (after {item.attempts} attempts)", None
            )
        self._finish(item, lambda i: queue.release_for_retry(i, now=self._now, error=detail))
        return "retry"

    # --- loops ----------------------------------------------------------------

    def drain(
        self,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        on_item: Callable[[str], None] | None = None,
        summary: IngestSummary | None = None,
    ) -> IngestSummary:
        """Process due work items until none is left (or ``should_stop`` says so).

        Counts go into ``summary`` as they happen, so a caller still has them
        when an infrastructure error ends the drain early.
        """
        summary = summary if summary is not None else IngestSummary()
        group = CommitGroup(self.settings.ingest.group_commit)

        def count(outcomes: list[tuple[str, WorkItem]]) -> None:
            for outcome, item in outcomes:
                count_outcome(summary, outcome, item)
                if on_item is not None:
                    on_item(outcome)

        try:
            while not should_stop():
                taken = self._take_next(waiting=group.item_ids())
                if taken is None:
                    break
                if isinstance(taken, StoredRecording):
                    group.add(taken)
                else:
                    count([taken])
                if group.due():
                    count(self._commit(group.take()))
        except CatalogueReplaced:
            raise  # nothing more is written to a catalogue that is not the one opened
        except BaseException:
            # What is stored is committed before the failure ends the drain; a commit
            # that fails too releases its items and raises in its place.
            if len(group):
                count(self._commit(group.take()))
            raise
        if len(group):
            count(self._commit(group.take()))
        return summary
