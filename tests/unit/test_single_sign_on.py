"""Single sign-on's pure parts: the [oidc] settings, the role claim's mapping, user names,
and the ID-token checks (with keys made here; the flow itself is tested against a real
provider in tests/integration/test_api_single_sign_on.py)."""

from __future__ import annotations

import json
import time
import typing
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey
from joserfc.util import urlsafe_b64encode

from recarchive.access.federation import (
    SignInRefused,
    find_claim,
    role_from_claims,
    user_name_from_claims,
)
from recarchive.access.models import Role
from recarchive.access.oidc import OidcClient
from recarchive.access.sign_ins import SignInFailed
from recarchive.config import load_settings
from recarchive.config_oidc import OidcSettings, RoleName
from recarchive.errors import ConfigError, SecretMissing

ISSUER = "https://idp.example.fi/realms/staff"
ROLES: dict[str, RoleName] = {
    "recarchive-qa": "qa_trainer",
    "recarchive-disputes": "dispute_handler",
    "/recarchive/privacy": "privacy_officer",
}


def oidc(**overrides: Any) -> OidcSettings:
    values: dict[str, Any] = {"issuer": ISSUER, "client_id": "recarchive", "roles": ROLES}
    values.update(overrides)
    return OidcSettings(**values)


# --- settings ----------------------------------------------------------------------


def test_role_names_are_the_roles() -> None:
    assert set(typing.get_args(RoleName)) == {role.value for role in Role}


def test_off_without_an_issuer() -> None:
    settings = load_settings(env={})
    assert not settings.oidc.enabled


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recarchive.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('issuer = "http://idp.example.fi"\nclient_id = "x"', "must use https://"),
        ('issuer = "https://idp.example.fi"', "oidc.client_id must be set"),
        ('issuer = "https://idp.example.fi"\nclient_id = "x"', "oidc.roles must map"),
        ('issuer = "https://idp.example.fi?x=1"', "no query string"),
        ('scopes = ["profile"]', 'must include "openid"'),
        ('id_token_algorithms = ["HS256"]', "'HS256' is not allowed"),
        ('id_token_algorithms = ["none"]', "'none' is not allowed"),
        ('redirect_url = "ftp://x"', "absolute https:// URL"),
        ('[oidc.roles]\nstaff = "superuser"', "oidc.roles.staff"),
    ],
)
def test_bad_settings_name_the_setting(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=r"oidc") as error:
        load_settings(write(tmp_path, f"[oidc]\n{text}\n"), env={})
    assert expected in str(error.value)


def test_a_complete_section_loads(tmp_path: Path) -> None:
    text = (
        '[oidc]\nissuer = "https://idp.example.fi/realms/staff"\nclient_id = "recarchive"\n'
        'role_claim = "realm_access.roles"\n[oidc.roles]\n"recarchive-qa" = "qa_trainer"\n'
    )
    settings = load_settings(write(tmp_path, text), env={})
    assert settings.oidc.enabled
    assert settings.oidc.roles == {"recarchive-qa": "qa_trainer"}


def test_http_issuer_only_on_loopback() -> None:
    assert oidc(issuer="http://127.0.0.1:9000").enabled
    assert oidc(issuer="http://localhost:9000").enabled


def test_production_needs_a_fixed_https_redirect_url(tmp_path: Path) -> None:
    text = (
        '[general]\nenvironment = "production"\n[oidc]\nissuer = "https://idp.example.fi"\n'
        'client_id = "x"\n[oidc.roles]\nqa = "qa_trainer"\n'
    )
    with pytest.raises(ConfigError, match=r"oidc.redirect_url must be set"):
        load_settings(write(tmp_path, text), env={})


def test_roles_are_not_taken_from_the_environment() -> None:
    with pytest.raises(ConfigError, match="RECARCHIVE_OIDC_ROLES names no setting"):
        load_settings(env={"RECARCHIVE_OIDC_ROLES": "x=admin"})


def test_the_client_secret_is_a_secret(tmp_path: Path) -> None:
    settings = load_settings(env={"RECARCHIVE_OIDC_CLIENT_SECRET": "s3cr3t-from-the-environment"})
    assert settings.secret("oidc_client_secret") == "s3cr3t-from-the-environment"
    assert "s3cr3t" not in json.dumps(settings.model_dump(mode="json"))
    with pytest.raises(SecretMissing, match="RECARCHIVE_OIDC_CLIENT_SECRET"):
        load_settings(env={"RECARCHIVE_GENERAL_DATA_DIR": str(tmp_path)}).secret(
            "oidc_client_secret"
        )


# --- the role claim ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "role"),
    [
        ({"recarchive_role": "recarchive-qa"}, Role.QA_TRAINER),
        ({"recarchive_role": ["staff", "recarchive-disputes"]}, Role.DISPUTE_HANDLER),
        ({"recarchive_role": ["recarchive-qa", "recarchive-qa"]}, Role.QA_TRAINER),
        ({"recarchive_role": ["/recarchive/privacy"]}, Role.PRIVACY_OFFICER),
    ],
)
def test_the_role_claim_maps_to_one_role(claims: dict[str, Any], role: Role) -> None:
    assert role_from_claims(claims, oidc()) == role


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({}, "missing_role_claim"),
        ({"recarchive_role": []}, "missing_role_claim"),
        ({"recarchive_role": "janitor"}, "unknown_role"),
        ({"recarchive_role": "QA_TRAINER"}, "unknown_role"),  # role names are not claim values
        ({"recarchive_role": "qa_trainer"}, "unknown_role"),
        ({"recarchive_role": ["recarchive-qa", "recarchive-disputes"]}, "ambiguous_role"),
        ({"recarchive_role": {"role": "recarchive-qa"}}, "malformed_role_claim"),
        ({"recarchive_role": ["recarchive-qa", 7]}, "malformed_role_claim"),
    ],
)
def test_a_role_claim_that_gives_no_single_role_is_refused(
    claims: dict[str, Any], reason: str
) -> None:
    with pytest.raises(SignInRefused) as refused:
        role_from_claims(claims, oidc())
    assert refused.value.reason == reason


def test_nested_and_dotted_claims() -> None:
    keycloak = {"realm_access": {"roles": ["offline_access", "recarchive-qa"]}}
    assert role_from_claims(keycloak, oidc(role_claim="realm_access.roles")) == Role.QA_TRAINER
    namespaced = {"https://example.fi/roles": "recarchive-disputes"}
    settings = oidc(role_claim="https://example.fi/roles")
    assert role_from_claims(namespaced, settings) == Role.DISPUTE_HANDLER
    assert find_claim({"a": {"b": 1}}, "a.c") is None
    assert find_claim({"a": "text"}, "a.b") is None


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("anna", "anna"),
        ("Anna.Virtanen@Example.fi", "anna.virtanen-example.fi"),
        ("  Väinö Mäki ", "v-in-m-ki"),
        ("_x_y_", "x_y"),
    ],
)
def test_user_names_from_the_claim(value: str, name: str) -> None:
    assert user_name_from_claims({"preferred_username": value}, "preferred_username") == name


@pytest.mark.parametrize("claims", [{}, {"preferred_username": "@"}, {"preferred_username": 5}])
def test_no_usable_user_name_is_refused(claims: dict[str, Any]) -> None:
    with pytest.raises(SignInRefused) as refused:
        user_name_from_claims(claims, "preferred_username")
    assert refused.value.reason == "no_user_name"


# --- ID tokens ---------------------------------------------------------------------------

KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})


def client() -> OidcClient:
    """A relying party whose provider's documents are served here (no network)."""
    jwks = {"keys": [KEY.as_dict(private=False)]}
    discovery = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/auth",
        "token_endpoint": f"{ISSUER}/token",
        "jwks_uri": f"{ISSUER}/jwks",
    }

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(200, json=discovery)
        return httpx.Response(200, json=jwks)

    http = httpx.Client(transport=httpx.MockTransport(answer))
    return OidcClient(oidc(), "secret", http=http)


def id_token(key: Any = KEY, alg: str = "RS256", **changes: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "person-1",
        "aud": "recarchive",
        "exp": now + 300,
        "iat": now,
        "nonce": "n-1",
    }
    claims.update(changes)
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode({"alg": alg, "kid": "k1"}, claims, key, algorithms=[alg])


def test_a_good_id_token_verifies() -> None:
    claims = client().verify_id_token(id_token(), nonce="n-1")
    assert claims["sub"] == "person-1"


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (lambda: id_token(nonce="other"), "wrong_nonce"),
        (lambda: id_token(nonce=None), "wrong_nonce"),
        (lambda: id_token(aud="another-client"), "invalid_id_token"),
        (lambda: id_token(iss="https://evil.example"), "invalid_id_token"),
        (lambda: id_token(exp=int(time.time()) - 3600), "invalid_id_token"),
        (lambda: id_token(sub=None), "invalid_id_token"),
        (lambda: id_token(key=OTHER_KEY), "invalid_id_token"),
        (lambda: id_token(key=OctKey.import_key("secret" * 6), alg="HS256"), "invalid_id_token"),
        (lambda: id_token()[:-4] + "AAAA", "invalid_id_token"),
        (lambda: "not.a.token", "invalid_id_token"),
    ],
)
def test_a_bad_id_token_is_refused(token: Any, reason: str) -> None:
    with pytest.raises(SignInFailed) as failed:
        client().verify_id_token(token(), nonce="n-1")
    assert failed.value.reason == reason


def test_an_unsigned_id_token_is_refused() -> None:
    header = {"alg": "none", "typ": "JWT"}
    claims = {"iss": ISSUER, "sub": "p", "aud": "recarchive", "exp": 2**40, "iat": 1, "nonce": "n"}
    parts = [urlsafe_b64encode(json.dumps(part).encode()).decode() for part in (header, claims)]
    with pytest.raises(SignInFailed):
        client().verify_id_token(".".join([*parts, ""]), nonce="n")


def test_a_rotated_key_is_fetched_at_once_but_not_more_than_once_a_minute() -> None:
    rotated = RSAKey.generate_key(2048, parameters={"kid": "k2", "alg": "RS256", "use": "sig"})
    served = {"keys": [KEY.as_dict(private=False)]}
    reads: list[str] = []
    discovery = {
        "issuer": ISSUER,
        "authorization_endpoint": "https://login.example.fi/auth",
        "token_endpoint": f"{ISSUER}/token",
        "jwks_uri": f"{ISSUER}/jwks",
    }

    def answer(request: httpx.Request) -> httpx.Response:
        reads.append(request.url.path)
        if request.url.path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(200, json=discovery)
        return httpx.Response(200, json=served)

    now = [1000.0]
    relying = OidcClient(
        oidc(),
        "secret",
        http=httpx.Client(transport=httpx.MockTransport(answer)),
        monotonic=lambda: now[0],
    )
    assert relying.authorization_origins() == ("https://idp.example.fi",)
    relying.verify_id_token(id_token(), nonce="n-1")
    assert relying.authorization_origins() == ("https://idp.example.fi", "https://login.example.fi")

    served = {"keys": [KEY.as_dict(private=False), rotated.as_dict(private=False)]}
    token = jwt.encode(
        {"alg": "RS256", "kid": "k2"},
        jwt.decode(id_token(), KEY).claims,
        rotated,
        algorithms=["RS256"],
    )
    with pytest.raises(SignInFailed):  # the keys were read a moment ago: not again yet
        relying.verify_id_token(token, nonce="n-1")
    now[0] += 61
    assert relying.verify_id_token(token, nonce="n-1")["sub"] == "person-1"
    assert reads.count("/realms/staff/jwks") == 2
