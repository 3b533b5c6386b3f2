"""The ``[oidc]`` settings: single sign-on with an OpenID Connect provider.

Off while ``issuer`` is empty. The client secret is a secret like the
others (``RECARCHIVE_OIDC_CLIENT_SECRET``, its ``_FILE`` variant or
``oidc.client_secret_file``), never a value in the TOML file.
"""

from __future__ import annotations

import ipaddress
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from recarchive.config_base import OptionalPath, _Section

#: The roles a claim value may map to: recarchive.access.models.Role's values (a unit
#: test keeps the two in step; configuration sits below the access domain).
RoleName = Literal["qa_trainer", "dispute_handler", "privacy_officer", "auditor", "admin", "agent"]

#: Signature algorithms an ID token may use. Asymmetric only: an HS256 token is
#: "signed" with the client secret, which the archive itself holds.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_LOOPBACK_NAMES = frozenset({"localhost"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(value: str, *, what: str) -> str:
    """``value`` if it is an absolute https URL (http only on loopback), without a fragment."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - parsing the port raises ValueError on a bad one
    except ValueError as exc:
        raise ValueError(f"{what} {value!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an absolute https:// URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError(f"{what} must use https:// (http:// only on loopback)")
    if parts.fragment or parts.username or parts.password:
        raise ValueError(f"{what} must have no fragment and no user name or password")
    return value


class OidcSettings(_Section):
    #: The provider's issuer identifier; empty turns single sign-on off.
    issuer: str = ""
    client_id: str = Field(default="", max_length=256)
    client_secret_file: OptionalPath = None
    token_endpoint_auth_method: Literal["client_secret_basic", "client_secret_post", "none"] = (
        "client_secret_basic"  # noqa: S105 - the name of a method, not a secret
    )
    #: Where the provider sends the browser back; empty: <the request's site>/oidc/callback.
    redirect_url: str = ""
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "email"])
    #: Shown on the sign-in button; empty: the issuer's host name.
    display_name: str = Field(default="", max_length=64)
    role_claim: str = Field(default="recarchive_role", min_length=1, max_length=256)
    roles: dict[str, RoleName] = Field(default_factory=dict)
    username_claim: str = Field(default="preferred_username", min_length=1, max_length=256)
    use_userinfo: bool = True
    id_token_algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "PS256", "ES256", "EdDSA"], min_length=1
    )
    #: Minutes a started sign-in may take at the provider before it is refused.
    sign_in_minutes: int = Field(default=10, ge=1, le=60)
    http_timeout_s: float = Field(default=10.0, gt=0, le=120)
    #: Seconds the provider's discovery document and keys are kept before they are read again.
    metadata_cache_s: int = Field(default=3600, ge=0, le=7 * 24 * 3600)
    clock_skew_s: int = Field(default=60, ge=0, le=600)

    @property
    def enabled(self) -> bool:
        return bool(self.issuer)

    @field_validator("issuer")
    @classmethod
    def _issuer_url(cls, value: str) -> str:
        if value and urlsplit(value).query:
            raise ValueError("the issuer must have no query string")
        return check_url(value, what="the issuer") if value else value

    @field_validator("redirect_url")
    @classmethod
    def _redirect_url(cls, value: str) -> str:
        return check_url(value, what="the redirect URL") if value else value

    @field_validator("scopes")
    @classmethod
    def _openid_scope(cls, value: list[str]) -> list[str]:
        scopes = [scope.strip() for scope in value if scope.strip()]
        if "openid" not in scopes:
            raise ValueError('must include "openid"')
        bad = [scope for scope in scopes if not scope.isprintable() or " " in scope]
        if bad:
            raise ValueError(f"scope {bad[0]!r} is not a single word")
        return scopes

    @field_validator("id_token_algorithms")
    @classmethod
    def _asymmetric(cls, value: list[str]) -> list[str]:
        unknown = [alg for alg in value if alg not in ASYMMETRIC_ALGORITHMS]
        if unknown:
            allowed = ", ".join(sorted(ASYMMETRIC_ALGORITHMS))
            raise ValueError(f"{unknown[0]!r} is not allowed (allowed: {allowed})")
        return value

    @field_validator("roles")
    @classmethod
    def _claim_values(cls, value: dict[str, RoleName]) -> dict[str, RoleName]:
        if any(not claim.strip() for claim in value):
            raise ValueError("a claim value must not be empty")
        return value

    @model_validator(mode="after")
    def _complete(self) -> OidcSettings:
        if not self.enabled:
            return self
        if not self.client_id:
            raise ValueError("oidc.client_id must be set when oidc.issuer is")
        if not self.roles:
            raise ValueError(
                "oidc.roles must map at least one value of the role claim to a role "
                "when oidc.issuer is set"
            )
        return self
