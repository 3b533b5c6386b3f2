"""Every API endpoint against every role: allowed, 403, or 401, as the policy matrix says.

The expected answer of each (endpoint, role) pair comes from
:data:`recarchive.access.policy.PERMISSIONS`, so the test and the policy
cannot drift apart; a new endpoint without a row here fails
:func:`test_every_endpoint_is_in_the_matrix`. A refusal must not reveal
whether the recording asked for exists: the 401 and 403 answers for an
existing and for an unknown id are the same, byte for byte.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recarchive.access.models import Role
from recarchive.access.policy import PURPOSES, Action, allowed
from tests.api_fixtures import ApiClient, add_customer, add_recording, build_runtime, tokens

UNKNOWN = "00000000-0000-4000-8000-000000000000"


@dataclasses.dataclass(frozen=True)
class Endpoint:
    method: str
    #: Path with ``{rid}`` for a recording id and ``{other}`` for another id.
    path: str
    #: The action the policy checks; None: any authenticated user.
    action: Action | None
    body: dict[str, Any] | None = None
    query: dict[str, str] | None = None

    @property
    def route(self) -> str:
        return self.path.replace("{rid}", "{recording_id}")

    def url(self, rid: str, other: str) -> str:
        return self.path.replace("{rid}", rid).replace("{other}", other)


#: A sampling plan's criteria, for the QA endpoints that take them.
CRITERIA = {"calls_per_agent": 1, "period_kind": "week"}
#: A clip of a recording that does not exist.
CLIP = {"recording_id": UNKNOWN, "start_ms": 0, "end_ms": 500, "title": "t", "purpose": "p"}
#: A scorecard form's one version, for the QA endpoints that take one.
FORM = {
    "sections": [
        {"id": "s", "title": "S", "questions": [{"id": "q", "text": "Q?", "kind": "yes_no_na"}]}
    ]
}

# Destructive endpoints get ids or subjects that do not exist: an allowed role
# then gets 404/409/422, never 401/403, and nothing is changed.
ENDPOINTS = [
    Endpoint("GET", "/api/v1/me", None),
    Endpoint("GET", "/api/v1/recordings", Action.SEARCH),
    Endpoint("POST", "/api/v1/recordings/search", Action.SEARCH, body={"agent": "a1"}),
    Endpoint("GET", "/api/v1/recordings/{rid}", Action.VIEW),
    Endpoint("GET", "/api/v1/recordings/{rid}/audio", Action.PLAY),
    Endpoint("GET", "/api/v1/recordings/{rid}/audio", Action.DOWNLOAD, query={"download": "true"}),
    Endpoint("POST", "/api/v1/recordings/{rid}/reasons", Action.TAG, body={"add": ["billing"]}),
    Endpoint(
        "POST",
        "/api/v1/recordings/{rid}/customer",
        Action.SUBJECT,
        body={"customer_id": "C-NOBODY", "reason": "matrix"},
    ),
    Endpoint("GET", "/api/v1/holds", Action.HOLD_LIST),
    Endpoint(
        "POST",
        "/api/v1/holds",
        Action.HOLD_PLACE,
        body={"case_ref": "M-1", "reason": "matrix", "recording_ids": [UNKNOWN]},
    ),
    Endpoint(
        "POST", "/api/v1/holds/{other}/release", Action.HOLD_RELEASE, body={"reason": "matrix"}
    ),
    Endpoint("GET", "/api/v1/audit", Action.AUDIT_READ),
    Endpoint("POST", "/api/v1/subjects/find", Action.SUBJECT, body={"customer_id": "C-NOBODY"}),
    Endpoint("POST", "/api/v1/subjects/export", Action.SUBJECT, body={"customer_id": "C-NOBODY"}),
    Endpoint("POST", "/api/v1/subjects/erase", Action.SUBJECT, body={"customer_id": "C-NOBODY"}),
    Endpoint(
        "POST",
        "/api/v1/subjects/restrict",
        Action.SUBJECT,
        body={"subject": {"customer_id": "C-NOBODY"}, "purpose": "dispute", "case_ref": "M-1"},
    ),
    Endpoint(
        "POST",
        "/api/v1/subjects/object",
        Action.SUBJECT,
        body={"subject": {"customer_id": "C-NOBODY"}},
    ),
    Endpoint("GET", "/api/v1/restrictions", Action.SUBJECT),
    Endpoint(
        "POST", "/api/v1/restrictions/{other}/lift", Action.SUBJECT, body={"reason": "matrix"}
    ),
    Endpoint("GET", "/api/v1/subject-requests", Action.SUBJECT),
    Endpoint("GET", "/api/v1/users", Action.USERS_ADMIN),
    Endpoint(
        "POST", "/api/v1/users", Action.USERS_ADMIN, body={"name": "matrix", "role": "no-such"}
    ),
    Endpoint("GET", "/api/v1/users/{other}/tokens", Action.USERS_ADMIN),
    Endpoint("POST", "/api/v1/users/{other}/tokens", Action.USERS_ADMIN, body={"days": 1}),
    Endpoint("POST", "/api/v1/users/{other}/disable", Action.USERS_ADMIN),
    Endpoint("POST", "/api/v1/tokens/{other}/revoke", Action.USERS_ADMIN),
    Endpoint("GET", "/api/v1/cases", Action.CASE_VIEW),
    Endpoint(
        "POST",
        "/api/v1/cases",
        Action.CASE_MANAGE,
        body={"reference": "M-1", "kind": "billing", "customer_id": "C-NOBODY"},
    ),
    Endpoint("GET", "/api/v1/cases/{other}", Action.CASE_VIEW),
    Endpoint(
        "POST",
        "/api/v1/cases/{other}/recordings",
        Action.CASE_MANAGE,
        body={"recording_ids": [UNKNOWN]},
    ),
    Endpoint("DELETE", "/api/v1/cases/{other}/recordings/{rid}", Action.CASE_MANAGE),
    Endpoint("POST", "/api/v1/cases/{other}/notes", Action.CASE_MANAGE, body={"text": "matrix"}),
    Endpoint("POST", "/api/v1/cases/{other}/close", Action.CASE_MANAGE, body={"reason": "matrix"}),
    Endpoint("GET", "/api/v1/cases/{other}/custody", Action.CASE_VIEW),
    Endpoint("POST", "/api/v1/cases/{other}/export", Action.CASE_EXPORT),
    Endpoint("GET", "/api/v1/qa/plans", Action.QA_PLAN),
    Endpoint("POST", "/api/v1/qa/plans", Action.QA_PLAN, body={"name": "matrix", **CRITERIA}),
    Endpoint("GET", "/api/v1/qa/plans/{other}", Action.QA_PLAN),
    Endpoint("POST", "/api/v1/qa/plans/{other}/versions", Action.QA_PLAN, body=CRITERIA),
    Endpoint(
        "POST", "/api/v1/qa/plans/{other}/samples", Action.QA_SAMPLE, body={"period": "2026-W40"}
    ),
    Endpoint("GET", "/api/v1/qa/samples/{other}", Action.QA_SAMPLE),
    Endpoint("GET", "/api/v1/qa/samples/{other}/verify", Action.QA_SAMPLE),
    Endpoint("GET", "/api/v1/recordings/{rid}/notes", Action.QA_NOTE),
    Endpoint(
        "POST",
        "/api/v1/recordings/{rid}/notes",
        Action.QA_NOTE,
        body={"offset_ms": 0, "text": "matrix"},
    ),
    Endpoint("PATCH", "/api/v1/qa/notes/{other}", Action.QA_NOTE, body={"text": "matrix"}),
    Endpoint("DELETE", "/api/v1/qa/notes/{other}", Action.QA_NOTE),
    Endpoint("GET", "/api/v1/qa/clips", Action.QA_LIBRARY),
    Endpoint("POST", "/api/v1/qa/clips", Action.QA_LIBRARY, body=CLIP),
    Endpoint("GET", "/api/v1/qa/clips/{other}", Action.QA_LIBRARY),
    Endpoint("GET", "/api/v1/qa/clips/{other}/audio", Action.QA_LIBRARY),
    Endpoint(
        "POST",
        "/api/v1/qa/clips/{other}/keep",
        Action.QA_LIBRARY,
        body={"until": "2030-01-01T00:00:00+00:00", "reason": "matrix"},
    ),
    Endpoint("DELETE", "/api/v1/qa/clips/{other}", Action.QA_LIBRARY),
    Endpoint("GET", "/api/v1/qa/forms", Action.QA_FORM),
    Endpoint("POST", "/api/v1/qa/forms", Action.QA_FORM, body={"name": "matrix", **FORM}),
    Endpoint("GET", "/api/v1/qa/forms/{other}", Action.QA_FORM),
    Endpoint("POST", "/api/v1/qa/forms/{other}/versions", Action.QA_FORM, body=FORM),
    Endpoint("GET", "/api/v1/qa/evaluations", Action.QA_EVALUATE),
    Endpoint(
        "POST",
        "/api/v1/qa/evaluations",
        Action.QA_EVALUATE,
        body={"recording_id": UNKNOWN, "form_version_id": UNKNOWN, "answers": {"q": "yes"}},
    ),
    Endpoint("GET", "/api/v1/qa/evaluations/{other}", Action.QA_EVALUATE),
    Endpoint(
        "PUT", "/api/v1/qa/evaluations/{other}", Action.QA_EVALUATE, body={"answers": {"q": "no"}}
    ),
    Endpoint("GET", "/api/v1/qa/evaluations/{other}/versions", Action.QA_EVALUATE),
    Endpoint(
        "POST",
        "/api/v1/qa/evaluations/{other}/notes",
        Action.QA_EVALUATE,
        body={"note_ids": [UNKNOWN]},
    ),
    Endpoint("DELETE", "/api/v1/qa/evaluations/{other}/notes/{other}", Action.QA_EVALUATE),
    Endpoint("GET", "/api/v1/qa/reports", Action.QA_REPORT, query={"period": "week"}),
    Endpoint("GET", "/api/v1/qa/reports.csv", Action.QA_REPORT, query={"table": "sections"}),
    Endpoint(
        "POST", "/api/v1/qa/evaluations/{other}/answer", Action.QA_ANSWER, body={"comment": "m"}
    ),
    Endpoint("GET", "/api/v1/qa/my/evaluations", Action.QA_SELF),
    Endpoint("GET", "/api/v1/qa/my/evaluations/{other}", Action.QA_SELF),
    Endpoint("POST", "/api/v1/qa/my/evaluations/{other}/acknowledge", Action.QA_SELF),
    Endpoint(
        "POST", "/api/v1/qa/my/evaluations/{other}/dispute", Action.QA_SELF, body={"comment": "m"}
    ),
    Endpoint(
        "POST", "/api/v1/users/{other}/agent-ids", Action.USERS_ADMIN, body={"agent_id": "m-1"}
    ),
    Endpoint("DELETE", "/api/v1/users/{other}/agent-ids/{other}", Action.USERS_ADMIN),
]
PUBLIC = {("GET", "/healthz"), ("GET", "/metrics")}


@pytest.fixture(scope="module")
def api(catalogue_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiClient]:
    runtime = build_runtime(catalogue_url, Path(tmp_path_factory.mktemp("matrix")))
    add_customer(runtime, "C-1", "Matrix Customer", ["040 111 2222"])
    recording = add_recording(
        runtime, customer_id="C-1", caller_number="040 111 2222", agent="a1", reasons=["billing"]
    )
    client = ApiClient(runtime, tokens(runtime, prefix=f"m{uuid.uuid4().hex[:6]}-"))
    client.recording_id = str(recording.id)  # type: ignore[attr-defined]
    yield client
    client.close()
    runtime.close()


def _query(endpoint: Endpoint, role: Role) -> dict[str, str]:
    query = dict(endpoint.query or {})
    if endpoint.action in (Action.PLAY, Action.DOWNLOAD):
        purposes = sorted(p.value for p in PURPOSES[role]) or ["training"]
        query.update(purpose=purposes[0], case="CASE-1")
    return query


def _url(endpoint: Endpoint, rid: str) -> str:
    return endpoint.url(rid, UNKNOWN)


@pytest.mark.parametrize("role", list(Role), ids=lambda role: role.value)
@pytest.mark.parametrize(
    "endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.path}{'?download' if e.query else ''}"
)
def test_role_matrix(api: ApiClient, endpoint: Endpoint, role: Role) -> None:
    rid = api.recording_id  # type: ignore[attr-defined]
    response = api.client.request(
        endpoint.method,
        _url(endpoint, rid),
        headers=api.headers(role),
        params=_query(endpoint, role),
        json=endpoint.body,
    )
    if endpoint.action is None or allowed(role, endpoint.action):
        assert response.status_code not in (401, 403, 500), response.text
        assert response.status_code < 500
    else:
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "forbidden"
        unknown = api.client.request(
            endpoint.method,
            _url(endpoint, UNKNOWN),
            headers=api.headers(role),
            params=_query(endpoint, role),
            json=endpoint.body,
        )
        assert (unknown.status_code, unknown.content) == (response.status_code, response.content)


@pytest.mark.parametrize(
    "credentials",
    [
        None,
        "Bearer ",
        "Bearer rca_garbage",
        "Basic dXNlcjpwYXNz",
        f"Bearer rca_{'0' * 32}_{'A' * 43}",
    ],
    ids=["none", "empty", "malformed", "basic", "unknown"],
)
@pytest.mark.parametrize(
    "endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.path}{'?download' if e.query else ''}"
)
def test_no_valid_token_is_401_and_reveals_nothing(
    api: ApiClient, endpoint: Endpoint, credentials: str | None
) -> None:
    headers = {"Authorization": credentials} if credentials else {}
    rid = api.recording_id  # type: ignore[attr-defined]
    answers = [
        api.client.request(
            endpoint.method,
            _url(endpoint, target),
            headers=headers,
            params=_query(endpoint, Role.QA_TRAINER),
            json=endpoint.body,
        )
        for target in (rid, UNKNOWN)
    ]
    for response in answers:
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert answers[0].content == answers[1].content


def test_every_endpoint_is_in_the_matrix(api: ApiClient) -> None:
    covered = {(e.method, e.route.replace("{other}", "{x}")) for e in ENDPOINTS} | PUBLIC
    routes = set()
    for path, operations in api.app.openapi()["paths"].items():
        normalised = path
        for name in (
            "{hold_id}",
            "{restriction_id}",
            "{name}",
            "{token_id}",
            "{plan_id}",
            "{sample_id}",
            "{case_id}",
            "{note_id}",
            "{clip_id}",
            "{form_id}",
            "{evaluation_id}",
            "{agent_id}",
        ):
            normalised = normalised.replace(name, "{x}")
        routes.update((method.upper(), normalised) for method in operations)
    assert len(routes) >= len(covered) - 1  # the listing itself works (audio is listed once)
    assert routes - covered == set(), "endpoints missing from the role matrix"


def test_public_endpoints_need_no_token(api: ApiClient) -> None:
    assert api.client.get("/healthz").status_code == 200
    metrics = api.client.get("/metrics")
    assert metrics.status_code == 200
    assert "recarchive_http_requests_total" in metrics.text
