"""A CDR row that arrives after its recording was archived from the file name alone.

A spool recording whose CDR row has not come within the source's
``cdr_wait_s`` is archived with what its name tells (``facts_from_name``),
as is a drop recording whose contact record has not come within
``record_wait_s`` (from its key). When the row (or record) arrives later the
source hands it over as a
:class:`~recarchive.ingest.interfaces.LateCdr`, and :func:`enrich_late`
gives the recording what the row tells, by the rules ingest applies to a
recording that came with its row (:func:`~recarchive.ingest.cataloguing.plan_recording`):
direction (when the name did not tell it), numbers, agent, queue, the call
it is a part of (``linked_call_id``, when it had none), customer,
reason codes, and the retention those decide. One transaction per
recording, with an audit entry (``recording.enriched``, actor
``system:ingest``) that names the fields changed, the old and new reason
codes and ``retain_until``, never a number, name or customer. The object is
retagged when its retention class may have changed (a held recording keeps
the held tag). A recording once enriched, or that came with its row, is not
touched again; one being deleted is left alone. Logs carry recording ids only.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from recarchive.access.audit import append_event
from recarchive.catalogue.database import lock_for_write, transaction, utcnow
from recarchive.catalogue.models import (
    CustomerMatch,
    Direction,
    ReasonSource,
    Recording,
    RecordingCandidate,
    RecordingReason,
    RecordingStatus,
)
from recarchive.catalogue.restrictions import recall_numbers
from recarchive.ingest.cataloguing import Plan, close_missing_report, plan_recording
from recarchive.ingest.interfaces import CallFacts, LateCdr
from recarchive.ingest.tagging import ReasonTagger
from recarchive.retention.policy import RetentionPolicy
from recarchive.retention.rules import retag
from recarchive.runtime import Runtime

logger = logging.getLogger(__name__)

#: Who enriches, in the audit log.
ACTOR = "system:ingest"
#: The audit action of an enrichment.
ACTION = "recording.enriched"
#: Call ids looked up per query.
_CHUNK = 500


@dataclasses.dataclass(frozen=True)
class _Rules:
    """What deciding a recording's facts needs, built once per call of :func:`enrich_late`."""

    runtime: Runtime
    source: str
    tagger: ReasonTagger
    policy: RetentionPolicy
    hash_key: str


def enrich_late(runtime: Runtime, source: str, lates: Sequence[LateCdr]) -> int:
    """Enrich the recordings of ``source`` archived from their name that ``lates`` belong to.

    Returns how many were enriched. Raises what the catalogue raises; what
    was committed before stays (each recording is its own transaction).
    """
    by_call = {late.call_id: late for late in lates}
    if not by_call:
        return 0
    found = _archived_from_name(runtime, source, list(by_call))
    if not found:
        return 0
    settings = runtime.settings
    rules = _Rules(
        runtime,
        source,
        ReasonTagger(settings.reasons),
        RetentionPolicy(settings.retention),
        settings.secret("identity_hash_key") or "",
    )
    enriched: list[Recording] = []
    for recording_id, call_id in found:
        with transaction(runtime.sessions) as session:
            recording = _enrich(session, rules, recording_id, by_call[call_id])
        if recording is not None:
            enriched.append(recording)
            logger.info("recording_enriched", extra={"recording_id": str(recording_id)})
    retag(runtime.sessions, runtime.store, settings.retention, enriched, utcnow())
    return len(enriched)


def _archived_from_name(
    runtime: Runtime, source: str, call_ids: list[str]
) -> list[tuple[uuid.UUID, str]]:
    """The active recordings of ``source`` archived from their name, among ``call_ids``."""
    found: list[tuple[uuid.UUID, str]] = []
    with runtime.sessions() as session:
        for start in range(0, len(call_ids), _CHUNK):
            rows = session.execute(
                select(Recording.id, Recording.call_id)
                .where(
                    Recording.source == source,
                    Recording.facts_from_name.is_(True),
                    Recording.status == RecordingStatus.ACTIVE,
                    Recording.call_id.in_(call_ids[start : start + _CHUNK]),
                )
                .order_by(Recording.started_at, Recording.id)
            )
            found.extend((row.id, row.call_id) for row in rows if row.call_id is not None)
    return found


def _enrich(
    session: Session, rules: _Rules, recording_id: uuid.UUID, late: LateCdr
) -> Recording | None:
    """Give one recording what its late row tells, in the caller's transaction.

    None when it is no longer a recording to enrich (enriched meanwhile, being
    deleted, gone).
    """
    lock_for_write(session)
    recording = session.get(Recording, recording_id, with_for_update=True)
    if (
        recording is None
        or not recording.facts_from_name
        or recording.status is not RecordingStatus.ACTIVE
    ):
        return None
    facts = late.facts
    if recording.direction is not Direction.UNKNOWN:
        # The name's type tells the direction first, as when the row comes in time.
        facts = dataclasses.replace(facts, direction=recording.direction)
    plan = plan_recording(
        session,
        rules.runtime.settings,
        rules.tagger,
        rules.policy,
        source=rules.source,
        facts=facts,
        hash_key=rules.hash_key,
    )
    before = _snapshot(recording)
    _apply(recording, facts, plan)
    decision = rules.policy.decide(
        started_at=recording.started_at,
        reasons=recording.reason_codes,
        queue=recording.queue,
        source=recording.source,
    )
    recording.retention_class = decision.retention_class
    recording.retain_until = decision.retain_until
    recording.retention_rule = decision.rule
    recording.facts_from_name = False
    after = _snapshot(recording)
    if recording.customer_id is None:
        recall_numbers(session, [plan.caller, plan.called], rules.hash_key)
    for call_id in {late.call_id, facts.call_id}:
        if call_id:
            close_missing_report(session, rules.source, call_id)
    append_event(
        session,
        actor=ACTOR,
        action=ACTION,
        recording_id=recording.id,
        details=_details(recording, before, after),
    )
    return recording


def _apply(recording: Recording, facts: CallFacts, plan: Plan) -> None:
    """The row's facts on the recording; a customer linked by staff stays linked."""
    recording.direction = facts.direction
    recording.caller_number = plan.caller
    recording.called_number = plan.called
    recording.agent = facts.agent
    recording.queue = facts.queue
    if recording.linked_call_id is None and facts.linked_call_id:
        recording.linked_call_id = facts.linked_call_id
    if recording.customer_match is not CustomerMatch.MANUAL:
        recording.customer_id = plan.match.customer_id
        recording.customer_match = plan.match.status
        wanted = set(plan.match.candidates)
        kept = [c for c in recording.candidates if c.customer_id in wanted]
        known = {c.customer_id for c in kept}
        recording.candidates = kept + [
            RecordingCandidate(customer_id=customer)
            for customer in plan.match.candidates
            if customer not in known
        ]
    # Codes staff set stay; the rules' codes are decided again.
    staff = [r for r in recording.reasons if r.assigned_by is ReasonSource.STAFF]
    by_rule = {r.code: r for r in recording.reasons if r.assigned_by is not ReasonSource.STAFF}
    staff_codes = {r.code for r in staff}
    recording.reasons = staff + [
        by_rule.get(code) or RecordingReason(code=code)
        for code in plan.reasons
        if code not in staff_codes
    ]


def _snapshot(recording: Recording) -> dict[str, Any]:
    return {
        "direction": recording.direction,
        "caller_number": recording.caller_number,
        "called_number": recording.called_number,
        "agent": recording.agent,
        "queue": recording.queue,
        "linked_call_id": recording.linked_call_id,
        "customer": (
            recording.customer_id,
            recording.customer_match,
            tuple(sorted(c.customer_id for c in recording.candidates)),
        ),
        "reasons": sorted(recording.reason_codes),
        "retain_until": recording.retain_until,
        "retention_rule": recording.retention_rule,
    }


def _details(
    recording: Recording, before: Mapping[str, Any], after: Mapping[str, Any]
) -> dict[str, Any]:
    """What the audit entry says: field names, codes, dates and rules; no personal data."""
    return {
        "recording_id": str(recording.id),
        "source": recording.source,
        "changed": sorted(field for field in before if before[field] != after[field]),
        "reasons": {"before": before["reasons"], "after": after["reasons"]},
        "retain_until": {
            "before": before["retain_until"].isoformat(),
            "after": after["retain_until"].isoformat(),
        },
        "retention_rule": {"before": before["retention_rule"], "after": after["retention_rule"]},
        "direction": {"before": before["direction"].value, "after": after["direction"].value},
    }
