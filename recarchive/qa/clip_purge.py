"""Deleting the clips that may no longer be kept: at once, and nightly as the safety net.

:func:`purge_clips` deletes every clip :func:`recarchive.qa.clip_rules.servable_condition`
refuses (its call expired or deleted and no decision keeps it, a decision
ran out, its call or customer restricted, objected to, or erased), and with
``recording_ids`` or ``customer_id`` also every clip of those calls or that
customer. Each goes object first, then row, with an audit entry
``qa.clip.delete`` of ids and a cause only (the title and purpose go with
the row). Three moments call it, each subscribed in ``recarchive/composition.py``:

- the nightly run (``NIGHTLY_EXPIRY_DONE``): :func:`purge_after_nightly_expiry`;
- an objection or restriction recorded (``TRAINING_EXCLUDED``): :func:`purge_after_exclusion`;
- an erasure (``SUBJECT_ERASED``): :func:`purge_after_erasure`, every clip of
  the customer's calls, the agent-only ones too (docs/qa.md says why).

The last two log a failure and leave it to the nightly run; every read
refuses those clips meanwhile.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Collection, Mapping

from sqlalchemy import exists, not_, or_, select, update

from recarchive.access.audit import append_event
from recarchive.catalogue.database import lock_for_write, transaction, utcnow
from recarchive.catalogue.models import Recording
from recarchive.errors import RecArchiveError
from recarchive.parts import Archive
from recarchive.privacy.events import SubjectErased, TrainingExcluded
from recarchive.qa.clip_audio import delete_clip_object
from recarchive.qa.clip_rules import servable_condition
from recarchive.qa.models import Clip
from recarchive.retention.events import NightlyExpiryDone

__all__ = [
    "purge_after_erasure",
    "purge_after_exclusion",
    "purge_after_nightly_expiry",
    "purge_clips",
]

logger = logging.getLogger(__name__)


def purge_clips(
    runtime: Archive,
    *,
    cause: str,
    actor: str = "system",
    actor_role: str | None = None,
    now: dt.datetime | None = None,
    recording_ids: Collection[uuid.UUID] = (),
    customer_id: str | None = None,
) -> int:
    """Delete the clips that may no longer be kept (and those named); return how many."""
    now = now or utcnow()
    _follow_sources(runtime)
    doomed = not_(servable_condition(now))
    if recording_ids:
        doomed = or_(doomed, Clip.recording_id.in_(list(recording_ids)))
    if customer_id is not None:
        doomed = or_(doomed, Clip.customer_id == customer_id)
    with runtime.sessions() as session:
        due = [
            (row[0], row[1])
            for row in session.execute(select(Clip.id, Clip.object_key).where(doomed))
        ]
    deleted = 0
    for clip_id, object_key in due:
        delete_clip_object(runtime, object_key)
        with transaction(runtime.sessions) as session:
            lock_for_write(session)
            row = session.get(Clip, clip_id, with_for_update=True)
            if row is None:
                continue  # deleted meanwhile, and audited by whoever did
            append_event(
                session,
                actor=actor,
                actor_role=actor_role,
                action="qa.clip.delete",
                recording_id=row.recording_id,
                details={"clip_id": str(clip_id), "cause": cause},
            )
            session.delete(row)
            deleted += 1
    if deleted:
        logger.info("clips_deleted", extra={"clips": deleted, "cause": cause})
    return deleted


def _follow_sources(runtime: Archive) -> None:
    """A clip's ``retain_until`` follows its call's (a retention change moves both)."""
    live = select(Recording.retain_until).where(Recording.id == Clip.recording_id)
    changed = exists().where(
        Recording.id == Clip.recording_id, Recording.retain_until != Clip.retain_until
    )
    with transaction(runtime.sessions) as session:
        lock_for_write(session)
        session.execute(
            update(Clip)
            .where(changed)
            .values(retain_until=live.scalar_subquery())
            .execution_options(synchronize_session=False)
        )


def purge_after_nightly_expiry(event: NightlyExpiryDone) -> Mapping[str, int]:
    """The nightly run deletes the clips whose calls expired, and those no decision keeps."""
    return {"clips_deleted": purge_clips(event.runtime, cause="expiry", now=event.scheduled)}


def purge_after_exclusion(event: TrainingExcluded) -> None:
    """An objection or restriction was recorded: the clips of the calls it covers go now."""
    try:
        purge_clips(
            event.runtime, cause=event.cause, actor=event.actor, actor_role=event.actor_role
        )
    except RecArchiveError as exc:
        logger.warning("clip_purge_deferred", extra={"error": exc.message})


def purge_after_erasure(event: SubjectErased) -> None:
    """An erasure ran: every clip of the subject's calls goes now, agent-only ones too."""
    try:
        purge_clips(
            event.runtime,
            cause="subject.erasure",
            actor=event.actor,
            recording_ids=event.recording_ids,
            customer_id=event.customer_id,
        )
    except RecArchiveError as exc:
        logger.warning("clip_purge_deferred", extra={"error": exc.message})
