"""The OpenID Connect relying party: authorisation code flow with PKCE, state and nonce.

Built on maintained libraries: authlib writes the authorisation request
(PKCE S256) and the token request (client authentication), joserfc verifies
the ID token's signature against the provider's keys, and authlib's
``CodeIDToken`` checks its claims (``iss``, ``aud``, ``exp``, ``iat``,
``nonce``, ``azp``, ``at_hash``). httpx talks to the provider.

The provider's discovery document (``<issuer>/.well-known/openid-configuration``)
and keys (``jwks_uri``) are read when first needed and kept for
``oidc.metadata_cache_s``; an ID token signed with a key id not among them
reads the keys again at once (a rotated key), at most once a minute. The
discovery document must name the configured issuer exactly and offer S256.

Errors: :class:`~recarchive.access.sign_ins.SignInFailed` (refused, with a
reason code) when the provider's answer does not check out;
:class:`ProviderUnavailable` (503) when the provider cannot be reached or
answers nonsense.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

import httpx
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.client import OAuth2Client
from authlib.oauth2.rfc6749.parameters import prepare_token_request
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import ClaimError, InvalidKeyIdError, JoseError, MissingKeyError
from joserfc.jwk import KeySet

from recarchive.access.federation import VerifiedIdentity
from recarchive.access.sign_ins import SignInFailed, TakenSignIn
from recarchive.config_oidc import OidcSettings, check_url
from recarchive.errors import ProviderUnavailable

logger = logging.getLogger(__name__)

__all__ = ["KEYS_REFRESH_MIN_S", "OidcClient", "ProviderMetadata", "ProviderUnavailable"]

#: Shortest time between two reads of the keys for an unknown key id.
KEYS_REFRESH_MIN_S = 60.0
_MAX_RESPONSE_BYTES = 1024 * 1024
#: What of a provider's error is logged: its code (``invalid_grant``...), never free text.
_ERROR_CODE = re.compile(r"[a-z_0-9]{1,64}")


@dataclasses.dataclass(frozen=True)
class ProviderMetadata:
    """What recarchive uses of the provider's discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    #: RFC 9207: the provider names itself (``iss``) in its answers to the redirect URL.
    iss_parameter_supported: bool


def _endpoint(document: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = document.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ProviderUnavailable(f"the provider's discovery document has no {name}")
    try:
        return check_url(value, what=name)
    except ValueError as exc:
        raise ProviderUnavailable(f"the provider's discovery document: {exc}") from None


def _origin(url: str) -> str:
    parsed = httpx.URL(url)
    default = {"http": 80, "https": 443}.get(parsed.scheme)
    port = f":{parsed.port}" if parsed.port not in (None, default) else ""
    return f"{parsed.scheme}://{parsed.host}{port}"


class OidcClient:
    """One installation's relying party; thread-safe, shared by a process's requests."""

    def __init__(
        self,
        settings: OidcSettings,
        client_secret: str | None,
        *,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._client_secret = client_secret
        self._http = http or httpx.Client(
            timeout=settings.http_timeout_s, follow_redirects=False, trust_env=False
        )
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._metadata: tuple[ProviderMetadata, float] | None = None
        self._keys: tuple[KeySet, float] | None = None
        self._keys_read_at = float("-inf")

    def close(self) -> None:
        self._http.close()

    @property
    def display_name(self) -> str:
        """The provider's name on the sign-in button."""
        if self.settings.display_name:
            return self.settings.display_name
        return httpx.URL(self.settings.issuer).host or self.settings.issuer

    def authorization_origins(self) -> tuple[str, ...]:
        """The origins a sign-in may be redirected to: the issuer's and, once known, the
        authorisation endpoint's (for the sign-in page's ``form-action``). Reads nothing."""
        origins = [_origin(self.settings.issuer)]
        with self._lock:
            cached = self._metadata
        if cached is not None:
            origins.append(_origin(cached[0].authorization_endpoint))
        return tuple(dict.fromkeys(origins))

    # --- the provider's documents ------------------------------------------------

    def _get_json(self, url: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.get(url, **kwargs)
        except httpx.HTTPError as exc:
            logger.warning("oidc_provider_unreachable", extra={"error": type(exc).__name__})
            raise ProviderUnavailable() from exc
        return self._json(response, url)

    def _json(self, response: httpx.Response, url: str) -> dict[str, Any]:
        if len(response.content) > _MAX_RESPONSE_BYTES:
            raise ProviderUnavailable(f"the provider's answer from {url} is too large")
        try:
            document = response.json()
        except ValueError:
            document = None
        if not isinstance(document, dict):
            logger.warning(
                "oidc_provider_bad_answer", extra={"status": response.status_code, "url": url}
            )
            raise ProviderUnavailable(f"the provider's answer from {url} is not a JSON object")
        return document

    def metadata(self) -> ProviderMetadata:
        """The discovery document's endpoints (cached; :class:`ProviderUnavailable`)."""
        with self._lock:
            cached = self._metadata
            if cached is not None and cached[1] > self._monotonic():
                return cached[0]
        url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = self._get_json(url)
        if document.get("issuer") != self.settings.issuer:
            raise ProviderUnavailable(
                "the provider's discovery document names another issuer than oidc.issuer"
            )
        methods = document.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise ProviderUnavailable("the provider does not offer PKCE with S256")
        metadata = ProviderMetadata(
            issuer=self.settings.issuer,
            authorization_endpoint=cast(str, _endpoint(document, "authorization_endpoint")),
            token_endpoint=cast(str, _endpoint(document, "token_endpoint")),
            jwks_uri=cast(str, _endpoint(document, "jwks_uri")),
            userinfo_endpoint=_endpoint(document, "userinfo_endpoint", required=False),
            iss_parameter_supported=document.get("authorization_response_iss_parameter_supported")
            is True,
        )
        with self._lock:
            self._metadata = (metadata, self._monotonic() + self.settings.metadata_cache_s)
        return metadata

    def _key_set(self, *, refresh: bool = False) -> KeySet:
        with self._lock:
            cached = self._keys
            fresh = cached is not None and cached[1] > self._monotonic()
            if cached is not None and (fresh and not refresh):
                return cached[0]
            recently = self._monotonic() - self._keys_read_at < KEYS_REFRESH_MIN_S
            if cached is not None and refresh and recently:
                return cached[0]
        document = self._get_json(self.metadata().jwks_uri)
        try:
            keys = KeySet.import_key_set(cast(Any, document))
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise ProviderUnavailable("the provider's keys (jwks_uri) cannot be read") from exc
        with self._lock:
            now = self._monotonic()
            self._keys = (keys, now + self.settings.metadata_cache_s)
            self._keys_read_at = now
        logger.info("oidc_keys_read", extra={"keys": len(keys.keys)})
        return keys

    # --- the flow ------------------------------------------------------------------

    def authorization_url(
        self, *, redirect_url: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        """Where to send the browser: the authorisation request, with S256 PKCE and nonce."""
        client = OAuth2Client(
            None,
            client_id=self.settings.client_id,
            scope=" ".join(self.settings.scopes),
            redirect_uri=redirect_url,
            code_challenge_method="S256",
        )
        url, _state = client.create_authorization_url(
            self.metadata().authorization_endpoint,
            state=state,
            code_verifier=code_verifier,
            nonce=nonce,
        )
        return cast(str, url)

    def check_answer_issuer(self, iss: str | None) -> None:
        """RFC 9207: the answer's ``iss``, when given (or promised), names our provider."""
        if iss is None and not self.metadata().iss_parameter_supported:
            return
        if iss != self.settings.issuer:
            raise SignInFailed("wrong_issuer")

    def redeem(self, code: str, taken: TakenSignIn) -> VerifiedIdentity:
        """Exchange ``code`` for tokens, verify the ID token, read userinfo; who signed in."""
        metadata = self.metadata()
        tokens = self._token_request(metadata, code, taken)
        id_token, access_token = tokens.get("id_token"), tokens.get("access_token")
        if not isinstance(id_token, str) or not isinstance(access_token, str):
            raise SignInFailed("token_refused", "the provider's answer has no ID token")
        claims = self.verify_id_token(id_token, nonce=taken.nonce, access_token=access_token)
        if self.settings.use_userinfo and metadata.userinfo_endpoint:
            userinfo = self._userinfo(metadata.userinfo_endpoint, access_token)
            if userinfo.get("sub") != claims["sub"]:
                raise SignInFailed("invalid_userinfo")
            protected = {"iss", "sub", "aud", "exp", "iat", "nonce", "azp"}
            claims = {**claims, **{k: v for k, v in userinfo.items() if k not in protected}}
        return VerifiedIdentity(issuer=metadata.issuer, subject=claims["sub"], claims=claims)

    def _token_request(
        self, metadata: ProviderMetadata, code: str, taken: TakenSignIn
    ) -> dict[str, Any]:
        body = prepare_token_request(
            "authorization_code",
            code=code,
            redirect_uri=taken.redirect_url,
            code_verifier=taken.code_verifier,
        )
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
        }
        auth = ClientAuth(
            self.settings.client_id, self._client_secret, self.settings.token_endpoint_auth_method
        )
        url, headers, body = auth.prepare("POST", metadata.token_endpoint, headers, body)
        try:
            response = self._http.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            logger.warning("oidc_provider_unreachable", extra={"error": type(exc).__name__})
            raise ProviderUnavailable() from exc
        if response.status_code >= 500:
            raise ProviderUnavailable(
                f"the provider's token endpoint answered {response.status_code}"
            )
        document = self._json(response, url)
        if response.status_code != 200 or "error" in document:
            error = str(document.get("error", response.status_code))
            error = error if _ERROR_CODE.fullmatch(error) else "other"
            logger.info("oidc_token_refused", extra={"error": error})
            raise SignInFailed("token_refused")
        if str(document.get("token_type", "")).lower() != "bearer":
            raise SignInFailed("token_refused", "the provider issued no bearer token")
        return document

    def verify_id_token(
        self, id_token: str, *, nonce: str, access_token: str | None = None
    ) -> dict[str, Any]:
        """The ID token's claims, once its signature and claims check out (:class:`SignInFailed`:
        ``invalid_id_token``, ``wrong_nonce``)."""
        algorithms = list(self.settings.id_token_algorithms)
        try:
            try:
                token = jwt.decode(id_token, self._key_set(), algorithms=algorithms)
            except (InvalidKeyIdError, MissingKeyError):  # a key the provider rotated in?
                token = jwt.decode(id_token, self._key_set(refresh=True), algorithms=algorithms)
        except (JoseError, ValueError) as exc:
            logger.info("oidc_id_token_refused", extra={"error": type(exc).__name__})
            raise SignInFailed("invalid_id_token") from None
        checked = CodeIDToken(
            token.claims,
            dict(token.header),
            options={
                "iss": {"essential": True, "value": self.settings.issuer},
                "aud": {"essential": True, "value": self.settings.client_id},
                "sub": {"essential": True},
            },
            params={
                "nonce": nonce,
                "client_id": self.settings.client_id,
                "access_token": access_token,
            },
        )
        try:
            checked.validate(now=int(self._clock()), leeway=self.settings.clock_skew_s)
        except JoseError as exc:
            claim = exc.claim if isinstance(exc, ClaimError) else None
            logger.info(
                "oidc_id_token_refused", extra={"error": type(exc).__name__, "claim": claim}
            )
            reason = "wrong_nonce" if claim == "nonce" else "invalid_id_token"
            raise SignInFailed(reason) from None
        subject = checked.get("sub")
        if not isinstance(subject, str) or not 0 < len(subject) <= 255:
            raise SignInFailed("invalid_id_token")
        return dict(checked)

    def _userinfo(self, url: str, access_token: str) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        try:
            response = self._http.get(url, headers=headers)
        except httpx.HTTPError as exc:
            raise ProviderUnavailable() from exc
        if response.status_code != 200:
            logger.info("oidc_userinfo_refused", extra={"status": response.status_code})
            raise SignInFailed("invalid_userinfo")
        return self._json(response, url)
