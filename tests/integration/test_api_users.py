"""Users and tokens managed by an admin through the API: every change audited, tokens shown once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from recarchive.access.audit import verify_chain
from recarchive.access.models import ApiToken, AuditEvent, Role
from recarchive.access.services import TOKEN_PREFIX, Principal, authenticate
from recarchive.api.auth import TokenCache
from tests.api_fixtures import ApiClient, bearer, build_runtime, close_runtime, tokens


@pytest.fixture(scope="module")
def api(catalogue_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiClient]:
    runtime = build_runtime(catalogue_url, Path(tmp_path_factory.mktemp("users")))
    client = ApiClient(runtime, tokens(runtime, prefix=f"u{uuid.uuid4().hex[:6]}-"))
    yield client
    client.close()
    close_runtime(runtime)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def events_about(api: ApiClient, user: str) -> list[AuditEvent]:
    with api.runtime.sessions() as session:
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.seq))
        return [e for e in events if (e.details or {}).get("user") == user]


def test_an_admin_creates_lists_reissues_revokes_and_disables(api: ApiClient) -> None:
    admin = api.as_role(Role.ADMIN)
    name = unique("pia")
    created = admin.post(
        "/api/v1/users",
        json={"name": name, "role": "dispute_handler", "token_days": 5, "description": "desk"},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["user"] == name
    first = body["token"]
    assert authenticate(api.runtime, first).user_name == name

    listed = admin.get("/api/v1/users").json()["items"]
    [row] = [u for u in listed if u["name"] == name]
    assert (row["role"], row["active_tokens"], row["disabled_at"]) == ("dispute_handler", 1, None)
    assert first not in str(listed)

    second = admin.post(f"/api/v1/users/{name}/tokens", json={"days": 1, "description": "laptop"})
    assert second.status_code == 201, second.text
    tokens_page = admin.get(f"/api/v1/users/{name}/tokens").json()["items"]
    assert [t["description"] for t in tokens_page] == ["laptop", "desk"]  # newest first
    assert all(t["in_force"] for t in tokens_page)
    assert "token" not in tokens_page[0]
    assert second.json()["token"] not in str(tokens_page)

    # The new user's token works until it is revoked, at once in this process.
    user = {"Authorization": f"Bearer {first}"}
    assert api.client.get("/api/v1/me", headers=user).status_code == 200
    revoked = admin.post(f"/api/v1/tokens/{body['token_id']}/revoke")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json() == {"user": name, "token_id": body["token_id"]}
    assert api.client.get("/api/v1/me", headers=user).status_code == 401
    again = admin.post(f"/api/v1/tokens/{body['token_id']}/revoke")
    assert again.status_code == 409
    assert "already revoked" in again.json()["error"]["message"]

    other = bearer(second.json()["token"])
    assert api.client.get("/api/v1/me", headers=other).status_code == 200
    disabled = admin.post(f"/api/v1/users/{name}/disable")
    assert disabled.status_code == 200, disabled.text
    assert disabled.json() == {"user": name, "revoked_tokens": 1}
    assert api.client.get("/api/v1/me", headers=other).status_code == 401
    refused = admin.post(f"/api/v1/users/{name}/tokens", json={})
    assert refused.status_code == 409
    assert "is disabled" in refused.json()["error"]["message"]

    actions = [(e.action, e.actor_role, e.client_addr) for e in events_about(api, name)]
    assert [a for a, _, _ in actions] == [
        "users.add",
        "tokens.issue",
        "tokens.issue",
        "tokens.list",
        "tokens.revoke",
        "users.disable",
    ]
    assert {(role, client) for _, role, client in actions} == {("admin", "testclient")}
    assert verify_chain(api.runtime.sessions).intact


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"name": "Bad Name", "role": "auditor"}, 409, "is not valid"),
        ({"name": "valid-name", "role": "boss"}, 409, "unknown role 'boss'"),
        ({"name": "valid-name", "role": "auditor", "token_days": 0}, 422, "token_days"),
        ({"name": "valid-name", "role": "auditor", "extra": 1}, 422, "extra"),
    ],
)
def test_bad_requests_create_nothing(
    api: ApiClient, body: dict[str, object], status: int, fragment: str
) -> None:
    response = api.as_role(Role.ADMIN).post("/api/v1/users", json=body)
    assert response.status_code == status, response.text
    assert fragment in response.text
    listed = api.as_role(Role.ADMIN).get("/api/v1/users").json()["items"]
    assert "valid-name" not in {u["name"] for u in listed}


def test_unknown_names_and_ids_are_404(api: ApiClient) -> None:
    admin = api.as_role(Role.ADMIN)
    assert admin.get("/api/v1/users/nobody-here/tokens").status_code == 404
    assert admin.post("/api/v1/users/nobody-here/disable").status_code == 404
    assert admin.post("/api/v1/users/nobody-here/tokens", json={}).status_code == 404
    assert admin.post(f"/api/v1/tokens/{uuid.uuid4()}/revoke").status_code == 404


def test_a_duplicate_name_is_409(api: ApiClient) -> None:
    admin = api.as_role(Role.ADMIN)
    name = unique("dup")
    assert admin.post("/api/v1/users", json={"name": name, "role": "auditor"}).status_code == 201
    again = admin.post("/api/v1/users", json={"name": name, "role": "admin"})
    assert again.status_code == 409
    assert "already exists" in again.json()["error"]["message"]


@pytest.mark.parametrize("role", [r for r in Role if r is not Role.ADMIN], ids=str)
def test_no_other_role_sees_or_changes_users(api: ApiClient, role: Role) -> None:
    as_role = api.as_role(role)
    assert as_role.get("/api/v1/users").status_code == 403
    body = {"name": unique("sneak"), "role": "admin"}
    assert as_role.post("/api/v1/users", json=body).status_code == 403
    listed = api.as_role(Role.ADMIN).get("/api/v1/users").json()["items"]
    assert body["name"] not in {u["name"] for u in listed}


def test_revoking_forgets_only_that_token_in_the_cache() -> None:
    cache = TokenCache(ttl_s=60)
    kept = Principal(uuid.uuid4(), "kim", Role.AUDITOR, uuid.uuid4())
    gone = Principal(uuid.uuid4(), "lee", Role.AUDITOR, uuid.uuid4())
    cache.put("rca_kept", kept)
    cache.put("rca_gone", gone)
    cache.forget_where(token_id=gone.token_id)
    assert (cache.get("rca_kept"), cache.get("rca_gone")) == (kept, None)
    cache.forget_where(user_name="kim")
    assert cache.get("rca_kept") is None


def test_tokens_are_stored_only_as_hashes(api: ApiClient) -> None:
    created = api.as_role(Role.ADMIN).post(
        "/api/v1/users", json={"name": unique("hash"), "role": "auditor"}
    )
    token = created.json()["token"]
    with api.runtime.sessions() as session:
        stored = session.get_one(ApiToken, uuid.UUID(created.json()["token_id"]))
        secret = token.removeprefix(TOKEN_PREFIX).split("_", 1)[1]  # the secret may hold "_"
        assert len(secret) >= 40
        assert secret not in stored.secret_hash
