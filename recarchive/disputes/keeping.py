"""A case's custody record, and how long a closed case's record is kept.

- :func:`custody`: every audit entry about the case's recordings and the
  case itself, oldest first (audited ``case.custody``); what an evidence
  package carries and the case page shows.
- :func:`purge_closed_cases`: a closed case past ``delete_after`` is
  deleted with its released hold (the hold's row and the recordings it
  named), leaving a :class:`~recarchive.disputes.models.CaseTombstone`
  and an audit entry ``case.delete``, neither with personal data. The
  nightly job runs it (:func:`purge_after_nightly_expiry`, subscribed to
  ``NIGHTLY_EXPIRY_DONE`` in ``recarchive/composition.py``).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, or_, select

from recarchive.access.actors import Actor
from recarchive.access.audit import AuditEntry, append_event
from recarchive.access.models import AuditEvent
from recarchive.access.policy import Action
from recarchive.catalogue.database import lock_for_write, transaction, truncate_journal, utcnow
from recarchive.disputes.cases import CaseKey, load_case
from recarchive.disputes.models import Case, CaseRecording, CaseStatus, CaseTombstone
from recarchive.retention.events import NightlyExpiryDone
from recarchive.retention.models import Hold
from recarchive.runtime import Runtime

logger = logging.getLogger(__name__)

#: The audit action of a case's deletion at the end of its keep period.
CASE_DELETE_ACTION = "case.delete"


def custody_condition(case_id: uuid.UUID, reference: str) -> ColumnElement[bool]:
    """SQL: the audit entry (``AuditEvent``) is about one of the case's recordings or the case."""
    linked = select(CaseRecording.recording_id).where(CaseRecording.case_id == case_id)
    return or_(AuditEvent.recording_id.in_(linked), AuditEvent.case_ref == reference)


def entry_dict(event: AuditEvent) -> dict[str, Any]:
    """One custody entry, with the hash that ties it to the audit chain."""
    return {
        "seq": event.seq,
        "at": event.at.isoformat(),
        "actor": event.actor,
        "actor_role": event.actor_role,
        "action": event.action,
        "recording_id": str(event.recording_id) if event.recording_id else None,
        "purpose": event.purpose,
        "case_ref": event.case_ref,
        "details": dict(event.details or {}),
        "hash": event.hash,
    }


def custody(runtime: Runtime, key: CaseKey, *, actor: Actor) -> list[dict[str, Any]]:
    """Every audit entry about the case's recordings and the case, oldest first.

    Audited ``case.custody`` (after the read: the entry is not in what it returns).
    """
    actor.require(Action.CASE_VIEW)
    with runtime.sessions() as session:
        case = load_case(session, key)
        case_id, reference = case.id, case.reference
        events = session.scalars(
            select(AuditEvent).where(custody_condition(case_id, reference)).order_by(AuditEvent.seq)
        )
        entries = [entry_dict(event) for event in events]
    runtime.audit.record(
        AuditEntry(
            actor=actor.name,
            actor_role=actor.role_name,
            action="case.custody",
            case_ref=reference,
            client_addr=actor.client_addr,
            details={"case_id": str(case_id), "entries": len(entries)},
        )
    )
    return entries


def purge_closed_cases(runtime: Runtime, now: dt.datetime | None = None) -> int:
    """Delete every closed case whose ``delete_after`` has come; return how many.

    Each leaves a tombstone and a ``case.delete`` audit entry (ids and counts
    only). Its hold goes with it: released when the case closed, it keeps
    nothing. A hold still in force (a case closed outside recarchive's own
    close) is left alone, and so is its case, until it is released.
    """
    now = now or utcnow()
    deleted = 0
    with transaction(runtime.sessions) as session:
        lock_for_write(session)
        due = list(
            session.scalars(
                select(Case)
                .where(Case.status == CaseStatus.CLOSED, Case.delete_after <= now)
                .order_by(Case.delete_after, Case.id)
                .with_for_update()
            )
        )
        for case in due:
            hold = session.get(Hold, case.hold_id) if case.hold_id else None
            if hold is not None and hold.released_at is None:
                logger.warning("case_hold_in_force", extra={"case_id": str(case.id)})
                continue
            assert case.closed_at is not None
            recordings = len(case.recordings)
            session.add(
                CaseTombstone(
                    case_id=case.id,
                    reference=case.reference,
                    kind=case.kind.value,
                    opened_at=case.opened_at,
                    closed_at=case.closed_at,
                    recordings=recordings,
                    deleted_at=now,
                )
            )
            append_event(
                session,
                actor="system",
                action=CASE_DELETE_ACTION,
                case_ref=case.reference,
                details={
                    "case_id": str(case.id),
                    "recordings": recordings,
                    "hold_id": str(hold.id) if hold else None,
                    "delete_after": case.delete_after.isoformat() if case.delete_after else None,
                },
            )
            if hold is not None:
                session.delete(hold)  # its hold_recordings rows go with it
            session.delete(case)  # its links, notes and exports go with it
            deleted += 1
    if deleted:
        truncate_journal(runtime.engine)  # no old image of the deleted rows stays behind
        logger.info("cases_deleted", extra={"cases": deleted})
    return deleted


def purge_after_nightly_expiry(event: NightlyExpiryDone) -> Mapping[str, int]:
    """The nightly run deletes the closed cases whose keep period ended by its moment."""
    return {"cases_deleted": purge_closed_cases(event.runtime, now=event.scheduled)}
