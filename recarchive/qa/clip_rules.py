"""Which clips may still be served and kept: the one rule, asked at every read and every purge.

A clip may be served (and stays in the library) while all of these hold:

- its source is not restricted or objected to (:mod:`recarchive.privacy.visibility`),
  nor its customer (by the customer id it was cut with, for when the source is gone);
- its source was not erased (no tombstone of rule ``erasure``), and no
  erasure of its customer was requested since the clip was cut;
- its source is active and within its retention, or the clip holds the
  agent's channel alone and a decision keeps it (``kept_until`` still ahead).

Everything else is deleted by :mod:`recarchive.qa.clip_purge`; a read that
meets it first refuses it as unknown.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, and_, exists, not_, or_

from recarchive.catalogue.models import Recording
from recarchive.catalogue.restrictions import ProcessingRestriction, RestrictionKind
from recarchive.privacy.models import RequestKind, SubjectRequest
from recarchive.privacy.visibility import restriction_condition
from recarchive.qa.calls import usable_condition
from recarchive.qa.models import Clip
from recarchive.retention.models import Tombstone

__all__ = ["servable_condition", "source_live_condition"]

_BOTH = [RestrictionKind.RESTRICTION, RestrictionKind.OBJECTION]


def source_live_condition(now: dt.datetime) -> ColumnElement[bool]:
    """SQL: the clip's source is active, within its retention, and visible to QA trainers."""
    return exists().where(Recording.id == Clip.recording_id, usable_condition(now))


def servable_condition(now: dt.datetime) -> ColumnElement[bool]:
    """SQL: the clip (``Clip``) may be served now (the module's rule)."""
    source_excluded = exists().where(
        Recording.id == Clip.recording_id, restriction_condition(_BOTH)
    )
    customer_excluded = exists().where(
        Clip.customer_id.is_not(None),
        ProcessingRestriction.customer_id == Clip.customer_id,
        ProcessingRestriction.kind.in_(_BOTH),
        ProcessingRestriction.lifted_at.is_(None),
    )
    erased = exists().where(
        Tombstone.recording_id == Clip.recording_id, Tombstone.rule == "erasure"
    )
    erasure_asked = exists().where(
        Clip.customer_id.is_not(None),
        SubjectRequest.kind == RequestKind.ERASURE,
        SubjectRequest.customer_id == Clip.customer_id,
        SubjectRequest.received_at >= Clip.created_at,
    )
    kept = and_(Clip.agent_only, Clip.kept_until.is_not(None), Clip.kept_until > now)
    return and_(
        not_(source_excluded),
        not_(customer_excluded),
        not_(erased),
        not_(erasure_asked),
        or_(source_live_condition(now), kept),
    )
