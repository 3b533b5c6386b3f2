"""The web player's pages for an agent's own evaluations, and a QA trainer's disputes page.

``/player/my`` lists the agent's evaluations (role ``agent``, ``qa.self``);
``/player/my/evaluations/{id}`` shows one: the answers beside the form's
questions, the section scores, critical failures, the trainer's notes, what
has been said since, the call played for ``self_review``, and the buttons to
acknowledge it or dispute it (once, within the window). An agent starts here
after signing in: they may not search (:func:`recarchive.api.player.landing_path`).
``/player/qa/disputes`` lists the disputed evaluations for QA trainers
(``qa.answer``) with a form to answer each.

As the other staff pages, these are shells under the player's
Content-Security-Policy; their scripts (``static/qa_my*.js``,
``static/qa_disputes.js``) work through ``/api/v1/qa`` with the sign-in
session, so :mod:`recarchive.qa.agent_reviews` alone decides what the agent
sees and audits it. Any other role gets the refusal page (403, audited as
``access.refused``).
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from recarchive.access.policy import Action
from recarchive.api.staff_pages import role_page

router = APIRouter(tags=["player"], include_in_schema=False)
#: What these pages' scripts say themselves (the rest is in the templates).
SCRIPT_PREFIXES: tuple[str, ...] = (
    "qa.my.",
    "qa.disputes.",
    "qa.status.",
    "qa.result.",
    "qa.answer.",
    "qa.score.critical.",
)


def _page(
    request: Request,
    action: Action,
    refusal_key: str,
    name: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    """An agent's or a trainer's page (:func:`~recarchive.api.staff_pages.role_page`)."""
    return role_page(
        request,
        action,
        name,
        refusal_key=refusal_key,
        prefixes=SCRIPT_PREFIXES,
        context=context,
        status_code=status_code,
    )


@router.get("/player/my", response_model=None)
def my_evaluations_page(request: Request) -> Response:
    """The agent's own evaluations; the data comes from the API in the page."""
    return _page(request, Action.QA_SELF, "qa.my.refused.body", "qa_my.html")


@router.get("/player/my/evaluations/{evaluation_id}", response_model=None)
def my_evaluation_page(request: Request, evaluation_id: str) -> Response:
    """One of the agent's evaluations: answers, notes, the call, acknowledge or dispute."""
    try:
        parsed = uuid.UUID(evaluation_id)
    except ValueError:
        keys = {"title_key": "qa.my.notfound.title", "body_key": "qa.my.notfound.body"}
        return _page(request, Action.QA_SELF, "qa.my.refused.body", "case_refused.html", keys, 404)
    context = {"evaluation_id": str(parsed)}
    return _page(request, Action.QA_SELF, "qa.my.refused.body", "qa_my_evaluation.html", context)


@router.get("/player/qa/disputes", response_model=None)
def disputes_page(request: Request) -> Response:
    """The disputed evaluations, each with the agent's comment and a form to answer it."""
    return _page(request, Action.QA_ANSWER, "qa.refused.body", "qa_disputes.html")
