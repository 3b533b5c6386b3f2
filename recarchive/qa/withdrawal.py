"""Withdrawing picked calls that may no longer be used for training.

A call picked by a sample leaves it, with a note (reason and time) and an
audit entry (``qa.withdraw``), when its caller objects to training use, its
processing is restricted, or it is deleted or past its retention. What
decides is :mod:`recarchive.privacy.visibility`, the rule the QA search
uses. Two moments find them: every showing of a sample, before anything is
shown (:mod:`recarchive.qa.sampling`: nothing withdrawn is ever shown,
whatever else happened), and, at once, an objection or restriction being
recorded (:data:`recarchive.privacy.events.TRAINING_EXCLUDED`, subscribed
by the composition root).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from recarchive.access.audit import append_event
from recarchive.catalogue.database import lock_for_write, transaction, utcnow
from recarchive.catalogue.models import Recording, RecordingStatus
from recarchive.catalogue.restrictions import RestrictionKind
from recarchive.errors import RecArchiveError
from recarchive.privacy.events import TrainingExcluded
from recarchive.privacy.visibility import restriction_condition
from recarchive.qa.models import SampleCall, WithdrawalReason

__all__ = ["Withdrawal", "withdraw_after_exclusion", "withdraw_unusable"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Withdrawal:
    sample_id: uuid.UUID
    recording_id: uuid.UUID
    reason: WithdrawalReason


def _reason(
    exists: bool, active: bool, retained: bool, restricted: bool, objected: bool
) -> WithdrawalReason | None:
    if not (exists and active and retained):
        return WithdrawalReason.DELETED
    if restricted:
        return WithdrawalReason.RESTRICTED
    if objected:
        return WithdrawalReason.OBJECTED
    return None


def withdraw_unusable(
    session: Session,
    now: dt.datetime,
    *,
    actor: str,
    actor_role: str | None,
    client_addr: str | None,
    cause: str,
    sample_id: uuid.UUID | None = None,
) -> list[Withdrawal]:
    """Withdraw the picked calls (of one sample, or of every sample) that training may not use.

    Each is marked in ``qa_sample_calls`` and audited in ``session``'s
    transaction, once: a call another process withdrew first is left to it.
    ``cause`` says what found it (``qa.sample.view``, ``objection.place``...).
    """
    statement = (
        select(
            SampleCall.sample_id,
            SampleCall.recording_id,
            Recording.id.is_not(None),
            Recording.status == RecordingStatus.ACTIVE,
            Recording.retain_until > now,
            restriction_condition([RestrictionKind.RESTRICTION]),
            restriction_condition([RestrictionKind.OBJECTION]),
        )
        .select_from(SampleCall)
        .outerjoin(Recording, Recording.id == SampleCall.recording_id)
        .where(SampleCall.picked, SampleCall.withdrawn_at.is_(None))
    )
    if sample_id is not None:
        statement = statement.where(SampleCall.sample_id == sample_id)
    withdrawn = []
    for row in session.execute(statement).all():
        reason = _reason(*(bool(flag) for flag in row[2:]))
        if reason is None:
            continue
        marked = session.execute(
            update(SampleCall)
            .where(
                SampleCall.sample_id == row[0],
                SampleCall.recording_id == row[1],
                SampleCall.withdrawn_at.is_(None),
            )
            .values(withdrawn_at=now, withdrawn_reason=reason)
            .execution_options(synchronize_session=False)
        )
        if not getattr(marked, "rowcount", 0):
            continue
        append_event(
            session,
            actor=actor,
            actor_role=actor_role,
            action="qa.withdraw",
            recording_id=row[1],
            client_addr=client_addr,
            details={"sample_id": str(row[0]), "reason": reason.value, "cause": cause},
        )
        withdrawn.append(Withdrawal(row[0], row[1], reason))
    return withdrawn


def withdraw_after_exclusion(event: TrainingExcluded) -> None:
    """An objection or restriction was recorded: the picks it covers leave their samples now.

    Audited under the name of whoever recorded it. A failure is logged and
    left to the next showing of each sample, which withdraws them too.
    """
    try:
        with transaction(event.runtime.sessions) as session:
            lock_for_write(session)
            found = withdraw_unusable(
                session,
                utcnow(),
                actor=event.actor,
                actor_role=event.actor_role,
                client_addr=event.client_addr,
                cause=event.cause,
            )
    except RecArchiveError as exc:
        logger.warning("qa_withdrawal_deferred", extra={"error": exc.message})
        return
    if found:
        logger.info("qa_calls_withdrawn", extra={"calls": len(found)})
