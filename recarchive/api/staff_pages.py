"""What the staff pages share: a page in the browser's language with the messages its
script needs, the header's links by role, and the refusal page.

Each area of the web player has its own module of page routes (dispute cases in
:mod:`recarchive.api.case_pages`, QA in :mod:`recarchive.api.qa_pages`); they
render through :func:`staff_page` and refuse through :func:`refused_page`, so
every page has the same header (links to what the role may see, the FI | EN
switch, sign-out), the same Content-Security-Policy, and a refusal that is on
record (``access.refused``). A page's script gets only the messages under its
area's prefixes (a JSON data block, never run); :data:`SHARED_PREFIXES` are what
``static/pages.js`` itself says.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from recarchive.access.policy import Action, Forbidden, allowed
from recarchive.access.services import Principal
from recarchive.api import refusals
from recarchive.api.i18n import Messages, messages_for
from recarchive.api.player import _page, _signed_in

#: Messages every page's script may need (pages.js: errors, the dash of a missing value).
SHARED_PREFIXES: tuple[str, ...] = ("error.", "facts.none", "role.")


def staff_page(
    request: Request,
    principal: Principal,
    name: str,
    context: dict[str, Any],
    prefixes: tuple[str, ...],
    status_code: int = 200,
) -> Response:
    """Template ``name`` in the browser's language, with the messages under ``prefixes``."""
    messages: Messages = messages_for(request)
    script_messages: dict[str, str] = {}
    for prefix in (*SHARED_PREFIXES, *prefixes):
        script_messages.update(messages.prefixed(prefix))
    base = {
        "lang": messages.language,
        "t": messages.text,
        "messages": script_messages,
        "back": request.url.path,
        "user": principal.user_name,
        "role_label": messages.text(f"role.{principal.role.value}"),
        "sees_cases": allowed(principal.role, Action.CASE_VIEW),
        "sees_qa": allowed(principal.role, Action.QA_SAMPLE),
        "sees_own": allowed(principal.role, Action.QA_SELF),
    }
    return _page(request, name, {**base, **context}, status_code)


def refused_page(
    request: Request, principal: Principal, body_key: str, prefixes: tuple[str, ...]
) -> Response:
    """The page of a role the area is not for (403); the refusal is on record."""
    refusal = refusals.forbidden(request.scope, Forbidden(), principal)
    request.app.state.refusals.refused(refusal)
    keys = {"title_key": "refused.title", "body_key": body_key}
    return staff_page(request, principal, "case_refused.html", keys, prefixes, 403)


def role_page(
    request: Request,
    action: Action,
    name: str,
    *,
    refusal_key: str,
    prefixes: tuple[str, ...],
    context: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    """Page ``name`` for a role ``action`` is allowed to; the refusal page (under
    ``refusal_key``) for the others; sign-in for a browser without a session."""
    principal: Principal | None = _signed_in(request)
    if principal is None:
        return RedirectResponse("/", status_code=303)
    if not allowed(principal.role, action):
        return refused_page(request, principal, refusal_key, prefixes)
    return staff_page(request, principal, name, context or {}, prefixes, status_code)
