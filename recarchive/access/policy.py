"""Who may do what: the role-by-action matrix and the purposes each role may play for.

One table decides every permission, for the API and the shell alike, so
the tests can check each endpoint against it. A refusal never says whether
the recording asked for exists: the check comes before the lookup.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from recarchive.access.models import Role
from recarchive.errors import InvalidInputError, RefusedError


class Action(enum.StrEnum):
    SEARCH = "search"
    VIEW = "view"
    PLAY = "play"
    DOWNLOAD = "download"
    HOLD_LIST = "hold.list"
    HOLD_PLACE = "hold.place"
    HOLD_RELEASE = "hold.release"
    TAG = "tag"
    AUDIT_READ = "audit.read"
    USERS_ADMIN = "users.admin"
    SUBJECT = "subject"
    RETENTION_APPLY = "retention.apply"
    QUARANTINE_RETRY = "quarantine.retry"
    CASE_VIEW = "case.view"
    CASE_MANAGE = "case.manage"
    CASE_EXPORT = "case.export"
    QA_PLAN = "qa.plan"
    QA_SAMPLE = "qa.sample"
    QA_NOTE = "qa.note"
    QA_LIBRARY = "qa.library"
    QA_FORM = "qa.form"
    QA_EVALUATE = "qa.evaluate"
    QA_REPORT = "qa.report"
    #: An agent's own evaluations: list, read, acknowledge, dispute.
    QA_SELF = "qa.self"
    #: A QA trainer's answer to an agent's dispute.
    QA_ANSWER = "qa.answer"


class Purpose(enum.StrEnum):
    """Why a recording is played or downloaded; recorded with every access."""

    TRAINING = "training"
    DISPUTE = "dispute"
    DATA_SUBJECT_REQUEST = "data_subject_request"
    #: An agent hears their own evaluated call (:mod:`recarchive.qa.agent_access`).
    SELF_REVIEW = "self_review"


_Q, _D, _P, _A, _ADM, _AG = (
    Role.QA_TRAINER,
    Role.DISPUTE_HANDLER,
    Role.PRIVACY_OFFICER,
    Role.AUDITOR,
    Role.ADMIN,
    Role.AGENT,
)

#: The role-by-action matrix: the roles allowed each action.
PERMISSIONS: Mapping[Action, frozenset[Role]] = {
    Action.SEARCH: frozenset({_Q, _D, _P}),
    Action.VIEW: frozenset({_Q, _D, _P}),
    # An agent plays only their own evaluated calls (recarchive.qa.agent_access).
    Action.PLAY: frozenset({_Q, _D, _P, _AG}),
    Action.DOWNLOAD: frozenset({_D, _P}),
    Action.HOLD_LIST: frozenset({_D, _P}),
    Action.HOLD_PLACE: frozenset({_D, _P}),
    Action.HOLD_RELEASE: frozenset({_D, _P}),
    Action.TAG: frozenset({_D, _P}),
    Action.AUDIT_READ: frozenset({_A}),
    Action.USERS_ADMIN: frozenset({_ADM}),
    Action.SUBJECT: frozenset({_P}),
    Action.RETENTION_APPLY: frozenset({_P, _ADM}),
    Action.QUARANTINE_RETRY: frozenset({_ADM}),
    Action.CASE_VIEW: frozenset({_D, _P}),
    Action.CASE_MANAGE: frozenset({_D, _P}),
    Action.CASE_EXPORT: frozenset({_D, _P}),
    Action.QA_PLAN: frozenset({_Q}),
    Action.QA_SAMPLE: frozenset({_Q}),
    Action.QA_NOTE: frozenset({_Q}),
    Action.QA_LIBRARY: frozenset({_Q}),
    Action.QA_FORM: frozenset({_Q}),
    Action.QA_EVALUATE: frozenset({_Q}),
    Action.QA_REPORT: frozenset({_Q}),
    Action.QA_SELF: frozenset({_AG}),
    Action.QA_ANSWER: frozenset({_Q}),
}

#: The purposes each role may play or download a recording for.
PURPOSES: Mapping[Role, frozenset[Purpose]] = {
    _Q: frozenset({Purpose.TRAINING}),
    _D: frozenset({Purpose.DISPUTE}),
    _P: frozenset({Purpose.DATA_SUBJECT_REQUEST, Purpose.DISPUTE}),
    _A: frozenset(),
    _ADM: frozenset(),
    _AG: frozenset({Purpose.SELF_REVIEW}),
}

#: Purposes that must name a case (a dispute case or a data-subject request).
CASE_REQUIRED: frozenset[Purpose] = frozenset({Purpose.DISPUTE, Purpose.DATA_SUBJECT_REQUEST})

#: Roles that see who a recording belongs to (customer id, numbers, candidates).
SEES_IDENTITY: frozenset[Role] = frozenset({_D, _P})

#: Roles whose searches and playback leave out recordings the caller objected to
#: (or that are restricted): QA trainers, and agents hearing their own calls.
TRAINING_ROLES: frozenset[Role] = frozenset({_Q, _AG})


class Forbidden(RefusedError):
    """your role does not allow this"""


class PurposeError(InvalidInputError):
    """the purpose is missing or not allowed"""

    field = "purpose"


def allowed(role: Role, action: Action) -> bool:
    return role in PERMISSIONS[action]


_DESCRIPTIONS: Mapping[Action, str] = {
    Action.SEARCH: "search recordings",
    Action.VIEW: "view recordings",
    Action.PLAY: "play recordings",
    Action.DOWNLOAD: "download recordings",
    Action.HOLD_LIST: "list holds",
    Action.HOLD_PLACE: "place holds",
    Action.HOLD_RELEASE: "release holds",
    Action.TAG: "correct reason codes",
    Action.AUDIT_READ: "read the audit log",
    Action.USERS_ADMIN: "manage users",
    Action.SUBJECT: "handle data-subject requests",
    Action.RETENTION_APPLY: "apply a retention policy change",
    Action.QUARANTINE_RETRY: "retry quarantined input",
    Action.CASE_VIEW: "see dispute cases",
    Action.CASE_MANAGE: "work on dispute cases",
    Action.CASE_EXPORT: "export evidence packages",
    Action.QA_PLAN: "manage QA sampling plans",
    Action.QA_SAMPLE: "draw or see QA samples",
    Action.QA_NOTE: "write or read notes on calls",
    Action.QA_LIBRARY: "cut, keep, play or delete training clips",
    Action.QA_FORM: "manage scorecard forms",
    Action.QA_EVALUATE: "evaluate calls",
    Action.QA_REPORT: "read QA reports",
    Action.QA_SELF: "see or answer your own evaluations",
    Action.QA_ANSWER: "answer an agent's dispute",
}


def require(role: Role, action: Action) -> None:
    """Raise :class:`Forbidden` unless ``role`` may perform ``action``."""
    if not allowed(role, action):
        raise Forbidden(f"role {role.value} may not {_DESCRIPTIONS[action]}")


def check_purpose(role: Role, purpose: str | None, case_ref: str | None) -> Purpose:
    """The parsed purpose, if ``role`` may use it and a needed case reference is given."""
    if not purpose:
        choices = ", ".join(sorted(p.value for p in PURPOSES[role])) or "none"
        raise PurposeError(f"a purpose is required (allowed for your role: {choices})")
    try:
        parsed = Purpose(purpose)
    except ValueError:
        known = ", ".join(p.value for p in Purpose)
        raise PurposeError(f"unknown purpose {purpose!r} (purposes: {known})") from None
    if parsed not in PURPOSES[role]:
        raise Forbidden(f"role {role.value} may not access recordings for {parsed.value}")
    if parsed in CASE_REQUIRED and not (case_ref and case_ref.strip()):
        raise PurposeError(f"purpose {parsed.value} needs a case reference")
    return parsed
