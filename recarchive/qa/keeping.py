"""How long an evaluation is kept: ``qa.keep_evaluations_years`` after its last change.

An evaluation is personal data about the agent; it outlives its call (it
names the recording without a foreign key) and is deleted, every version
with it, by the nightly job (:func:`purge_after_nightly_expiry`, subscribed
to ``NIGHTLY_EXPIRY_DONE`` in ``recarchive/composition.py``). Each deletion
leaves an audit entry ``qa.evaluation.delete`` with ids and counts only.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping

from sqlalchemy import select

from recarchive.access.audit import append_event
from recarchive.catalogue.database import lock_for_write, transaction, truncate_journal, utcnow
from recarchive.qa.models import Evaluation
from recarchive.retention.events import NightlyExpiryDone
from recarchive.runtime import Runtime

__all__ = ["EVALUATION_DELETE_ACTION", "purge_after_nightly_expiry", "purge_evaluations"]

logger = logging.getLogger(__name__)

EVALUATION_DELETE_ACTION = "qa.evaluation.delete"


def years_before(moment: dt.datetime, years: int) -> dt.datetime:
    """The same calendar moment ``years`` earlier (29 February becomes the 28th)."""
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:
        return moment.replace(year=moment.year - years, day=28)


def purge_evaluations(runtime: Runtime, now: dt.datetime | None = None) -> int:
    """Delete every evaluation last changed more than the keep period ago; return how many."""
    now = now or utcnow()
    cutoff = years_before(now, runtime.settings.qa.keep_evaluations_years)
    deleted = 0
    with transaction(runtime.sessions) as session:
        lock_for_write(session)
        due = list(
            session.scalars(
                select(Evaluation)
                .where(Evaluation.updated_at <= cutoff)
                .order_by(Evaluation.updated_at, Evaluation.id)
                .with_for_update()
            )
        )
        for evaluation in due:
            append_event(
                session,
                actor="system",
                action=EVALUATION_DELETE_ACTION,
                recording_id=evaluation.recording_id,
                details={
                    "evaluation_id": str(evaluation.id),
                    "versions": evaluation.current_version,
                    "last_changed": evaluation.updated_at.isoformat(),
                },
            )
            session.delete(evaluation)  # its versions go with it
            deleted += 1
    if deleted:
        truncate_journal(runtime.engine)  # no old image of the deleted rows stays behind
        logger.info("evaluations_deleted", extra={"evaluations": deleted})
    return deleted


def purge_after_nightly_expiry(event: NightlyExpiryDone) -> Mapping[str, int]:
    """The nightly run deletes the evaluations whose keep period ended by its moment."""
    return {"evaluations_deleted": purge_evaluations(event.runtime, now=event.scheduled)}
