"""The contract between the ingest pipeline and the telephony sources.

A source finds recordings (``discover``), hands one over as a local file
(``fetch``) and is told when the archive has it (``acknowledge``). The
pipeline does everything else: queueing, probing, tagging, storing,
cataloguing. A source never deletes anything before ``acknowledge``.

Each discovered recording is identified by ``source_ref``, unique within the
source and stable across passes: ``(source name, source_ref)`` is the
idempotency key of the whole pipeline.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from recarchive.catalogue.models import Direction
from recarchive.errors import (
    CatalogueError,
    KeyProviderUnavailable,
    RecArchiveError,
    StoreError,
)
from recarchive.media.interfaces import MediaToolFailed

#: Failures of the infrastructure, not of a recording (the store, the catalogue, the media
#: tools, the key provider): the item is released for a later attempt and the run waits.
INFRASTRUCTURE_FAILURES: tuple[type[RecArchiveError], ...] = (
    StoreError,
    CatalogueError,
    MediaToolFailed,
    KeyProviderUnavailable,
)


@dataclasses.dataclass(frozen=True)
class CallFacts:
    """What the telephony system says about a call (all optional but the start time).

    ``fields`` holds the raw values the reason rules look at: ``userfield``,
    ``ivr``, ``queue``, ``did``, ``dcontext``, ``agent`` and ``attribute:<name>``.
    Numbers are as the source wrote them; the pipeline normalises them.
    """

    started_at: dt.datetime
    call_id: str | None = None
    direction: Direction = Direction.UNKNOWN
    caller_number: str | None = None
    called_number: str | None = None
    agent: str | None = None
    queue: str | None = None
    fields: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: The facts come from the recording's file name alone (no CDR row matched it):
    #: a CDR row that arrives later may still enrich the archived recording.
    from_name: bool = False
    #: The call this recording is a part of (Asterisk's ``linkedid``, Amazon Connect's
    #: ``InitialContactId``): the recordings of a transferred call share it. None: unknown.
    linked_call_id: str | None = None

    def to_payload(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at.isoformat(),
            "call_id": self.call_id,
            "direction": self.direction.value,
            "caller_number": self.caller_number,
            "called_number": self.called_number,
            "agent": self.agent,
            "queue": self.queue,
            "fields": dict(self.fields),
            "from_name": self.from_name,
            "linked_call_id": self.linked_call_id,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> CallFacts:
        return cls(
            started_at=dt.datetime.fromisoformat(payload["started_at"]),
            call_id=payload.get("call_id"),
            direction=Direction(payload.get("direction", Direction.UNKNOWN.value)),
            caller_number=payload.get("caller_number"),
            called_number=payload.get("called_number"),
            agent=payload.get("agent"),
            queue=payload.get("queue"),
            fields=dict(payload.get("fields") or {}),
            from_name=bool(payload.get("from_name", False)),
            linked_call_id=payload.get("linked_call_id"),
        )


@dataclasses.dataclass(frozen=True)
class Discovery:
    """A recording found at the source, ready to be queued."""

    source_ref: str
    facts: CallFacts
    #: Extension that tells the format (``wav``, ``WAV``, ``ulaw``, ``mp3``...).
    extension: str
    #: Anything else the source needs to fetch or acknowledge it later (JSON-able).
    locator: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def to_payload(self) -> dict[str, Any]:
        """The discovery as JSON-able data, kept in the work item."""
        return {
            "facts": self.facts.to_payload(),
            "extension": self.extension,
            "locator": dict(self.locator),
        }

    @classmethod
    def from_payload(cls, source_ref: str, payload: Mapping[str, Any]) -> Discovery:
        return cls(
            source_ref=source_ref,
            facts=CallFacts.from_payload(payload["facts"]),
            extension=payload["extension"],
            locator=dict(payload.get("locator") or {}),
        )


@dataclasses.dataclass(frozen=True)
class Problem:
    """Input at the source that cannot become a recording: it goes to quarantine.

    ``source_ref`` identifies the input (a CDR line, a file); the same problem
    found again on a later pass is not recorded twice.
    """

    source_ref: str
    reason: str
    detail: str
    kept_at: str | None = None


@dataclasses.dataclass(frozen=True)
class Ignored:
    """Input at the source left alone by a configured rule: counted, never queued."""

    source_ref: str
    #: The rule that matched (a spool's ``ignore`` pattern).
    rule: str


@dataclasses.dataclass(frozen=True)
class Waiting:
    """Input at the source not taken this pass, on purpose: counted, taken on a later pass.

    A spool recording whose CDR row has not arrived yet waits up to the
    source's ``cdr_wait_s`` before it is archived from its file name; a drop
    recording waits ``record_wait_s`` for its contact record, then is archived
    from its key.
    """

    source_ref: str
    #: What it waits for (``cdr``, ``contact_record``; ``partner_leg``: a split leg's other leg).
    reason: str


@dataclasses.dataclass(frozen=True)
class LateCdr:
    """A CDR row (or a drop's contact record) read this pass that no recording waiting
    at the source matches any more.

    The recording of ``call_id`` may have been archived from its file name (or
    object key) before the row arrived: the pipeline enriches it with ``facts``
    (what the row alone tells), see :mod:`recarchive.ingest.enrichment`. A
    source that must know when that is done (to read a record only once, or
    delete it) has a ``committed()`` method, called after the pass's work is
    committed and its late rows applied.
    """

    call_id: str
    facts: CallFacts


@dataclasses.dataclass(frozen=True)
class Bookmark:
    """How far a source has read what it reads incrementally (a CDR table, say).

    Yielded by ``discover`` after everything it found; the pipeline commits it
    in the same transaction as the work items and problems of that pass, and
    hands it back to the source's ``restore_bookmark`` in the next process.
    """

    value: Mapping[str, Any]


#: Everything a source's ``discover`` may yield.
SourceItem = Discovery | Problem | Ignored | Waiting | LateCdr | Bookmark


@dataclasses.dataclass(frozen=True)
class Fetched:
    """A recording handed over as a local file, readable until ``release`` is called."""

    path: Path
    size: int
    #: True when the file is a temporary copy the pipeline may delete.
    temporary: bool
    #: The SHA-256 that stands for what the source delivered when ``path`` is not it
    #: (split legs merged into one file: see :func:`legs_digest`); None: ``path``'s own.
    digest: str | None = None
    #: The SHA-256 of each leg merged into ``path`` (``caller``, ``agent``), or of the
    #: lone leg archived alone; empty for an ordinary recording.
    legs: Mapping[str, str] = dataclasses.field(default_factory=dict)


class SourceError(RecArchiveError):
    """The source failed; the recording stays where it is and is retried later."""


class InputRejected(SourceError):
    """What the source holds cannot become a recording (a split leg that is empty, say).

    Waiting will not cure it: the item is quarantined under ``reason`` (a
    subclass's own, or the one given: a media error's), with ``kept_at``
    telling staff where the input stays.
    """

    reason: str

    def __init__(
        self, message: str | None = None, *, reason: str | None = None, kept_at: str | None = None
    ) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason
        self.kept_at = kept_at


class RecordingGone(InputRejected):
    """The recording is no longer at the source."""

    reason = "recording_gone"


def legs_digest(legs: Mapping[str, str]) -> str:
    """One SHA-256 for a call's split legs: of ``caller:<sha256>,agent:<sha256>``."""
    text = ",".join(f"{role}:{legs[role]}" for role in ("caller", "agent") if role in legs)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


class SourceUnavailable(SourceError):
    """Something the source needs cannot be reached for now (its CDR database, say).

    Waiting cures it: the source's discovery pauses and is tried again.
    """


class SourceMisconfigured(SourceError):
    """The source refuses this configuration (credentials, database, table).

    Waiting will not cure it: the operator must act.
    """


#: Answers which of these source references the archive already knows, and in what
#: state (``pending``, ``claimed``, ``done``, ``quarantined``). Sources whose listing
#: is expensive to enrich (one request per call for its details) use it to skip
#: recordings they have handed over before.
KnownRefs = Callable[[Collection[str]], Mapping[str, str]]


class Source(Protocol):
    """A telephony system the archive pulls recordings from."""

    #: The configured source name, stored with every recording.
    name: str

    def discover(self, now: dt.datetime, known: KnownRefs) -> Iterator[SourceItem]:
        """Everything at the source now: recordings to queue, problems to report, and
        what a configured rule leaves alone (:class:`Ignored`, counted only), what
        waits for a later pass (:class:`Waiting`, counted) and CDR rows that came
        after their recording (:class:`LateCdr`). A source that reads
        incrementally ends with its :class:`Bookmark`.

        Yields the same recordings again on every pass until acknowledged;
        the pipeline skips the ones it already has. A recording ``known`` as
        ``done`` that is still at the source should be yielded again (its
        facts may be minimal) so that the pipeline can acknowledge it; known
        ``pending``/``claimed``/``quarantined`` ones may be left out. Raises
        :class:`SourceError` when the source cannot be read at all
        (:class:`SourceUnavailable` when waiting may cure it).
        """

    def fetch(self, discovery: Discovery, work_dir: Path) -> Fetched:
        """Make the recording available as a local file (downloading into ``work_dir``).

        Raises :class:`RecordingGone` or :class:`SourceError`.
        """

    def acknowledge(self, discovery: Discovery) -> None:
        """The archive holds the recording: delete or move it at the source as configured.

        Idempotent: acknowledging a recording that is already gone is not an error.
        """
