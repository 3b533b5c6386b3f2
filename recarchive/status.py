"""The installation at a glance: the figures ``recarchive status`` shows an operator.

What is archived, what waits, what was quarantined and why, when each
source last delivered, how last night's run went and when the next one is,
open holds and data-subject requests, the audit log and its newest anchor,
whether new recordings are encrypted and how many are, and whether the
catalogue and the store answer. Counts and times only:
nothing here names a caller.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recarchive.access.anchoring import AnchorInvalid, newest_anchor
from recarchive.access.models import AuditEvent
from recarchive.catalogue.database import describe_url, utcnow
from recarchive.catalogue.intake import WorkItem, WorkState
from recarchive.catalogue.models import Recording
from recarchive.catalogue.revision import require_current_schema
from recarchive.catalogue.services import summarise
from recarchive.errors import RecArchiveError
from recarchive.ingest.quarantine import counts_by_reason
from recarchive.privacy.models import RequestStatus, SubjectRequest
from recarchive.retention.models import Hold
from recarchive.retention.tasks import NIGHTLY_ACTION, nightly_state
from recarchive.runtime import Runtime
from recarchive.storage.services import describe_store


@dataclasses.dataclass(frozen=True)
class SourceStatus:
    name: str
    last_archived_at: dt.datetime | None
    #: How long since this source's newest recording was archived.
    lag_s: float | None
    waiting: int


@dataclasses.dataclass(frozen=True)
class NightlyStatus:
    #: The run due most recently, when it finished (None: not yet), and what it did.
    scheduled: dt.datetime
    done_at: dt.datetime | None
    report: dict[str, Any]
    following: dt.datetime


@dataclasses.dataclass(frozen=True)
class AuditStatus:
    entries: int
    head_seq: int
    anchor_seq: int | None
    anchor_at: dt.datetime | None
    #: Entries after the newest anchor (not yet anchored), or why anchors could not be read.
    unanchored: int | None
    anchor_problem: str | None


@dataclasses.dataclass(frozen=True)
class EncryptionStatus:
    #: New recordings are stored encrypted (``encryption.enabled``).
    enabled: bool
    #: The keeper of the key-encryption keys ("file", "pkcs11"); None when disabled.
    provider: str | None
    #: Recordings stored encrypted, and in plaintext (from before it was enabled).
    encrypted: int
    plaintext: int


@dataclasses.dataclass(frozen=True)
class InstallationStatus:
    at: dt.datetime
    catalogue: str
    schema: str
    store: str
    store_ok: bool
    store_problem: str | None
    recordings: int
    bytes_stored: int
    customers: int
    waiting: int
    claimed: int
    quarantined: dict[str, int]
    sources: list[SourceStatus]
    nightly: NightlyStatus
    open_holds: int
    open_requests: int
    audit: AuditStatus
    encryption: EncryptionStatus

    @property
    def work_remains(self) -> bool:
        """Something waits for the pipeline or for a person."""
        return bool(self.waiting or self.claimed or self.quarantined or self.open_requests)

    def as_dict(self) -> dict[str, Any]:
        figures: dict[str, Any] = _jsonable(dataclasses.asdict(self))
        return figures | {"work_remains": self.work_remains}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def installation_status(runtime: Runtime, *, now: dt.datetime | None = None) -> InstallationStatus:
    """Every figure of :class:`InstallationStatus`, read now.

    Raises what reaching the catalogue raises (it is the one thing status
    cannot do without); a store or anchor sink that does not answer is
    reported in the status instead.
    """
    now = now or utcnow()
    schema = require_current_schema(runtime.engine)
    held = summarise(runtime.engine)
    quarantined = counts_by_reason(runtime.sessions)
    with runtime.sessions() as session:
        counts = _catalogue_counts(session)
        state = nightly_state(runtime, now=now)
        report: dict[str, Any] = {}
        if state.done_at is not None:
            last_run = session.scalar(
                select(AuditEvent.details)
                .where(AuditEvent.action == NIGHTLY_ACTION, AuditEvent.at >= state.scheduled)
                .order_by(AuditEvent.seq.desc())
                .limit(1)
            )
            report = dict(last_run or {})
    last_by_source, waiting_by_source = counts["last_by_source"], counts["waiting_by_source"]
    names = [source.name for source in runtime.settings.sources]
    names += sorted(set(last_by_source) - set(names))  # sources no longer configured
    sources = []
    for name in names:
        last = last_by_source.get(name)
        lag = (now - last).total_seconds() if last is not None else None
        sources.append(SourceStatus(name, last, lag, int(waiting_by_source.get(name, 0))))
    store_problem = None
    try:
        runtime.store.check()
    except RecArchiveError as exc:
        store_problem = exc.message
    states = counts["states"]
    settings = runtime.settings.encryption
    encryption = EncryptionStatus(
        enabled=settings.enabled,
        provider=settings.provider if settings.enabled else None,
        encrypted=counts["encrypted"],
        plaintext=max(held.recordings - counts["encrypted"], 0),
    )
    return InstallationStatus(
        at=now,
        catalogue=describe_url(runtime.engine),
        schema=schema,
        store=describe_store(runtime.settings),
        store_ok=store_problem is None,
        store_problem=store_problem,
        recordings=held.recordings,
        bytes_stored=held.bytes_stored,
        customers=held.customers,
        waiting=int(states.get(WorkState.PENDING, 0)),
        claimed=int(states.get(WorkState.CLAIMED, 0)),
        quarantined=quarantined,
        sources=sources,
        nightly=NightlyStatus(state.scheduled, state.done_at, report, state.following),
        open_holds=counts["open_holds"],
        open_requests=counts["open_requests"],
        audit=_audit_status(runtime, counts["audit_entries"], counts["audit_head"]),
        encryption=encryption,
    )


def _catalogue_counts(session: Session) -> dict[str, Any]:
    """The catalogue's figures, one query each."""
    entries, head_seq = session.execute(
        select(func.count(AuditEvent.seq), func.coalesce(func.max(AuditEvent.seq), 0))
    ).one()
    open_requests = select(func.count(SubjectRequest.id)).where(
        SubjectRequest.status.in_([RequestStatus.RECEIVED, RequestStatus.PENDING])
    )
    pending = WorkItem.state == WorkState.PENDING
    return {
        "states": dict(
            session.execute(
                select(WorkItem.state, func.count(WorkItem.id)).group_by(WorkItem.state)
            ).all()
        ),
        "waiting_by_source": dict(
            session.execute(
                select(WorkItem.source, func.count(WorkItem.id))
                .where(pending)
                .group_by(WorkItem.source)
            ).all()
        ),
        "last_by_source": dict(
            session.execute(
                select(Recording.source, func.max(Recording.created_at)).group_by(Recording.source)
            ).all()
        ),
        "open_holds": int(
            session.scalar(select(func.count(Hold.id)).where(Hold.released_at.is_(None))) or 0
        ),
        "open_requests": int(session.scalar(open_requests) or 0),
        "encrypted": int(
            session.scalar(select(func.count(Recording.id)).where(Recording.encrypted)) or 0
        ),
        "audit_entries": int(entries),
        "audit_head": int(head_seq),
    }


def _audit_status(runtime: Runtime, entries: int, head_seq: int) -> AuditStatus:
    try:
        installation = str(runtime.catalogue_guard.opened.installation_id)
        anchor = newest_anchor(runtime.anchors.sink, runtime.audit_keys.get(), installation)
    except (AnchorInvalid, RecArchiveError) as exc:
        return AuditStatus(entries, head_seq, None, None, None, exc.message)
    if anchor is None:
        return AuditStatus(entries, head_seq, None, None, head_seq, None)
    return AuditStatus(
        entries, head_seq, anchor.seq, anchor.at, max(head_seq - anchor.seq, 0), None
    )
