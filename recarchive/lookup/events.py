"""What the lookup asks the domains above it (:mod:`recarchive.events`).

- :data:`SELF_REVIEW_ASKED`: an agent asks to play a recording for
  ``self_review``. The lookup does not know which calls are an agent's to
  hear (their linked agent identifiers, and which calls were evaluated: the
  QA workspace's); every handler must answer True, and at least one must
  answer, or the recording is refused as one that does not exist. The
  composition root subscribes :func:`recarchive.qa.agent_access.may_self_review`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

from sqlalchemy.orm import Session

from recarchive.events import Topic

__all__ = ["SELF_REVIEW_ASKED", "SelfReviewAsked", "self_review_allowed"]


@dataclasses.dataclass(frozen=True)
class SelfReviewAsked:
    #: The lookup's session (the answer is read in its transaction).
    session: Session
    user_id: uuid.UUID | None
    recording_id: uuid.UUID
    now: dt.datetime


SELF_REVIEW_ASKED: Topic[SelfReviewAsked, bool] = Topic("lookup.self_review_asked")


def self_review_allowed(event: SelfReviewAsked) -> bool:
    """True when at least one handler answers and every one answers True."""
    answers = SELF_REVIEW_ASKED.publish(event)
    return bool(answers) and all(answers)
