"""Calls from a number several customers share: whose they are is the privacy officer's call.

Such a call links to no customer; every customer with the number is one of
its candidates. Restriction and objection by any candidate cover it at once
(:mod:`recarchive.privacy.visibility`); export and erasure take it only on
the officer's decision for that call (:class:`SharedDecisions`), recorded
with the request.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, false, select
from sqlalchemy.orm import Session

from recarchive.catalogue.models import Recording, RecordingCandidate, RecordingStatus
from recarchive.errors import InvalidInputError


class SharedDecisionError(InvalidInputError):
    """a decision names a call that is not one of the subject's shared calls"""

    field = "include_shared"


def shared_condition(customer_id: str | None) -> ColumnElement[bool]:
    """SQL: a call from a number the subject shares with other customers.

    No customer is linked to such a call; the subject is one of its
    candidates. Restriction and objection cover it at once (see
    :mod:`recarchive.privacy.visibility`); export and erasure take it only
    on the privacy officer's decision for that call (:class:`SharedDecisions`).
    """
    if customer_id is None:
        return false()
    candidate_of = select(RecordingCandidate.recording_id).where(
        RecordingCandidate.customer_id == customer_id
    )
    return and_(Recording.customer_id.is_(None), Recording.id.in_(candidate_of))


def shared_recording_ids(session: Session, customer_id: str | None) -> list[uuid.UUID]:
    """The live calls of :func:`shared_condition`, oldest first."""
    return list(
        session.scalars(
            select(Recording.id)
            .where(shared_condition(customer_id), Recording.status == RecordingStatus.ACTIVE)
            .order_by(Recording.started_at, Recording.id)
        )
    )


@dataclasses.dataclass(frozen=True)
class SharedDecisions:
    """The privacy officer's decision on each call from a shared number: include or leave out."""

    include: frozenset[uuid.UUID] = frozenset()
    exclude: frozenset[uuid.UUID] = frozenset()

    def split(
        self, shared: Sequence[uuid.UUID]
    ) -> tuple[list[uuid.UUID], list[uuid.UUID], list[uuid.UUID]]:
        """``shared`` as (included, left out, undecided); refuses decisions on other calls."""
        both = self.include & self.exclude
        if both:
            raise SharedDecisionError(
                f"call {', '.join(sorted(map(str, both)))} is both included and left out"
            )
        strangers = (self.include | self.exclude) - set(shared)
        if strangers:
            raise SharedDecisionError(
                f"call {', '.join(sorted(map(str, strangers)))} is not a call from a number "
                "this customer shares with others; decide only on the calls listed by "
                "`subject show`"
            )
        included = [i for i in shared if i in self.include]
        excluded = [i for i in shared if i in self.exclude]
        undecided = [i for i in shared if i not in self.include and i not in self.exclude]
        return included, excluded, undecided

    def outcome(self, shared: Sequence[uuid.UUID]) -> dict[str, Any]:
        """What the request records about the shared calls."""
        included, excluded, undecided = self.split(shared)
        return {
            "shared_included": [str(i) for i in included],
            "shared_left_out": [str(i) for i in excluded],
            "shared_undecided": [str(i) for i in undecided],
        }


#: No decision on any shared call: they are all listed as undecided and left alone.
NO_DECISIONS = SharedDecisions()


def shared_calls(session: Session, customer_id: str | None) -> list[dict[str, Any]]:
    """The customer's shared calls for the officer: id, start, the other candidates."""
    ids = shared_recording_ids(session, customer_id)
    if not ids:
        return []
    rows = session.execute(
        select(Recording.id, Recording.started_at).where(Recording.id.in_(ids))
    ).all()
    started = dict(rows)
    others: dict[uuid.UUID, list[str]] = {i: [] for i in ids}
    for recording_id, other in session.execute(
        select(RecordingCandidate.recording_id, RecordingCandidate.customer_id)
        .where(RecordingCandidate.recording_id.in_(ids))
        .order_by(RecordingCandidate.customer_id)
    ):
        if other != customer_id:
            others[recording_id].append(other)
    return [
        {
            "id": str(i),
            "started_at": started[i].isoformat(),
            "other_candidates": others[i],
        }
        for i in ids
    ]
