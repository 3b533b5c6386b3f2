"""Reading the audit log: the auditor's, through the API or the CLI, and itself audited.

One use case for both adapters: :func:`read_audit` decides who may
(``audit.read``), selects a page of entries in chain order with their
hashes, and appends an ``audit.read`` entry naming the reader, in the same
transaction. ``recarchive audit export`` pages through it up to the head it
saw first, so an export never chases the entries its own reading appends.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

from sqlalchemy import func, select

from recarchive.access.actors import Actor
from recarchive.access.audit import append_event, entry_content
from recarchive.access.interfaces import AccessContext
from recarchive.access.models import AuditEvent
from recarchive.access.policy import Action
from recarchive.catalogue.database import transaction

#: The most entries one page may hold.
PAGE_MAX = 1000


@dataclasses.dataclass(frozen=True)
class AuditQuery:
    """Which entries: at or after ``start``, before ``end``, by actor, action, recording."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None
    actor: str | None = None
    action: str | None = None
    recording_id: uuid.UUID | None = None


@dataclasses.dataclass(frozen=True)
class AuditPage:
    """Entries in chain order (``seq``, content, ``hash``, ``prev_hash``); ``next_cursor``
    is the last ``seq`` of this page when more follow, else None."""

    items: list[dict[str, Any]]
    next_cursor: int | None


def audit_head(runtime: AccessContext) -> int:
    """The ``seq`` of the newest entry (0 for an empty log)."""
    with runtime.sessions() as session:
        return int(session.scalar(select(func.coalesce(func.max(AuditEvent.seq), 0))) or 0)


def read_audit(
    runtime: AccessContext,
    actor: Actor,
    query: AuditQuery,
    *,
    cursor: int | None = None,
    limit: int = 100,
    through_seq: int | None = None,
    client_details: dict[str, Any] | None = None,
) -> AuditPage:
    """A page of entries after ``cursor`` (up to ``through_seq``), the read itself audited.

    Raises :class:`~recarchive.access.policy.Forbidden` unless ``actor`` may
    read the audit log.
    """
    actor.require(Action.AUDIT_READ)
    limit = max(1, min(limit, PAGE_MAX))
    statement = select(AuditEvent).order_by(AuditEvent.seq).limit(limit + 1)
    if cursor is not None:
        statement = statement.where(AuditEvent.seq > cursor)
    if through_seq is not None:
        statement = statement.where(AuditEvent.seq <= through_seq)
    if query.start is not None:
        statement = statement.where(AuditEvent.at >= query.start)
    if query.end is not None:
        statement = statement.where(AuditEvent.at < query.end)
    if query.actor:
        statement = statement.where(AuditEvent.actor == query.actor)
    if query.action:
        statement = statement.where(AuditEvent.action == query.action)
    if query.recording_id is not None:
        statement = statement.where(AuditEvent.recording_id == query.recording_id)
    with transaction(runtime.sessions) as session:
        events = list(session.scalars(statement))
        more = len(events) > limit
        events = events[:limit]
        items = [
            {"seq": e.seq, **entry_content(e), "hash": e.hash, "prev_hash": e.prev_hash}
            for e in events
        ]
        append_event(
            session,
            actor=actor.name,
            actor_role=actor.role_name,
            action="audit.read",
            recording_id=query.recording_id,
            client_addr=actor.client_addr,
            details={"entries": len(items), **(client_details or {})},
        )
    return AuditPage(items, events[-1].seq if more and events else None)
