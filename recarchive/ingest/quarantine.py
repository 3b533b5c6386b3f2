"""Quarantine: input the pipeline could not archive, listed and retried by staff."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from recarchive.access.actors import Actor
from recarchive.access.audit import append_event
from recarchive.access.policy import Action
from recarchive.catalogue.database import transaction, utcnow
from recarchive.catalogue.intake import QuarantineEntry, WorkItem, WorkState
from recarchive.errors import RecArchiveError


class QuarantineEntryNotFound(RecArchiveError):
    """No open quarantine entry has that id."""


def list_entries(
    sessions: sessionmaker[Session],
    *,
    reason: str | None = None,
    source: str | None = None,
    include_resolved: bool = False,
    limit: int = 1000,
) -> list[QuarantineEntry]:
    """Quarantine entries, oldest first."""
    statement = select(QuarantineEntry).order_by(QuarantineEntry.created_at).limit(limit)
    if not include_resolved:
        statement = statement.where(QuarantineEntry.resolved_at.is_(None))
    if reason:
        statement = statement.where(QuarantineEntry.reason == reason)
    if source:
        statement = statement.where(QuarantineEntry.source == source)
    with sessions() as session:
        return list(session.scalars(statement))


def counts_by_reason(sessions: sessionmaker[Session]) -> dict[str, int]:
    """Open quarantine entries per reason."""
    with sessions() as session:
        rows = session.execute(
            select(QuarantineEntry.reason, func.count(QuarantineEntry.id))
            .where(QuarantineEntry.resolved_at.is_(None))
            .group_by(QuarantineEntry.reason)
        ).all()
        return {reason: int(count) for reason, count in sorted(rows)}


def retry_entry(
    sessions: sessionmaker[Session], entry_id: uuid.UUID, *, actor: Actor
) -> QuarantineEntry:
    """An admin closes the entry and puts its recording back in the queue (audited).

    A recording goes back to ``pending`` with its attempts reset; the next
    worker pass takes it again, after whatever was fixed (a codec allowed, a
    file replaced). A problem found by discovery (a CDR line, a missing
    recording) is closed and reported again by the next pass if it is still
    there. Raises :class:`~recarchive.access.policy.Forbidden` and
    :class:`QuarantineEntryNotFound`.
    """
    actor.require(Action.QUARANTINE_RETRY)
    now = utcnow()
    with transaction(sessions) as session:
        entry = session.get(QuarantineEntry, entry_id, with_for_update=True)
        if entry is None or entry.resolved_at is not None:
            raise QuarantineEntryNotFound(f"no open quarantine entry {entry_id}")
        entry.retried_at = now
        entry.resolved_at = now
        entry.resolution = "retried"
        if entry.work_item_id is not None:
            item = session.get(WorkItem, entry.work_item_id, with_for_update=True)
            if item is not None and item.state is WorkState.QUARANTINED:
                item.state = WorkState.PENDING
                item.attempts = 0
                item.lease_until = None
                item.claimed_by = None
        details = {
            "entry_id": str(entry.id),
            "reason": entry.reason,
            "source": entry.source,
            "requeued": entry.work_item_id is not None,
        }
        append_event(
            session,
            actor=actor.name,
            actor_role=actor.role_name,
            client_addr=actor.client_addr,
            action="quarantine.retry",
            details=details,
        )
        return entry
