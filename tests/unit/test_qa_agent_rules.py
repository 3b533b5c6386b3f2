"""The agent's rules that need no catalogue: statuses after a trainer's save, comments,
and the role's place in the policy."""

from __future__ import annotations

import pytest

from recarchive.access.models import Role
from recarchive.access.policy import (
    PERMISSIONS,
    PURPOSES,
    SEES_IDENTITY,
    TRAINING_ROLES,
    Action,
    Forbidden,
    Purpose,
    check_purpose,
)
from recarchive.qa.agent_reviews import COMMENT_MAX, BadComment, check_comment
from recarchive.qa.evaluations import next_status
from recarchive.qa.models import EvaluationStatus as S


@pytest.mark.parametrize(
    ("before", "submit", "after"),
    [
        (None, False, S.DRAFT),
        (None, True, S.SUBMITTED),
        (S.DRAFT, False, S.DRAFT),
        (S.DRAFT, True, S.SUBMITTED),
        (S.SUBMITTED, False, S.SUBMITTED),
        (S.ACKNOWLEDGED, False, S.SUBMITTED),  # a new version needs a new acknowledgement
        (S.ACKNOWLEDGED, True, S.SUBMITTED),
        (S.DISPUTED, True, S.DISPUTED),  # still the trainer's to answer
        (S.DISPUTE_ANSWERED, False, S.SUBMITTED),
    ],
)
def test_the_status_after_a_trainer_saves(before: S | None, submit: bool, after: S) -> None:
    assert next_status(before, submit) is after


def test_a_comment_is_stripped_required_and_limited() -> None:
    assert check_comment("  why \n") == "why"
    assert check_comment("x" * COMMENT_MAX) == "x" * COMMENT_MAX
    for bad in (None, "", "   ", "x" * (COMMENT_MAX + 1)):
        with pytest.raises(BadComment):
            check_comment(bad)


def test_an_agent_plays_only_for_self_review_and_never_sees_who_called() -> None:
    assert PURPOSES[Role.AGENT] == frozenset({Purpose.SELF_REVIEW})
    assert all(Purpose.SELF_REVIEW not in PURPOSES[r] for r in Role if r is not Role.AGENT)
    assert Role.AGENT not in SEES_IDENTITY
    assert Role.AGENT in TRAINING_ROLES  # objected and restricted calls do not exist for them
    allowed = {action for action, roles in PERMISSIONS.items() if Role.AGENT in roles}
    assert allowed == {Action.PLAY, Action.QA_SELF}
    assert check_purpose(Role.AGENT, "self_review", None) is Purpose.SELF_REVIEW
    with pytest.raises(Forbidden):
        check_purpose(Role.AGENT, "training", None)
