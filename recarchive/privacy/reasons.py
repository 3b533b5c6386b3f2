"""Rectifying a recording's reason codes (staff corrections), recorded in the audit log."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Collection

from sqlalchemy.orm import Session, sessionmaker

from recarchive.access.actors import Actor
from recarchive.access.audit import append_event
from recarchive.access.policy import Action
from recarchive.catalogue.database import transaction
from recarchive.catalogue.models import ReasonSource, Recording, RecordingReason
from recarchive.errors import InvalidInputError, NotFoundError


class RecordingNotFound(NotFoundError):
    """No recording has that id."""


class UnknownReasonCode(InvalidInputError):
    """The reason code is not in the configured taxonomy."""

    field = "codes"


@dataclasses.dataclass(frozen=True)
class ReasonChange:
    recording_id: uuid.UUID
    before: tuple[str, ...]
    after: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return self.before != self.after


def correct_reasons(
    sessions: sessionmaker[Session],
    recording_id: uuid.UUID,
    *,
    taxonomy: Collection[str],
    actor: Actor,
    replace: Collection[str] | None = None,
    add: Collection[str] = (),
    remove: Collection[str] = (),
) -> ReasonChange:
    """Set (``replace``), add or remove reason codes; the old and new codes go to the audit log.

    Raises :class:`RecordingNotFound` and :class:`UnknownReasonCode` (naming
    the code and the known ones), :class:`~recarchive.access.policy.Forbidden`
    unless ``actor`` may correct reason codes. A change that changes nothing
    is not logged.
    """
    actor.require(Action.TAG)
    unknown = sorted({*(replace or ()), *add, *remove} - set(taxonomy))
    if unknown:
        raise UnknownReasonCode(
            f"unknown reason code(s) {', '.join(unknown)}; known: {', '.join(taxonomy)}"
        )
    with transaction(sessions) as session:
        recording = session.get(Recording, recording_id, with_for_update=True)
        if recording is None:
            raise RecordingNotFound(f"no recording {recording_id}")
        order = {code: index for index, code in enumerate(taxonomy)}

        def ordered(codes: Collection[str]) -> tuple[str, ...]:
            return tuple(sorted(codes, key=lambda code: (order.get(code, len(order)), code)))

        before = ordered(recording.reason_codes)
        wanted = set(replace) if replace is not None else set(before)
        wanted = (wanted | set(add)) - set(remove)
        after = ordered(wanted)
        if after == before:
            return ReasonChange(recording_id, before, after)
        kept = {reason.code: reason for reason in recording.reasons if reason.code in wanted}
        recording.reasons = [
            kept.get(code) or RecordingReason(code=code, assigned_by=ReasonSource.STAFF)
            for code in after
        ]
        append_event(
            session,
            actor=actor.name,
            actor_role=actor.role_name,
            client_addr=actor.client_addr,
            action="reasons.correct",
            recording_id=recording_id,
            details={"before": list(before), "after": list(after)},
        )
        return ReasonChange(recording_id, before, after)
