"""What the catalogue says about an archived recording: decided before it is stored, written after.

:func:`plan_recording` decides, before the object is stored, who called
(numbers in E.164, the directory match), why (reason codes), until when it
is kept (the retention rule) and the tag its object carries (held when a
customer hold covers it). :func:`catalogue_recording` writes the recording's
row from that plan once the object is stored, in the caller's transaction,
only while this worker still holds the work item's claim.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from sqlalchemy import update
from sqlalchemy.orm import Session

from recarchive.catalogue.data_keys import keep_data_key
from recarchive.catalogue.database import utcnow
from recarchive.catalogue.directory import CallerMatch, match_caller
from recarchive.catalogue.identity import try_normalise_phone
from recarchive.catalogue.intake import QuarantineEntry, WorkItem, WorkState
from recarchive.catalogue.models import Direction, Recording, RecordingCandidate, RecordingReason
from recarchive.catalogue.restrictions import recall_numbers
from recarchive.config import Settings
from recarchive.ingest import queue
from recarchive.ingest.interfaces import CallFacts
from recarchive.ingest.storing import Sealing
from recarchive.ingest.tagging import ReasonTagger
from recarchive.media.interfaces import AudioInfo
from recarchive.retention.policy import RetentionDecision, RetentionPolicy
from recarchive.retention.rules import customers_held, expected_tag


@dataclasses.dataclass(frozen=True)
class Plan:
    """What the catalogue will say about a recording, decided before it is stored."""

    caller: str | None
    called: str | None
    match: CallerMatch
    reasons: list[str]
    retention: RetentionDecision
    #: Object tag: the retention class, or the held class under a customer hold.
    tag_class: str


@dataclasses.dataclass(frozen=True)
class Stored:
    """The object as stored: key, container, size, checksums, and its audio's facts."""

    key: str
    extension: str
    size: int
    sha256: str
    #: SHA-256 of the bytes as the source delivered them (differs when transcoded).
    source_sha256: str
    info: AudioInfo
    #: The wrapped data key and header of an encrypted object; None for plaintext.
    sealing: Sealing | None = None
    #: SHA-256 of each split leg (``caller``, ``agent``) the recording was merged from,
    #: or of the lone leg it is; empty for an ordinary recording.
    legs: Mapping[str, str] = dataclasses.field(default_factory=dict)


def plan_recording(
    session: Session,
    settings: Settings,
    tagger: ReasonTagger,
    policy: RetentionPolicy,
    *,
    source: str,
    facts: CallFacts,
    hash_key: str,
) -> Plan:
    """Numbers, customer, reasons, retention and object tag of a call about to be stored."""
    region = settings.ingest.default_region
    caller = try_normalise_phone(facts.caller_number or "", region=region)
    called = try_normalise_phone(facts.called_number or "", region=region)
    customer_number = called if facts.direction is Direction.OUTBOUND else caller
    reasons = tagger.reasons_for(facts)
    retention = policy.decide(
        started_at=facts.started_at, reasons=reasons, queue=facts.queue, source=source
    )
    match = match_caller(session, customer_number, hash_key=hash_key)
    held = customers_held(session, match.candidates, utcnow())
    tag_class = expected_tag(settings.retention, retention.rule, held=held)
    return Plan(caller, called, match, reasons, retention, tag_class)


def catalogue_recording(
    session: Session,
    item: WorkItem,
    worker: str,
    facts: CallFacts,
    plan: Plan,
    decoded: AudioInfo,
    stored: Stored,
    *,
    hash_key: str,
) -> bool:
    """Write the recording's row and complete its work item; False when the claim was lost."""
    current = session.get(WorkItem, item.id, with_for_update=True)
    if current is None or current.state is not WorkState.CLAIMED or current.claimed_by != worker:
        return False
    match = plan.match
    recording = Recording(
        id=item.id,
        source=item.source,
        source_ref=item.source_ref,
        call_id=facts.call_id,
        started_at=facts.started_at,
        duration_ms=decoded.duration_ms,
        direction=facts.direction,
        caller_number=plan.caller,
        called_number=plan.called,
        agent=facts.agent,
        queue=facts.queue,
        customer_id=match.customer_id,
        customer_match=match.status,
        object_key=stored.key,
        format=stored.extension,
        codec=stored.info.codec,
        channels=stored.info.channels,
        sample_rate=stored.info.sample_rate,
        size_bytes=stored.size,
        sha256=stored.sha256,
        retention_class=plan.retention.retention_class,
        retain_until=plan.retention.retain_until,
        retention_rule=plan.retention.rule,
        facts_from_name=facts.from_name,
        caller_leg_sha256=stored.legs.get("caller"),
        agent_leg_sha256=stored.legs.get("agent"),
        linked_call_id=facts.linked_call_id,
    )
    recording.reasons = [RecordingReason(code=code) for code in plan.reasons]
    recording.candidates = [
        RecordingCandidate(customer_id=customer) for customer in match.candidates
    ]
    session.add(recording)
    if stored.sealing is not None:
        keep_data_key(session, recording, stored.sealing.wrapped, stored.sealing.header)
    if match.customer_id is None:
        recall_numbers(session, [plan.caller, plan.called], hash_key)
    queue.complete(current, item.id)
    current.payload = {**current.payload, "source_sha256": stored.source_sha256}
    if facts.call_id:
        close_missing_report(session, item.source, facts.call_id)
    return True


def close_missing_report(session: Session, source: str, call_id: str) -> None:
    """The recording of a call reported as missing is archived: settle that report."""
    session.execute(
        update(QuarantineEntry)
        .where(
            QuarantineEntry.source == source,
            QuarantineEntry.source_ref == f"call:{call_id}",
            QuarantineEntry.reason == "cdr_without_recording",
            QuarantineEntry.resolved_at.is_(None),
        )
        .values(resolved_at=utcnow(), resolution="recording_arrived")
        .execution_options(synchronize_session=False)
    )
