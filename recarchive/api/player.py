"""The web player: sign in with a token, search, and listen for a stated purpose.

Server-rendered pages plus one script (``static/player.js``) that talks to the
same ``/api/v1`` endpoints as any other client, so every rule (roles,
purposes, restrictions, audit) is enforced there and nowhere else.

Signing in puts the token in an HttpOnly, SameSite=Strict cookie, which the
API accepts for GET and HEAD only: the ``<audio>`` element can then stream
with Range requests (it cannot send an Authorization header), while nothing
that changes data can ride on the cookie. Sign-in and sign-out refuse posts
that browsers mark as coming from another site. The pages carry a strict
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
from recarchive.access.policy import SEES_IDENTITY
from recarchive.access.services import Principal
from recarchive.api.auth import COOKIE_NAME, TokenCache, Unauthenticated, principal_for
from recarchive.runtime import Runtime

_HERE = Path(__file__).resolve().parent
SESSION_MAX_AGE_S = 12 * 3600
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
}

router = APIRouter(tags=["player"], include_in_schema=False)
router.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")
templates = Jinja2Templates(directory=_HERE / "templates")


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _signed_in(request: Request) -> Principal | None:
    """The principal of the sign-in cookie, or None when it is missing or no longer valid."""
    token = request.cookies.get(COOKIE_NAME)
    if not token or len(token) > _TOKEN_MAX_CHARS:
        return None
    cache: TokenCache = request.app.state.token_cache
    try:
        return principal_for(_runtime(request), cache, token)
    except Unauthenticated:
        return None


def _cross_site(request: Request) -> bool:
    """Whether the browser says this post came from another site (a forged form)."""
    site = request.headers.get("sec-fetch-site")
    return site is not None and site not in ("same-origin", "none")


def _page(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        name,
        {"version": __version__, **context},
        status_code=status_code,
        headers=_PAGE_HEADERS,
    )


def _signin_page(request: Request, message: str | None, status_code: int = 200) -> HTMLResponse:
    return _page(request, "signin.html", {"message": message}, status_code)


@router.get("/", response_model=None)
def signin_form(request: Request) -> Response:
    """The sign-in page; straight to the player when the cookie still holds a valid token."""
    if _signed_in(request) is not None:
        return RedirectResponse("/player", status_code=303)
    return _signin_page(request, None)


@router.post("/session", response_model=None)
def start_session(request: Request, token: Annotated[str, Form()] = "") -> Response:
    """Check the token and keep it in the sign-in cookie; the token is never echoed."""
    if _cross_site(request):
        return _signin_page(request, "Sign in from this page.", 403)
    token = token.strip()
    try:
        if not token or len(token) > _TOKEN_MAX_CHARS:
            raise Unauthenticated("invalid or expired token")
        principal_for(_runtime(request), request.app.state.token_cache, token)
    except Unauthenticated as exc:
        return _signin_page(request, f"Sign-in failed: {exc.message}.", 401)
    response = RedirectResponse("/player", status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=SESSION_MAX_AGE_S,
        path="/",
        secure=_runtime(request).settings.api.secure_cookies,
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/session/end", response_model=None)
def end_session(request: Request) -> Response:
    """Forget the sign-in cookie (the token itself stays valid until revoked or expired)."""
    if _cross_site(request):
        return _signin_page(request, "Sign out from the player page.", 403)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
    return response


@router.get("/player", response_model=None)
def player_page(request: Request) -> Response:
    """The player: search form, results, purpose dialog and audio controls."""
    principal = _signed_in(request)
    if principal is None:
        return RedirectResponse("/", status_code=303)
    context = {
        "user": principal.user_name,
        "role": principal.role.value,
        "sees_identity": principal.role in SEES_IDENTITY,
        "reason_codes": list(_runtime(request).settings.reasons.codes),
    }
    return _page(request, "player.html", context)
