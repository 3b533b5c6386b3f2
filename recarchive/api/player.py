"""The web player: sign in (a token, or single sign-on), search, listen for a stated purpose.

Server-rendered pages plus one script (``static/player.js``) that talks to the
same ``/api/v1`` endpoints as any other client, so every rule (roles,
purposes, restrictions, audit) is enforced there and nowhere else.

Signing in checks the token and opens a web session
(:mod:`recarchive.access.sessions`): the cookie holds the session's random
secret, never the token. Single sign-on (:mod:`recarchive.api.single_sign_on`)
opens the same kind of session, when ``[oidc]`` is configured. The API
accepts the cookie for GET and HEAD only: the ``<audio>`` element can then
stream with Range requests (it cannot send an Authorization header), while
nothing that changes data can ride on it.
Signing out deletes the session. Sign-in, sign-out and any other post that
carries the cookie must come from this site (:mod:`recarchive.api.origin`,
checked before these routes run). The pages carry a strict
Content-Security-Policy: no inline script, no third-party origin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from recarchive import __version__
from recarchive.access.policy import SEES_IDENTITY, Action, allowed
from recarchive.access.preferences import user_language
from recarchive.access.services import Principal
from recarchive.access.sessions import end_session as close_session
from recarchive.access.sessions import open_session
from recarchive.api import refusals
from recarchive.api.auth import COOKIE_NAME, Unauthenticated, principal_for, session_principal
from recarchive.api.i18n import remember_in_browser
from recarchive.runtime import Runtime

_HERE = Path(__file__).resolve().parent
#: Longer than any token recarchive issues; a longer "token" is refused unread.
_TOKEN_MAX_CHARS = 256
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
_PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-store",
    # Not no-referrer: under it browsers send "Origin: null" with the pages' own
    # posts, which the Origin check (recarchive.api.origin) must refuse.
    "Referrer-Policy": "same-origin",
}

router = APIRouter(tags=["player"], include_in_schema=False)
router.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")
templates = Jinja2Templates(directory=_HERE / "templates")


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _signed_in(request: Request) -> Principal | None:
    """The principal of the session cookie, or None when it is missing or has ended."""
    cookie = request.cookies.get(COOKIE_NAME)
    if not cookie:
        return None
    try:
        return session_principal(_runtime(request), cookie)
    except Unauthenticated:
        return None


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def _page(
    request: Request,
    name: str,
    context: dict[str, Any],
    status_code: int = 200,
    *,
    form_targets: tuple[str, ...] = (),
) -> HTMLResponse:
    """A page under :data:`CONTENT_SECURITY_POLICY`; ``form_targets``: origins its forms'
    answers may redirect to (``form-action`` covers redirects too)."""
    headers = dict(_PAGE_HEADERS)
    if form_targets:
        headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
            "form-action 'self'", " ".join(["form-action 'self'", *form_targets])
        )
    return templates.TemplateResponse(
        request,
        name,
        {"version": __version__, **context},
        status_code=status_code,
        headers=headers,
    )


def signin_page(request: Request, message: str | None, status_code: int = 200) -> HTMLResponse:
    """The sign-in page, with ``message`` (an error) if given; its single sign-on button
    when an OpenID provider is configured."""
    api = _runtime(request).settings.api
    oidc = _runtime(request).oidc
    context = {
        "message": message,
        "idle_minutes": api.session_idle_minutes,
        "session_hours": f"{api.session_hours:g}",
        "provider": oidc.display_name if oidc is not None else None,
    }
    targets = oidc.authorization_origins() if oidc is not None else ()
    return _page(request, "signin.html", context, status_code, form_targets=targets)


def signed_in_page(request: Request, principal: Principal) -> HTMLResponse:
    """The page a single sign-on lands on, which moves on to the player by itself.

    Not a redirect: the provider's redirect to recarchive is a cross-site
    navigation, and a browser withholds a SameSite=Strict cookie from every
    request of a navigation that began on another site, redirects included.
    This page's own navigation to the player begins on this site.
    """
    return _page(request, "signed_in.html", {"user": principal.user_name})


def set_session_cookie(
    response: Response, runtime: Runtime, cookie: str, language: str | None = None
) -> None:
    """Give the browser its session's cookie: HttpOnly, SameSite=Strict, Secure if so set;
    and the user's language, when they chose one (it follows them from browser to browser)."""
    if language is not None:
        remember_in_browser(response, runtime, language)
    response.set_cookie(
        COOKIE_NAME,
        cookie,
        max_age=round(runtime.settings.api.session_hours * 3600),
        path="/",
        secure=runtime.settings.api.secure_cookies,
        httponly=True,
        samesite="strict",
    )


def landing_path(principal: Principal) -> str:
    """Where a signed-in user starts: the search page, or an agent's own evaluations
    (``qa.self`` without ``search``: an agent may not search)."""
    role = principal.role
    if allowed(role, Action.QA_SELF) and not allowed(role, Action.SEARCH):
        return "/player/my"
    return "/player"


@router.get("/", response_model=None)
def signin_form(request: Request) -> Response:
    """The sign-in page; straight to the player when the cookie still holds a valid token."""
    principal = _signed_in(request)
    if principal is not None:
        return RedirectResponse(landing_path(principal), status_code=303)
    return signin_page(request, None)


@router.post("/session", response_model=None)
def start_session(request: Request, token: Annotated[str, Form()] = "") -> Response:
    """Check the token and open a session; the cookie holds the session's secret, never the
    token, and the token is never echoed. A refusal is audited (``auth.refused``)."""
    runtime = _runtime(request)
    token = token.strip()
    try:
        if not token or len(token) > _TOKEN_MAX_CHARS:
            raise Unauthenticated(
                "invalid or expired token", "malformed" if token else "missing_token"
            )
        principal = principal_for(runtime, request.app.state.token_cache, token)
    except Unauthenticated as exc:
        request.app.state.refusals.refused(refusals.unauthenticated(request.scope, exc))
        return signin_page(request, f"Sign-in failed: {exc.message}.", 401)
    opened = open_session(runtime, principal, client_addr=_client(request))
    response = RedirectResponse(landing_path(principal), status_code=303)
    set_session_cookie(response, runtime, opened.cookie, user_language(runtime, principal.user_id))
    return response


@router.post("/session/end", response_model=None)
def end_session(request: Request) -> Response:
    """Sign out: delete the session (a copy of the cookie opens nothing) and the cookie."""
    cookie = request.cookies.get(COOKIE_NAME)
    if cookie:
        principal = _signed_in(request)
        close_session(_runtime(request), cookie, client_addr=_client(request), principal=principal)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(
        COOKIE_NAME,
        path="/",
        secure=_runtime(request).settings.api.secure_cookies,
        httponly=True,
        samesite="strict",
    )
    return response


@router.get("/player", response_model=None)
def player_page(request: Request) -> Response:
    """The player: search form, results, purpose dialog and audio controls (an agent, who
    may not search, goes to their own evaluations)."""
    principal = _signed_in(request)
    if principal is None:
        return RedirectResponse("/", status_code=303)
    if landing_path(principal) != "/player":
        return RedirectResponse(landing_path(principal), status_code=303)
    context = {
        "user": principal.user_name,
        "role": principal.role.value,
        "sees_identity": principal.role in SEES_IDENTITY,
        "reason_codes": list(_runtime(request).settings.reasons.codes),
        "sees_cases": allowed(principal.role, Action.CASE_VIEW),
        "takes_notes": allowed(principal.role, Action.QA_NOTE),
    }
    return _page(request, "player.html", context)
