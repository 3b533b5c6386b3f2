"""Claims on recordings being deleted: one rule for every run that deletes.

Expiry, erasure and reconciliation may run at the same moment, in several
processes (a timer's ``recarchive expire`` and a long-running ingest's
nightly job, an officer's erasure). A recording is deleted under a claim,
written in the transaction that marks it ``deleting`` and re-checks its
holds:

- ``deleting_by``: the run deleting it, ``deleting_since``: since when;
- ``deleting_rule``, ``deleting_request_id``: the tombstone rule it is
  deleted under (``retention:<rule>``, ``erasure``) and the erasure's request.

A run may claim (:func:`claimable`) a recording that is ``active``, or
``deleting`` with no live run holding it: its claim was released unsettled
(``deleting_by`` NULL: a store failure left it unknown whether the object is
gone) or is older than ``retention.claim_stale_minutes`` (its run died). A
claim taken over keeps its rule and request: the object may be gone under
them already. Only the run holding a claim settles it (:func:`owned` locks
the rows): a run too slow to settle before its claim was taken over finds
it taken and counts nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import ColumnElement, String, Uuid, and_, case, func, literal, select, update
from sqlalchemy.orm import Session

from recarchive.catalogue.database import utcnow
from recarchive.catalogue.models import Recording, RecordingStatus
from recarchive.config import RetentionSettings
from recarchive.retention.rules import Buried, held_condition

#: The rule of an expiry's tombstone: ``retention:`` and the recording's retention rule.
RETENTION_PREFIX = "retention:"


def retention_rule(recording: Recording) -> str:
    """The tombstone rule of a recording deleted by expiry."""
    return f"{RETENTION_PREFIX}{recording.retention_rule}"


def retention_rule_sql() -> ColumnElement[str]:
    """SQL: :func:`retention_rule` of the row (``Recording``)."""
    return literal(RETENTION_PREFIX, String) + Recording.retention_rule


def claim_rule(recording: Recording) -> str:
    """The rule a ``deleting`` recording's claim was made for.

    A row marked ``deleting`` before claims recorded their rule was an expiry's.
    """
    return recording.deleting_rule or retention_rule(recording)


def new_run_id() -> str:
    """A fresh id for a run that claims recordings."""
    return uuid.uuid4().hex


def stale_after(retention: RetentionSettings) -> dt.timedelta:
    """How old a claim must be before another run may take it over."""
    return dt.timedelta(minutes=retention.claim_stale_minutes)


def in_progress(now: dt.datetime, stale: dt.timedelta) -> ColumnElement[bool]:
    """SQL: the recording is ``deleting`` under a live run's claim (fresh, not released)."""
    return and_(
        Recording.status == RecordingStatus.DELETING,
        Recording.deleting_by.is_not(None),
        Recording.deleting_since.is_not(None),
        Recording.deleting_since > now - stale,
    )


def claimable(now: dt.datetime, stale: dt.timedelta) -> ColumnElement[bool]:
    """SQL: a run may claim the recording: ``active``, or ``deleting`` with no live claim."""
    return and_(
        Recording.status.in_([RecordingStatus.ACTIVE, RecordingStatus.DELETING]),
        ~in_progress(now, stale),
    )


def claim(
    session: Session,
    ids: Sequence[uuid.UUID],
    *,
    run_id: str,
    rule: str | ColumnElement[str],
    held_at: dt.datetime,
    stale: dt.timedelta,
    request_id: uuid.UUID | None = None,
    now: dt.datetime | None = None,
) -> list[Buried]:
    """Claim the claimable, unheld recordings among ``ids`` for ``run_id``; return them.

    Holds are judged at ``held_at`` and re-checked in the statement (a fresh
    snapshot), so a hold committed meanwhile wins. A claim taken over keeps
    its rule and request. Call it under the catalogue's write lock.
    """
    if not ids:
        return []
    now = now or utcnow()
    new_rule = literal(rule, String) if isinstance(rule, str) else rule
    fresh = Recording.deleting_rule.is_(None)
    session.execute(
        update(Recording)
        .where(Recording.id.in_(list(ids)), claimable(now, stale), ~held_condition(held_at))
        .values(
            status=RecordingStatus.DELETING,
            deleting_by=run_id,
            deleting_since=now,
            deleting_rule=func.coalesce(Recording.deleting_rule, new_rule),
            deleting_request_id=case(
                (fresh, literal(request_id, Uuid())), else_=Recording.deleting_request_id
            ),
        )
        .execution_options(synchronize_session=False)
    )
    rows = session.scalars(
        select(Recording)
        .where(Recording.id.in_(list(ids)), Recording.deleting_by == run_id)
        .execution_options(populate_existing=True)
    )
    return [
        Buried.of(r, claim_rule(r), claimed_by=run_id, request_id=r.deleting_request_id)
        for r in rows
    ]


def owned(session: Session, items: Sequence[Buried]) -> set[uuid.UUID]:
    """The recordings among ``items`` still claimed by the run that claimed them; rows locked.

    Call it under the catalogue's write lock, before settling them: a
    recording another run took over (or already buried) is not among them.
    """
    if not items:
        return set()
    runs = {item.recording_id: item.claimed_by for item in items}
    rows = session.execute(
        select(Recording.id, Recording.deleting_by)
        .where(Recording.id.in_(list(runs)), Recording.status == RecordingStatus.DELETING)
        .with_for_update()
    ).all()
    return {rid for rid, by in rows if by is not None and by == runs[rid]}


def release(session: Session, ids: Sequence[uuid.UUID], *, settled: bool) -> None:
    """Give up the claim on ``ids`` (rows this run owns, see :func:`owned`).

    ``settled``: the store answered that the object is still there: the
    recording is ``active`` again. Otherwise its fate is unknown: it stays
    ``deleting`` with its rule, and the next run takes it over at once.
    """
    if not ids:
        return
    values: dict[str, object] = {"deleting_by": None}
    if settled:
        values.update(
            status=RecordingStatus.ACTIVE,
            deleting_since=None,
            deleting_rule=None,
            deleting_request_id=None,
        )
    session.execute(
        update(Recording)
        .where(Recording.id.in_(list(ids)))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
