"""What an agent may see and hear: the one rule the agent's evaluations and playback ask.

A user of role ``agent`` answers for the telephony agent identifiers an admin
linked to them (:mod:`recarchive.access.agent_ids`). Of the evaluations, they
see those of calls made under one of those identifiers that have been
submitted (drafts never); of the recordings, they hear a call only when it is
made under one of their identifiers, has at least one such evaluation, and is
one QA may still use (:func:`recarchive.qa.calls.usable_condition`: archived,
within retention, never objected to or restricted). Anything else is, for
the agent, something that does not exist: the same 404 as an unknown id.

The lookup asks :func:`may_self_review` before it opens a recording for the
purpose ``self_review`` (``lookup/events.py: SELF_REVIEW_ASKED``, subscribed
in ``recarchive/composition.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, exists, false, select
from sqlalchemy.orm import Session

from recarchive.access.agent_ids import agent_ids_of
from recarchive.catalogue.models import Recording
from recarchive.lookup.events import SelfReviewAsked
from recarchive.qa.calls import usable_condition
from recarchive.qa.models import Evaluation, EvaluationStatus

__all__ = ["may_self_review", "own_agents", "own_evaluation_condition"]


def own_agents(session: Session, user_id: uuid.UUID | None) -> list[str]:
    """The agent identifiers the user answers for (none: the user sees nothing)."""
    return agent_ids_of(session, user_id)


def own_evaluation_condition(agents: Sequence[str]) -> ColumnElement[bool]:
    """SQL: an evaluation (``Evaluation``) the agent of ``agents`` may see."""
    if not agents:
        return false()
    return and_(
        Evaluation.agent.in_(list(agents)),
        Evaluation.status != EvaluationStatus.DRAFT,
    )


def may_self_review(event: SelfReviewAsked) -> bool:
    """Whether the agent may hear the recording: theirs, evaluated, still QA's to use."""
    session = event.session
    agents = own_agents(session, event.user_id)
    if not agents:
        return False
    evaluated = exists().where(
        Evaluation.recording_id == Recording.id,
        own_evaluation_condition(agents),
    )
    found = session.scalar(
        select(Recording.id).where(
            Recording.id == event.recording_id,
            Recording.agent.in_(agents),
            usable_condition(event.now),
            evaluated,
        )
    )
    return found is not None
