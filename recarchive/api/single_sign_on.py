"""Single sign-on for the web player: OpenID Connect, authorisation code flow with PKCE.

``POST /session/oidc`` (the sign-in page's button; Origin-checked like every
sign-in, :mod:`recarchive.api.origin`) starts a sign-on
(:func:`~recarchive.access.sign_ins.begin_sign_in`), gives the browser a
cookie that binds the sign-on to it (``recarchive_sign_in``: HttpOnly,
SameSite=Lax so that it comes back with the provider's redirect, path
``/oidc``, minutes long) and sends it to the provider.

``GET /oidc/callback`` is where the provider sends it back: the state is
taken (single use, same browser, in time), the provider's ``iss`` checked
(RFC 9207), the code redeemed with the PKCE verifier, the ID token verified
(:mod:`recarchive.access.oidc`), the user found or provisioned
(:mod:`recarchive.access.federation`), and a web session opened, the same
kind a token's sign-in opens. Every refusal answers a page that says what to
do and is audited: ``auth.refused`` when the sign-on itself fails
(``oidc_unknown_state``, ``oidc_wrong_nonce``...), ``access.refused`` when the
person may not use recarchive (``oidc_unknown_role``, ``oidc_user_disabled``...).
Off (404) when no ``oidc.issuer`` is configured.
"""

from __future__ import annotations

import logging
import re

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from recarchive.access.federation import SignInRefused, sign_in
from recarchive.access.oidc import OidcClient, ProviderUnavailable
from recarchive.access.preferences import user_language
from recarchive.access.services import Principal
from recarchive.access.sessions import open_session
from recarchive.access.sign_ins import SignInFailed, begin_sign_in, take_sign_in
from recarchive.api.player import set_session_cookie, signed_in_page, signin_page
from recarchive.api.refusals import Refusal
from recarchive.errors import NotFoundError
from recarchive.runtime import Runtime

logger = logging.getLogger(__name__)

BROWSER_COOKIE = "recarchive_sign_in"
CALLBACK_PATH = "/oidc/callback"
_PARAM_MAX_CHARS = 2048
_ERROR_CODE = re.compile(r"[a-z_]{1,64}")

router = APIRouter(tags=["player"], include_in_schema=False)


class SingleSignOnOff(NotFoundError):
    """single sign-on is not configured"""


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _client(request: Request) -> OidcClient:
    client = _runtime(request).oidc
    if client is None:
        raise SingleSignOnOff()
    return client


def _client_addr(request: Request) -> str | None:
    return request.client.host if request.client else None


def _redirect_url(request: Request, client: OidcClient) -> str:
    """``oidc.redirect_url``, or this site's callback (development)."""
    if client.settings.redirect_url:
        return client.settings.redirect_url
    return str(request.url.replace(path=CALLBACK_PATH, query="", fragment=""))


def _forget_browser(response: Response, runtime: Runtime) -> None:
    response.delete_cookie(
        BROWSER_COOKIE,
        path="/oidc",
        secure=runtime.settings.api.secure_cookies,
        httponly=True,
        samesite="lax",
    )


@router.post("/session/oidc", response_model=None)
async def start_sign_on(request: Request) -> Response:
    """Start a single sign-on: to the provider, with state, nonce and S256 PKCE."""
    client = _client(request)
    runtime = _runtime(request)
    redirect_url = _redirect_url(request, client)
    try:
        await run_in_threadpool(client.metadata)  # the provider answers, before anything is stored
        started = await run_in_threadpool(begin_sign_in, runtime, redirect_url)
        url = client.authorization_url(
            redirect_url=redirect_url,
            state=started.state,
            nonce=started.nonce,
            code_verifier=started.code_verifier,
        )
    except (ProviderUnavailable, SignInFailed) as exc:
        logger.warning("oidc_start_failed", extra={"error": type(exc).__name__})
        return signin_page(request, f"Single sign-on is unavailable: {exc.message}.", 503)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        BROWSER_COOKIE,
        started.browser_cookie,
        max_age=runtime.settings.oidc.sign_in_minutes * 60,
        path="/oidc",
        secure=runtime.settings.api.secure_cookies,
        httponly=True,
        samesite="lax",
    )
    return response


@router.get(CALLBACK_PATH, response_model=None)
async def finish_sign_on(request: Request) -> Response:
    """The provider's answer: check it, find or provision the user, open a session."""
    client = _client(request)
    runtime = _runtime(request)
    try:
        principal = await run_in_threadpool(_finish, request, client, runtime)
    except SignInFailed as exc:
        await run_in_threadpool(_audit, request, "auth.refused", exc.reason)
        response = signin_page(request, f"Single sign-on failed: {exc.message}.", 400)
    except SignInRefused as exc:
        await run_in_threadpool(_audit, request, "access.refused", exc.reason, exc)
        response = signin_page(request, f"Single sign-on refused: {exc.message}.", 403)
    except ProviderUnavailable as exc:
        logger.warning("oidc_finish_failed", extra={"error": type(exc).__name__})
        response = signin_page(request, f"Single sign-on is unavailable: {exc.message}.", 503)
    else:
        opened = await run_in_threadpool(
            open_session, runtime, principal, client_addr=_client_addr(request)
        )
        language = await run_in_threadpool(user_language, runtime, principal.user_id)
        response = signed_in_page(request, principal)
        set_session_cookie(response, runtime, opened.cookie, language)
    _forget_browser(response, runtime)
    return response


def error_code(value: str) -> str:
    """An OAuth error code as sent (``access_denied``...), or ``other``: never free text."""
    return value if _ERROR_CODE.fullmatch(value) else "other"


def _finish(request: Request, client: OidcClient, runtime: Runtime) -> Principal:
    params = request.query_params
    if any(len(value) > _PARAM_MAX_CHARS for value in params.values()):
        raise SignInFailed("malformed_answer")
    state = params.get("state", "")
    taken = take_sign_in(runtime, state, request.cookies.get(BROWSER_COOKIE))
    client.check_answer_issuer(params.get("iss"))
    if "error" in params:
        logger.info("oidc_provider_error", extra={"error": error_code(params["error"])})
        message = "the sign-in provider did not sign you in"
        if params["error"] == "access_denied":
            message = "the sign-in provider refused (or you cancelled) the sign-in"
        raise SignInFailed("provider_error", message)
    code = params.get("code")
    if not code:
        raise SignInFailed("malformed_answer")
    return sign_in(runtime, client.redeem(code, taken))


def _audit(
    request: Request, action: str, reason: str, refused: SignInRefused | None = None
) -> None:
    client = _client(request)
    extra: list[tuple[str, str]] = [("sign_in", "oidc"), ("issuer", client.settings.issuer)]
    if refused is not None and refused.claimed:
        extra.append(("role_claim", ",".join(refused.claimed)[:256]))
    if refused is not None and refused.claimed_user and not refused.user_name:
        extra.append(("claimed_user", refused.claimed_user))
    refusal = Refusal(
        action=action,
        reason=f"oidc_{reason}",
        method=request.method,
        route=CALLBACK_PATH,
        client_addr=_client_addr(request),
        user_name=refused.user_name if refused else None,
        role=refused.role.value if refused and refused.role else None,
        extra=tuple(extra),
    )
    request.app.state.refusals.refused(refusal)
