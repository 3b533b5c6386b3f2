"""Which calls QA may use: the one rule every QA feature (samples, notes, scores, clips) asks.

A call is QA's to use while it is archived (``active``), within its
retention, and visible to QA trainers (:func:`recarchive.privacy.visibility.visible_condition`:
never objected to for training, never restricted). A call that is not is,
for QA, a call that does not exist: callers answer as for an unknown id.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session

from recarchive.access.models import Role
from recarchive.catalogue.models import Recording, RecordingStatus
from recarchive.privacy.visibility import visible_condition

__all__ = ["usable_call", "usable_condition"]


def usable_condition(now: dt.datetime) -> ColumnElement[bool]:
    """SQL: the recording is one QA may use at ``now``."""
    return and_(
        Recording.status == RecordingStatus.ACTIVE,
        Recording.retain_until > now,
        visible_condition(Role.QA_TRAINER),
    )


def usable_call(session: Session, recording_id: uuid.UUID, now: dt.datetime) -> Recording | None:
    """The recording, if QA may use it at ``now``; None otherwise (whatever it is)."""
    return session.scalar(
        select(Recording).where(Recording.id == recording_id, usable_condition(now))
    )
