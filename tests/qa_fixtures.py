"""Calls for the QA sampling tests: catalogue rows without audio (a draw reads no audio)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from recarchive.catalogue.database import transaction, utcnow
from recarchive.catalogue.models import (
    Direction,
    ReasonSource,
    Recording,
    RecordingReason,
    RecordingStatus,
)
from recarchive.catalogue.restrictions import ProcessingRestriction, RestrictionKind
from recarchive.parts import Sessions

#: Inside ISO week 2026-W40 and month 2026-09 (Europe/Helsinki): long over, still retained.
IN_WEEK_40 = dt.datetime(2026, 9, 29, 10, 0, tzinfo=dt.UTC)


def add_call(
    runtime: Sessions,
    *,
    agent: str | None,
    started_at: dt.datetime = IN_WEEK_40,
    queue: str | None = "sales",
    reasons: Sequence[str] = (),
    direction: Direction = Direction.INBOUND,
    seconds: int = 120,
    customer_id: str | None = None,
    caller_number: str | None = None,
    status: RecordingStatus = RecordingStatus.ACTIVE,
    retain_until: dt.datetime | None = None,
) -> uuid.UUID:
    """One catalogued call (its object is not stored: sampling never reads audio)."""
    recording_id = uuid.uuid4()
    recording = Recording(
        id=recording_id,
        source="qa-test",
        source_ref=f"ref-{recording_id}",
        started_at=started_at,
        duration_ms=seconds * 1000,
        direction=direction,
        agent=agent,
        queue=queue,
        customer_id=customer_id,
        caller_number=caller_number,
        object_key=f"recordings/{started_at:%Y/%m/%d}/{recording_id}.wav",
        format="wav",
        codec="pcm_s16le",
        channels=1,
        sample_rate=8000,
        size_bytes=1000,
        sha256="0" * 64,
        status=status,
        retain_until=retain_until or utcnow() + dt.timedelta(days=365),
    )
    recording.reasons = [RecordingReason(code=c, assigned_by=ReasonSource.RULE) for c in reasons]
    with transaction(runtime.sessions) as session:
        session.add(recording)
    return recording_id


def exclude(
    runtime: Sessions,
    kind: RestrictionKind,
    *,
    recording_id: uuid.UUID | None = None,
    customer_id: str | None = None,
) -> None:
    """A restriction or objection row, as privacy records it (without its request)."""
    with transaction(runtime.sessions) as session:
        session.add(
            ProcessingRestriction(
                kind=kind,
                recording_id=recording_id,
                customer_id=customer_id,
                allowed_purpose="dispute" if kind is RestrictionKind.RESTRICTION else None,
                case_ref="QA-TEST" if kind is RestrictionKind.RESTRICTION else None,
                created_by="qa-test-officer",
            )
        )
