"""What staff are shown of a dispute case: a summary in lists, the whole case when opened.

Both roles that work on cases (dispute handler, privacy officer) see who a
recording belongs to, so the views carry the case's customer and its
recordings' numbers; reading them is audited by the use cases
(``case.view``), never here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from recarchive.catalogue.models import Recording
from recarchive.disputes.models import Case, CaseRecording
from recarchive.retention.models import Hold, HoldRecording
from recarchive.retention.rules import holds_covering


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


@dataclasses.dataclass(frozen=True)
class CaseSummary:
    id: uuid.UUID
    reference: str
    kind: str
    status: str
    customer_id: str | None
    document_ref: str | None
    handler: str
    opened_at: dt.datetime
    closed_at: dt.datetime | None
    recordings: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "reference": self.reference,
            "kind": self.kind,
            "status": self.status,
            "customer_id": self.customer_id,
            "document_ref": self.document_ref,
            "handler": self.handler,
            "opened_at": self.opened_at.isoformat(),
            "closed_at": _iso(self.closed_at),
            "recordings": self.recordings,
        }


def summary_of(case: Case, recordings: int) -> CaseSummary:
    return CaseSummary(
        id=case.id,
        reference=case.reference,
        kind=case.kind.value,
        status=case.status.value,
        customer_id=case.customer_id,
        document_ref=case.document_ref,
        handler=case.handler,
        opened_at=case.opened_at,
        closed_at=case.closed_at,
        recordings=recordings,
    )


def summaries(session: Session, cases: Sequence[Case]) -> list[CaseSummary]:
    """Summaries of ``cases``, with how many recordings each links (one query)."""
    ids = [case.id for case in cases]
    counts: dict[uuid.UUID, int] = {}
    if ids:
        rows = session.execute(
            select(CaseRecording.case_id, func.count())
            .where(CaseRecording.case_id.in_(ids))
            .group_by(CaseRecording.case_id)
        )
        counts = {case_id: int(n) for case_id, n in rows}
    return [summary_of(case, counts.get(case.id, 0)) for case in cases]


@dataclasses.dataclass(frozen=True)
class LinkedRecording:
    """A recording linked to the case; only the link's own fields once it is erased."""

    id: uuid.UUID
    status: str
    added_by: str
    added_at: dt.datetime
    started_at: dt.datetime | None = None
    duration_ms: int | None = None
    direction: str | None = None
    agent: str | None = None
    queue: str | None = None
    caller_number: str | None = None
    #: Holds in force other than the case's own that cover it (None once erased).
    other_holds: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "started_at": _iso(self.started_at),
            "duration_ms": self.duration_ms,
            "direction": self.direction,
            "agent": self.agent,
            "queue": self.queue,
            "caller_number": self.caller_number,
            "status": self.status,
            "added_by": self.added_by,
            "added_at": self.added_at.isoformat(),
            "other_holds": self.other_holds,
        }


@dataclasses.dataclass(frozen=True)
class CaseDetail:
    summary: CaseSummary
    opened_by: str
    closed_by: str | None
    close_reason: str | None
    delete_after: dt.datetime | None
    hold: dict[str, Any] | None
    recordings: list[LinkedRecording]
    notes: list[dict[str, Any]]
    exports: list[dict[str, Any]]

    @property
    def id(self) -> uuid.UUID:
        return self.summary.id

    @property
    def reference(self) -> str:
        return self.summary.reference

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.summary.as_dict(),
            "opened_by": self.opened_by,
            "closed_by": self.closed_by,
            "close_reason": self.close_reason,
            "delete_after": _iso(self.delete_after),
            "hold": self.hold,
            "recordings": [r.as_dict() for r in self.recordings],
            "notes": self.notes,
            "exports": self.exports,
        }


def _hold_dict(session: Session, hold_id: uuid.UUID | None) -> dict[str, Any] | None:
    hold = session.get(Hold, hold_id) if hold_id is not None else None
    if hold is None:
        return None
    count = session.scalar(
        select(func.count()).select_from(HoldRecording).where(HoldRecording.hold_id == hold.id)
    )
    return {
        "id": str(hold.id),
        "placed_at": hold.placed_at.isoformat(),
        "released_at": _iso(hold.released_at),
        "recordings": int(count or 0),
    }


def _linked(session: Session, case: Case, now: dt.datetime) -> list[LinkedRecording]:
    links = sorted(case.recordings, key=lambda link: (link.added_at, link.recording_id))
    ids = [link.recording_id for link in links]
    rows = {
        r.id: r
        for r in session.scalars(
            select(Recording)
            .where(Recording.id.in_(ids))
            .options(selectinload(Recording.candidates))
        )
    }
    linked = []
    for link in links:
        recording = rows.get(link.recording_id)
        if recording is None:
            linked.append(
                LinkedRecording(link.recording_id, "deleted", link.added_by, link.added_at)
            )
            continue
        customers = [recording.customer_id, *(c.customer_id for c in recording.candidates)]
        others = [
            h for h in holds_covering(session, recording.id, customers, now) if h.id != case.hold_id
        ]
        linked.append(
            LinkedRecording(
                id=recording.id,
                status=recording.status.value,
                added_by=link.added_by,
                added_at=link.added_at,
                started_at=recording.started_at,
                duration_ms=recording.duration_ms,
                direction=recording.direction.value,
                agent=recording.agent,
                queue=recording.queue,
                caller_number=recording.caller_number,
                other_holds=len(others),
            )
        )
    return linked


def detail_of(session: Session, case: Case, now: dt.datetime) -> CaseDetail:
    """The whole case as staff see it when they open it."""
    return CaseDetail(
        summary=summary_of(case, len(case.recordings)),
        opened_by=case.opened_by,
        closed_by=case.closed_by,
        close_reason=case.close_reason,
        delete_after=case.delete_after,
        hold=_hold_dict(session, case.hold_id),
        recordings=_linked(session, case, now),
        notes=[
            {"id": str(n.id), "author": n.author, "at": n.at.isoformat(), "text": n.text}
            for n in case.notes
        ],
        exports=[
            {
                "id": str(e.id),
                "made_by": e.made_by,
                "at": e.at.isoformat(),
                "recordings": e.recordings,
                "manifest_sha256": e.manifest_sha256,
                "timestamped_at": _iso(e.timestamped_at),
            }
            for e in case.exports
        ],
    )
