"""Cross-site request forgery: requests that change something must come from this site.

Browsers name the page a request comes from in ``Origin`` (every POST, same
origin or not) and, failing that, ``Referer``. A request that can act on the
web player's cookie (any method but GET, HEAD and OPTIONS that carries the
cookie and no Authorization header), and every sign-in and sign-out, is
refused with 403 unless its ``Origin`` is this site's, or it has no
``Origin`` and its ``Referer`` is on this site. ``Sec-Fetch-Site`` is not
consulted: the check does not depend on a header older browsers omit.

"This site" is the scheme of the request (from a trusted proxy's
``X-Forwarded-Proto``, :mod:`recarchive.api.proxies`; also ``https`` when
``api.secure_cookies`` says a TLS proxy is in front) and its ``Host``.
Requests with a bearer token (scripts) carry no ambient credential and are
not checked.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request
from starlette.types import Scope

from recarchive.api.auth import COOKIE_NAME
from recarchive.errors import RefusedError
from recarchive.runtime import Runtime

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: Paths whose posts are always checked, cookie or not: sign-in (token or single
#: sign-on), sign-out, and the pages' language switch.
SESSION_PATHS = frozenset({"/session", "/session/oidc", "/session/end", "/language"})


def _site(url: str) -> tuple[str, str, int | None] | None:
    """``(scheme, host, port)`` of an absolute http(s) URL or origin; None if it is not one."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[parts.scheme]


def origin_refusal(headers: dict[str, str], scheme: str, *, also_https: bool = False) -> str | None:
    """None if the request comes from this site; else the reason code of the refusal.

    ``headers`` are the request's, lower-case names. Reasons:
    ``foreign_origin`` (an Origin, ``null`` included, of another site),
    ``foreign_referer`` (no Origin; a Referer of another site) and
    ``missing_origin`` (neither header).
    """
    host = headers.get("host", "")
    try:
        own = urlsplit(f"//{host}")
        own_host, own_port = (own.hostname or "").lower(), own.port
    except ValueError:
        return "foreign_origin"
    schemes = {scheme, "https"} if also_https else {scheme}

    def ours(url: str) -> bool:
        site = _site(url)
        if site is None or not own_host:
            return False
        their_scheme, their_host, their_port = site
        port = own_port or _DEFAULT_PORTS.get(their_scheme)
        return their_scheme in schemes and their_host == own_host and their_port == port

    origin = headers.get("origin")
    if origin is not None:
        return None if ours(origin) else "foreign_origin"
    referer = headers.get("referer")
    if referer is not None:
        return None if ours(referer) else "foreign_referer"
    return "missing_origin"


def needs_check(scope: Scope, cookie_name: str) -> bool:
    """Whether this request must pass :func:`origin_refusal` (see the module's docstring)."""
    if scope["type"] != "http" or scope["method"] in _SAFE_METHODS:
        return False
    if scope["path"] in SESSION_PATHS:
        return True
    names = {name for name, _ in scope.get("headers", [])}
    if b"authorization" in names or b"cookie" not in names:
        return False
    cookies = b"; ".join(value for name, value in scope["headers"] if name == b"cookie")
    return f"{cookie_name}=".encode() in cookies


class ForeignOrigin(RefusedError):
    """this request must come from a page of this site (its Origin or Referer names another
    site, or neither is given)"""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


def check_origin(request: Request) -> None:
    """A dependency of every route: :class:`ForeignOrigin` (403, audited as
    ``access.refused``) when :func:`needs_check` and :func:`origin_refusal` say so."""
    runtime: Runtime = request.app.state.runtime
    if not needs_check(request.scope, COOKIE_NAME):
        return
    headers = {
        name: request.headers[name]
        for name in ("host", "origin", "referer")
        if name in request.headers
    }
    reason = origin_refusal(
        headers, request.url.scheme, also_https=runtime.settings.api.secure_cookies
    )
    if reason is not None:
        raise ForeignOrigin(reason)
