"""What staff are shown of a recording, by role, and the errors of looking one up.

QA trainers never see a caller's identity (customer, candidates, numbers)
nor the holds on a call; the other roles see everything the view holds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from recarchive.access.models import Role
from recarchive.access.policy import SEES_IDENTITY
from recarchive.catalogue.models import Recording
from recarchive.errors import GoneError, NotFoundError, RecArchiveError
from recarchive.retention.models import RecordingCheck
from recarchive.retention.rules import holds_covering


class LookupFailed(RecArchiveError):
    """the recording cannot be served"""


class NotFound(NotFoundError, LookupFailed):
    """no such recording"""


class Gone(GoneError, LookupFailed):
    """the recording was deleted"""

    def __init__(self, tombstone: TombstoneView) -> None:
        super().__init__(
            f"recording {tombstone.recording_id} was deleted at "
            f"{tombstone.deleted_at.isoformat()} ({tombstone.rule})"
        )
        self.tombstone = tombstone

    def details(self) -> dict[str, Any]:
        return {"tombstone": self.tombstone.as_dict()}


class RangeNotSatisfiable(LookupFailed):
    """the requested byte range is not satisfiable"""

    http_status = 416
    code = "range_not_satisfiable"

    def __init__(self, size: int) -> None:
        super().__init__(f"requested range not satisfiable (the recording has {size} bytes)")
        self.size = size

    def headers(self) -> dict[str, str]:
        return {"Content-Range": f"bytes */{self.size}"}


class AudioMissing(LookupFailed):
    """the recording's audio object is missing from the store"""

    http_status = 404
    code = "audio_missing"
    log_event = "audio_object_missing"


@dataclasses.dataclass(frozen=True)
class TombstoneView:
    recording_id: uuid.UUID
    deleted_at: dt.datetime
    rule: str
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.recording_id),
            "deleted_at": self.deleted_at.isoformat(),
            "rule": self.rule,
            "sha256": self.sha256,
        }


@dataclasses.dataclass(frozen=True)
class HoldView:
    hold_id: uuid.UUID
    case_ref: str
    placed_at: dt.datetime
    until: dt.datetime | None
    on_customer: bool


@dataclasses.dataclass(frozen=True)
class PartView:
    """Another recording of the same call (a transfer's other part), in short."""

    id: uuid.UUID
    started_at: dt.datetime
    duration_ms: int
    agent: str | None
    queue: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "started_at": self.started_at.isoformat(),
            "duration_s": round(self.duration_ms / 1000, 3),
            "agent": self.agent,
            "queue": self.queue,
        }


@dataclasses.dataclass(frozen=True)
class IntegrityView:
    """The last time the recording's bytes were read whole and compared with its SHA-256."""

    checked_at: dt.datetime
    ok: bool
    #: ``verify`` (the integrity check) or ``playback`` (a full read served).
    via: str
    last_ok_at: dt.datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "last_checked_at": self.checked_at.isoformat(),
            "ok": self.ok,
            "via": self.via,
            "last_ok_at": self.last_ok_at.isoformat() if self.last_ok_at else None,
        }


@dataclasses.dataclass(frozen=True)
class RecordingView:
    """What one role may see of a recording."""

    id: uuid.UUID
    started_at: dt.datetime
    duration_ms: int
    direction: str
    agent: str | None
    queue: str | None
    reasons: tuple[str, ...]
    format: str
    codec: str
    channels: int
    sample_rate: int
    size_bytes: int
    sha256: str
    retention_class: str
    retention_rule: str
    retain_until: dt.datetime
    held: bool
    restricted: bool
    objected: bool
    #: ``None`` when the role does not see identity.
    identity: dict[str, Any] | None
    holds: tuple[HoldView, ...] = ()
    #: The call this recording is a part of, and its other parts the role may see.
    linked_call_id: str | None = None
    parts: tuple[PartView, ...] = ()
    #: The last integrity check (None: never checked), when :attr:`shows_integrity`.
    integrity: IntegrityView | None = None
    #: The one-recording view shows the integrity check; search results do not read it.
    shows_integrity: bool = False

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": str(self.id),
            "started_at": self.started_at.isoformat(),
            "duration_s": round(self.duration_ms / 1000, 3),
            "direction": self.direction,
            "agent": self.agent,
            "queue": self.queue,
            "reasons": list(self.reasons),
            "audio": {
                "format": self.format,
                "codec": self.codec,
                "channels": self.channels,
                "sample_rate": self.sample_rate,
                "size_bytes": self.size_bytes,
                "sha256": self.sha256,
            },
            "retention": {
                "class": self.retention_class,
                "rule": self.retention_rule,
                "retain_until": self.retain_until.isoformat(),
            },
            "held": self.held,
            "restricted": self.restricted,
            "objected": self.objected,
            "linked_call_id": self.linked_call_id,
            "parts": [part.as_dict() for part in self.parts],
        }
        out["customer"] = self.identity
        out["holds"] = (
            [
                {
                    "id": str(h.hold_id),
                    "case_ref": h.case_ref,
                    "placed_at": h.placed_at.isoformat(),
                    "until": h.until.isoformat() if h.until else None,
                    "on_customer": h.on_customer,
                }
                for h in self.holds
            ]
            if self.holds
            else None
        )
        if self.shows_integrity:
            out["integrity"] = self.integrity.as_dict() if self.integrity else None
        return out


@dataclasses.dataclass(frozen=True)
class SearchPage:
    items: list[RecordingView]
    next_cursor: str | None


# --- what each role may see ---------------------------------------------------


def holds_for(session: Session, recording: Recording, now: dt.datetime) -> list[HoldView]:
    customers = [recording.customer_id, *(c.customer_id for c in recording.candidates)]
    return [
        HoldView(h.id, h.case_ref, h.placed_at, h.until, h.customer_id is not None)
        for h in holds_covering(session, recording.id, customers, now)
    ]


def integrity_of(session: Session, recording_id: uuid.UUID) -> IntegrityView | None:
    """The recording's last integrity check, or None when it was never checked."""
    check = session.get(RecordingCheck, recording_id)
    if check is None:
        return None
    return IntegrityView(check.checked_at, check.ok, check.via, check.last_ok_at)


def role_view(
    recording: Any,
    role: Role,
    *,
    reasons: Sequence[str],
    candidates: Sequence[str],
    held: bool,
    restricted: bool,
    objected: bool,
    holds: Sequence[HoldView] = (),
    parts: Sequence[PartView] = (),
) -> RecordingView:
    """The role's view of a recording (an ORM object or a row of the search's columns)."""
    identity = None
    if role in SEES_IDENTITY:
        identity = {
            "customer_id": recording.customer_id,
            "match": recording.customer_match.value,
            "candidates": sorted(candidates),
            "caller_number": recording.caller_number,
            "called_number": recording.called_number,
        }
    return RecordingView(
        id=recording.id,
        started_at=recording.started_at,
        duration_ms=recording.duration_ms,
        direction=recording.direction.value,
        agent=recording.agent,
        queue=recording.queue,
        reasons=tuple(reasons),
        format=recording.format,
        codec=recording.codec,
        channels=recording.channels,
        sample_rate=recording.sample_rate,
        size_bytes=recording.size_bytes,
        sha256=recording.sha256,
        retention_class=recording.retention_class,
        retention_rule=recording.retention_rule,
        retain_until=recording.retain_until,
        held=held,
        restricted=restricted,
        objected=objected,
        identity=identity,
        holds=tuple(holds) if role in SEES_IDENTITY else (),
        linked_call_id=recording.linked_call_id,
        parts=tuple(parts),
    )
