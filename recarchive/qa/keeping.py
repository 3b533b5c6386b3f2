"""How long evaluations and samples are kept: ``qa.keep_evaluations_years`` after an
evaluation's last change, ``qa.keep_samples_years`` after a sample's period ended.

An evaluation is personal data about the agent; it outlives its call (it
names the recording without a foreign key) and is deleted, every version
with it, by the nightly job (:func:`purge_after_nightly_expiry`, subscribed
to ``NIGHTLY_EXPIRY_DONE`` in ``recarchive/composition.py``). Each deletion
leaves an audit entry ``qa.evaluation.delete`` with ids and counts only.

A sample names every candidate's agent (personal data about the agents,
kept so that anyone can check the draw was fair); it is deleted with its
candidates once its period ended ``qa.keep_samples_years`` ago, audited
``qa.sample.delete`` (the sample's id, plan, period and counts).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy import Select, select

from recarchive.access.audit import append_event
from recarchive.catalogue.database import lock_for_write, transaction, truncate_journal, utcnow
from recarchive.qa.models import Evaluation, Sample
from recarchive.retention.events import NightlyExpiryDone
from recarchive.runtime import Runtime

__all__ = [
    "EVALUATION_DELETE_ACTION",
    "SAMPLE_DELETE_ACTION",
    "purge_after_nightly_expiry",
    "purge_evaluations",
    "purge_samples",
]

logger = logging.getLogger(__name__)
_Row = TypeVar("_Row", Evaluation, Sample)

EVALUATION_DELETE_ACTION = "qa.evaluation.delete"
SAMPLE_DELETE_ACTION = "qa.sample.delete"


def years_before(moment: dt.datetime, years: int) -> dt.datetime:
    """The same calendar moment ``years`` earlier (29 February becomes the 28th)."""
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:
        return moment.replace(year=moment.year - years, day=28)


def _purge(
    runtime: Runtime,
    statement: Select[_Row],
    action: str,
    audit: Callable[[_Row], tuple[uuid.UUID | None, dict[str, Any]]],
    event: str,
) -> int:
    """Delete the rows ``statement`` selects (children go with them), one audit entry each
    (``audit``: the entry's recording and details); then no old image of them stays behind."""
    deleted = 0
    with transaction(runtime.sessions) as session:
        lock_for_write(session)
        for row in list(session.scalars(statement.with_for_update())):
            recording_id, details = audit(row)
            append_event(
                session, actor="system", action=action, recording_id=recording_id, details=details
            )
            session.delete(row)
            deleted += 1
    if deleted:
        truncate_journal(runtime.engine)
        logger.info(event, extra={"deleted": deleted})
    return deleted


def purge_evaluations(runtime: Runtime, now: dt.datetime | None = None) -> int:
    """Delete every evaluation last changed more than the keep period ago; return how many."""
    cutoff = years_before(now or utcnow(), runtime.settings.qa.keep_evaluations_years)
    statement = (
        select(Evaluation)
        .where(Evaluation.updated_at <= cutoff)
        .order_by(Evaluation.updated_at, Evaluation.id)
    )

    def audit(evaluation: Evaluation) -> tuple[uuid.UUID | None, dict[str, Any]]:
        return evaluation.recording_id, {
            "evaluation_id": str(evaluation.id),
            "versions": evaluation.current_version,
            "last_changed": evaluation.updated_at.isoformat(),
        }

    return _purge(runtime, statement, EVALUATION_DELETE_ACTION, audit, "evaluations_deleted")


def purge_samples(runtime: Runtime, now: dt.datetime | None = None) -> int:
    """Delete every sample whose period ended more than the keep period ago; return how many."""
    cutoff = years_before(now or utcnow(), runtime.settings.qa.keep_samples_years)
    statement = (
        select(Sample).where(Sample.period_end <= cutoff).order_by(Sample.period_end, Sample.id)
    )

    def audit(sample: Sample) -> tuple[uuid.UUID | None, dict[str, Any]]:
        return None, {
            "sample_id": str(sample.id),
            "plan_id": str(sample.plan_id),
            "plan_version": sample.plan_version,
            "period": sample.period,
            "candidates": sample.candidates,
            "picked": sample.picked,
        }

    return _purge(runtime, statement, SAMPLE_DELETE_ACTION, audit, "samples_deleted")


def purge_after_nightly_expiry(event: NightlyExpiryDone) -> Mapping[str, int]:
    """The nightly run deletes the evaluations and samples whose keep period ended by its moment."""
    return {
        "evaluations_deleted": purge_evaluations(event.runtime, now=event.scheduled),
        "samples_deleted": purge_samples(event.runtime, now=event.scheduled),
    }
