"""The web player's dispute case pages, in Finnish and English, and the language switch.

``/player/cases`` lists cases and opens new ones; ``/player/cases/{case_id}``
is one case: its facts, recordings (played in the page for the case's
dispute), hold, notes, custody record and evidence packages, and closing
it. The pages are shells under the player's Content-Security-Policy; their
scripts (``static/cases.js``, ``static/case.js``) read and change cases
through ``/api/v1/cases`` with the sign-in session, so the API alone decides
and audits. A role that may not see cases (:data:`Action.CASE_VIEW`) gets a
page that says so and nothing else (403, audited as ``access.refused``).
Their texts come from :mod:`recarchive.api.i18n`, their frame from
:mod:`recarchive.api.staff_pages`.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from recarchive.access.policy import Action, allowed
from recarchive.access.services import Principal
from recarchive.api.i18n import language_response
from recarchive.api.player import _signed_in
from recarchive.api.staff_pages import refused_page, staff_page

router = APIRouter(tags=["player"], include_in_schema=False)
_STATUSES = ("open", "closed", "all")
#: What the pages' scripts say themselves (the rest is in the templates).
_SCRIPT_PREFIXES = (
    "cases.",
    "kind.",
    "status.",
    "facts.",
    "rec.",
    "link.",
    "player.",
    "notes.",
    "custody.",
    "exports.",
    "close.",
    "error.",
    "action.",
    "role.",
    "case.",
)


def _case_page(
    request: Request,
    principal: Principal,
    name: str,
    context: dict[str, Any],
    status_code: int = 200,
) -> Response:
    """A case page in the browser's language, with the messages its script needs."""
    return staff_page(request, principal, name, context, _SCRIPT_PREFIXES, status_code)


def _refused(request: Request, principal: Principal) -> Response:
    """The page of a role that may not see cases; the refusal is on record."""
    return refused_page(request, principal, "refused.body", _SCRIPT_PREFIXES)


@router.get("/player/cases", response_model=None)
def cases_page(request: Request, status: str = "open") -> Response:
    """The list of cases (open, closed or all) and the form that opens one."""
    principal = _signed_in(request)
    if principal is None:
        return RedirectResponse("/", status_code=303)
    if not allowed(principal.role, Action.CASE_VIEW):
        return _refused(request, principal)
    chosen = status if status in _STATUSES else "open"
    return _case_page(request, principal, "cases.html", {"status": chosen})


@router.get("/player/cases/{case_id}", response_model=None)
def case_page(request: Request, case_id: str) -> Response:
    """One case; its data is loaded by the page's script from the API."""
    principal = _signed_in(request)
    if principal is None:
        return RedirectResponse("/", status_code=303)
    if not allowed(principal.role, Action.CASE_VIEW):
        return _refused(request, principal)
    try:
        parsed = uuid.UUID(case_id)
    except ValueError:
        keys = {"title_key": "notfound.title", "body_key": "notfound.body"}
        return _case_page(request, principal, "case_refused.html", keys, 404)
    return _case_page(request, principal, "case.html", {"case_id": str(parsed)})


@router.post("/language", response_model=None)
def choose_language(
    request: Request,
    language: Annotated[str, Form(max_length=8)] = "",
    back: Annotated[str, Form(max_length=512)] = "/",
) -> Response:
    """The FI | EN switch: remember the language in the browser (and with the signed-in user),
    back to the same page."""
    principal = _signed_in(request)
    user_id = principal.user_id if principal is not None else None
    return language_response(request, language, back, user_id)
