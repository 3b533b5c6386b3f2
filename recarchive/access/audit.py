"""The access audit log: append-only and hash-chained.

Every entry stores the hash of the entry before it and its own hash over its
content and that link, so editing, removing or reordering an entry breaks the
chain at that point, which :func:`verify_chain` reports. Entries carry ids,
roles, purposes and case references, never names, numbers or identity codes
of the people in the recordings.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from recarchive.access.models import AuditEvent
from recarchive.catalogue.database import utcnow

GENESIS_HASH = "0" * 64
_ADVISORY_LOCK_KEY = 0x72656361  # "reca": serialises appends on PostgreSQL


def entry_content(event: AuditEvent) -> dict[str, Any]:
    """What an entry's hash covers: its content and the hash of the entry before it.

    Also the form ``recarchive audit export`` writes, so that an auditor can
    recompute every hash from the export alone.
    """
    return {
        "prev_hash": event.prev_hash,
        "at": event.at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "actor": event.actor,
        "actor_role": event.actor_role,
        "action": event.action,
        "recording_id": str(event.recording_id) if event.recording_id else None,
        "purpose": event.purpose,
        "case_ref": event.case_ref,
        "client_addr": event.client_addr,
        "details": event.details,
    }


def entry_hash(event: AuditEvent) -> str:
    """SHA-256 over the canonical JSON form of :func:`entry_content`."""
    canonical = json.dumps(
        entry_content(event),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def append_event(
    session: Session,
    *,
    actor: str,
    action: str,
    actor_role: str | None = None,
    recording_id: uuid.UUID | None = None,
    purpose: str | None = None,
    case_ref: str | None = None,
    client_addr: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append an entry in the caller's transaction (so it commits with the change it records).

    Appenders are serialised before the chain's head is read, so the chain
    never forks: on PostgreSQL by a transaction-scoped advisory lock; on
    SQLite by taking the database's write lock first (a no-op UPDATE). A
    plain SELECT would not do there: the driver runs it outside the write
    transaction, so two appenders could read the same head.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
    elif dialect == "sqlite":
        session.execute(text("UPDATE audit_events SET seq = seq WHERE 0 = 1"))
    previous = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1))
    event = AuditEvent(
        at=utcnow(),
        actor=actor,
        actor_role=actor_role,
        action=action,
        recording_id=recording_id,
        purpose=purpose,
        case_ref=case_ref,
        client_addr=client_addr,
        details=dict(details or {}),
        prev_hash=previous or GENESIS_HASH,
    )
    event.hash = entry_hash(event)
    session.add(event)
    session.flush()
    return event


@dataclasses.dataclass(frozen=True)
class ChainReport:
    entries: int
    #: Sequence number of the first entry that does not fit the chain, if any.
    broken_at: int | None
    problem: str | None

    @property
    def intact(self) -> bool:
        return self.broken_at is None


def verify_chain(sessions: sessionmaker[Session], *, batch: int = 5000) -> ChainReport:
    """Walk the whole log in order and check every link and every entry's hash."""
    expected_prev = GENESIS_HASH
    count = 0
    last_seq = 0
    with sessions() as session:
        while True:
            events = session.scalars(
                select(AuditEvent)
                .where(AuditEvent.seq > last_seq)
                .order_by(AuditEvent.seq)
                .limit(batch)
            ).all()
            if not events:
                return ChainReport(entries=count, broken_at=None, problem=None)
            for event in events:
                count += 1
                last_seq = event.seq
                if event.prev_hash != expected_prev:
                    return ChainReport(count, event.seq, "link to the previous entry is broken")
                recomputed = entry_hash(event)
                if recomputed != event.hash:
                    return ChainReport(count, event.seq, "entry content does not match its hash")
                expected_prev = event.hash
            session.expunge_all()
