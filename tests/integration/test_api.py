"""The lookup API end to end on SQLite and PostgreSQL, with real audio (and the S3 server).

One world per module and catalogue backend (:func:`world`): users of every
role, customers, and recordings with real audio. The search tests read the
recordings of March 2025 only; tests that change things (holds, reason
corrections, restrictions, expiry) make recordings of their own, so the order
of the tests does not matter. The audio tests also run with the S3 store and
with recordings stored encrypted, on both stores (:func:`audio_world`), on
the same catalogue.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from recarchive.access.audit import entry_content, verify_chain
from recarchive.access.models import AuditEvent, Role
from recarchive.access.users import add_user, revoke_token
from recarchive.api.app import create_app
from recarchive.catalogue.database import table_names, transaction, utcnow
from recarchive.catalogue.models import Customer, Recording
from recarchive.catalogue.restrictions import ProcessingRestriction, RestrictionKind
from recarchive.retention.expiry import expire_recordings
from recarchive.retention.holds import place_hold
from recarchive.runtime import Runtime
from tests.actors import ADMIN, staff
from tests.api_fixtures import (
    STORE_VARIANTS,
    ApiClient,
    RoleClient,
    TestClient,
    add_customer,
    add_recording,
    build_runtime,
    close_runtime,
    ffprobe,
    tokens,
    variant_runtime,
    wav_bytes,
)

Q, D, P, A = Role.QA_TRAINER, Role.DISPUTE_HANDLER, Role.PRIVACY_OFFICER, Role.AUDITOR
HKI = dt.timezone(dt.timedelta(hours=2))  # Helsinki in March 2025 (summer time starts on the 30th)
RECORDINGS = "/api/v1/recordings"
BASE_URL = "http://testserver"

#: Personal data used in the world: none of it may appear in an audit entry or an error message.
NUMBER = "+358401234567"
NUMBER_SPELLINGS = ("040 123 4567", "+358401234567", "00358401234567", "358401234567")
OTHER_NUMBER = "+358507654321"
HETU = "131052-308T"
YTUNNUS = "2077474-0"
PERSONAL = (
    NUMBER, "0401234567", "401234567", OTHER_NUMBER, "0507654321",
    HETU, HETU.lower(), YTUNNUS, "20774740",
)  # fmt: skip

#: The search tests look at March 2025 only: nothing else lives there.
WINDOW = {"from": "2025-03-01", "to": "2025-04-01"}


@dataclasses.dataclass
class World:
    runtime: Runtime
    api: ApiClient
    role_tokens: dict[Role, str]
    rec: dict[str, Recording]

    def as_role(self, role: Role) -> RoleClient:
        return self.api.as_role(role)


@pytest.fixture(scope="module")
def world(catalogue_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    runtime = build_runtime(catalogue_url, tmp_path_factory.mktemp("api-world"))
    role_tokens = tokens(runtime)
    add_customer(runtime, "C-100", "Maija Meikäläinen", ["040 123 4567"], identity_code=HETU)
    add_customer(runtime, "C-200", "Oy Esimerkki Ab", ["050 765 4321"], identity_code=YTUNNUS)
    rec = {
        # 2025-03-10 00:30 in Helsinki, 2025-03-09 in UTC.
        "a": add_recording(
            runtime, started_at=dt.datetime(2025, 3, 10, 0, 30, tzinfo=HKI), seconds=1,
            customer_id="C-100", caller_number="040 123 4567", called_number="044 987 6543",
            reasons=["billing"], agent="agent-anna", queue="billing-q", direction="inbound",
        ),
        "b": add_recording(
            runtime, started_at=dt.datetime(2025, 3, 11, 0, 30, tzinfo=HKI), seconds=3,
            customer_id="C-100", caller_number="044 987 6543", called_number="+358 40 1234567",
            reasons=["outage", "fault_report"], agent="agent-bert", queue="fault-q",
            direction="outbound",
        ),
        "c": add_recording(
            runtime, started_at=dt.datetime(2025, 3, 12, 12, 0, tzinfo=dt.UTC), seconds=6,
            customer_id="C-200", caller_number="050 765 4321", called_number="044 987 6543",
            reasons=["moving"], agent="agent-anna", queue="billing-q", direction="internal",
        ),
    }  # fmt: skip
    place_hold(runtime, case_ref="D-1", reason="billing dispute", actor=staff("setup"),
               recording_ids=[rec["c"].id])  # fmt: skip
    # Seven recordings for paging, two of them at the same second.
    base = dt.datetime(2024, 6, 1, 10, 0, tzinfo=dt.UTC)
    for index, hours in enumerate([0, 1, 2, 2, 3, 4, 5]):
        rec[f"page{index}"] = add_recording(
            runtime, started_at=base + dt.timedelta(hours=hours), queue="paging-q", seconds=1
        )
    api = ApiClient(runtime, role_tokens)
    yield World(runtime, api, role_tokens, rec)
    api.close()
    close_runtime(runtime)


@pytest.fixture(scope="module", params=STORE_VARIANTS)
def audio_world(
    request: pytest.FixtureRequest, world: World, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """The world's catalogue and users, with the filesystem store or the S3 server.

    The ``-encrypted`` worlds store every recording under a data key of its own
    (``encryption.enabled``, the file key provider), as ingest then stores it:
    the same tests hold for them.
    """
    if request.param == "filesystem":
        yield world
        return
    runtime = variant_runtime(
        world.runtime.settings.catalogue_url,
        tmp_path_factory.mktemp(f"api-{request.param}"),
        request.param,
    )
    api = ApiClient(runtime, world.role_tokens)
    yield World(runtime, api, world.role_tokens, {})
    api.close()
    close_runtime(runtime)


# --- helpers --------------------------------------------------------------------


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def names(world: World, *keys: str) -> list[str]:
    return [str(world.rec[key].id) for key in keys]


def assert_error(
    response: httpx.Response, status: int, code: str | None = None, field: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    if code is not None:
        assert error["code"] == code, error
    if field is not None:
        assert error.get("field") == field, error
    return dict(error)


def last_seq(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return int(session.scalar(select(func.max(AuditEvent.seq))) or 0)


def audit_since(runtime: Runtime, seq: int) -> list[AuditEvent]:
    with runtime.sessions() as session:
        statement = select(AuditEvent).where(AuditEvent.seq > seq).order_by(AuditEvent.seq)
        return list(session.scalars(statement))


def audio_url(recording: Recording | uuid.UUID | str) -> str:
    rid = recording.id if isinstance(recording, Recording) else recording
    return f"{RECORDINGS}/{rid}/audio"


DISPUTE = {"purpose": "dispute", "case": "D-42"}


# --- search ---------------------------------------------------------------------


SEARCHES: Mapping[str, tuple[dict[str, Any], list[str]]] = {
    "all, newest first": ({}, ["c", "b", "a"]),
    "oldest first": ({"order": "oldest"}, ["a", "b", "c"]),
    "customer id": ({"customer_id": "C-100"}, ["b", "a"]),
    "customer id, other": ({"customer_id": "C-200"}, ["c"]),
    "customer id, unknown": ({"customer_id": "C-999"}, []),
    **{
        f"number {spelling!r}": ({"number": spelling}, ["b", "a"])
        for spelling in NUMBER_SPELLINGS
    },
    "number, called or calling": ({"number": "044 987 6543"}, ["c", "b", "a"]),
    "number, nobody's": ({"number": "+358 50 111 2222"}, []),
    "identity code": ({"identity_code": HETU}, ["b", "a"]),
    "identity code, lower case": ({"identity_code": HETU.lower()}, ["b", "a"]),
    "y-tunnus": ({"identity_code": YTUNNUS}, ["c"]),
    "identity code, nobody's": ({"identity_code": "010101A0101"}, []),
    "reason": ({"reason": ["billing"]}, ["a"]),
    "reasons, any of": ({"reason": ["billing", "moving"]}, ["c", "a"]),
    "reason, second code": ({"reason": ["fault_report"]}, ["b"]),
    "reason, nobody's": ({"reason": ["new_contract"]}, []),
    "agent": ({"agent": "agent-anna"}, ["c", "a"]),
    "queue": ({"queue": "fault-q"}, ["b"]),
    "agent and queue": ({"agent": "agent-anna", "queue": "fault-q"}, []),
    "inbound": ({"direction": "inbound"}, ["a"]),
    "outbound": ({"direction": "outbound"}, ["b"]),
    "internal": ({"direction": "internal"}, ["c"]),
    "unknown direction": ({"direction": "unknown"}, []),
    "min duration, inclusive": ({"min_duration": 3}, ["c", "b"]),
    "max duration, inclusive": ({"max_duration": 3}, ["b", "a"]),
    "duration range": ({"min_duration": 1.5, "max_duration": 4}, ["b"]),
    "held": ({"held": True}, ["c"]),
    "not held": ({"held": False}, ["b", "a"]),
    "everything at once": (
        {"customer_id": "C-100", "number": "040 123 4567", "identity_code": HETU,
         "reason": ["billing"], "agent": "agent-anna", "queue": "billing-q",
         "direction": "inbound", "min_duration": 1, "max_duration": 1, "held": False},
        ["a"],
    ),
}  # fmt: skip


def _query(filters: Mapping[str, Any]) -> dict[str, Any]:
    return {k: str(v).lower() if isinstance(v, bool) else v for k, v in filters.items()}


@pytest.mark.parametrize("case", list(SEARCHES))
def test_search_filters_get_and_post(world: World, case: str) -> None:
    filters, expected = SEARCHES[case]
    dispute = world.as_role(D)
    by_get = dispute.get(RECORDINGS, params={**WINDOW, **_query(filters)})
    assert ids(by_get) == names(world, *expected)
    by_post = dispute.post(f"{RECORDINGS}/search", json={**WINDOW, **filters})
    assert ids(by_post) == names(world, *expected)
    assert by_get.json()["next_cursor"] is None


def test_search_dates_without_offset_are_helsinki_time(world: World) -> None:
    dispute = world.as_role(D)
    # "a" started 2025-03-10 00:30 in Helsinki (22:30 UTC the day before).
    assert ids(dispute.get(RECORDINGS, params={"from": "2025-03-10", "to": "2025-03-11"})) == (
        names(world, "a")
    )
    assert ids(dispute.get(RECORDINGS, params={"from": "2025-03-11", "to": "2025-03-12"})) == (
        names(world, "b")
    )
    in_utc = {"from": "2025-03-10T00:00:00Z", "to": "2025-03-11T00:00:00+00:00"}
    assert ids(dispute.get(RECORDINGS, params=in_utc)) == names(world, "b")
    local_time = {"from": "2025-03-10T00:30:00", "to": "2025-03-10T00:30:01"}
    assert ids(dispute.get(RECORDINGS, params=local_time)) == names(world, "a")
    with_offset = {"from": "2025-03-12T14:00:00+02:00", "to": "2025-03-12T14:00:01+02:00"}
    assert ids(dispute.post(f"{RECORDINGS}/search", json=with_offset)) == names(world, "c")


def test_search_results_as_each_role_sees_them(world: World) -> None:
    dispute = world.as_role(D).get(RECORDINGS, params={**WINDOW, "order": "oldest"}).json()
    first = dispute["items"][0]
    assert first["customer"] == {
        "customer_id": "C-100",
        "match": "matched",
        "candidates": [],
        "caller_number": NUMBER,
        "called_number": "+358449876543",
    }
    assert first["reasons"] == ["billing"]
    assert first["audio"]["sha256"] == world.rec["a"].sha256
    assert first["audio"]["size_bytes"] == len(wav_bytes(1))
    assert first["duration_s"] == 1.0
    assert [item["held"] for item in dispute["items"]] == [False, False, True]

    trainer = world.as_role(Q).get(RECORDINGS, params={**WINDOW, "order": "oldest"})
    assert ids(trainer) == names(world, "a", "b", "c")
    text = trainer.text
    assert trainer.json()["items"][0]["customer"] is None
    assert not [value for value in (*PERSONAL, "C-100", "C-200") if value in text]


def test_roles_that_may_not_search_by_identity(world: World) -> None:
    trainer = world.as_role(Q)
    for filters in ({"customer_id": "C-100"}, {"number": NUMBER}, {"identity_code": HETU}):
        response = trainer.get(RECORDINGS, params=filters)
        assert_error(response, 403, "forbidden")
        assert not [value for value in PERSONAL if value in response.text]
    assert_error(world.as_role(A).get(RECORDINGS), 403, "forbidden")
    assert_error(world.as_role(Role.ADMIN).post(f"{RECORDINGS}/search", json={}), 403)


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_cursor_pages_without_duplicates_or_gaps(world: World, order: str) -> None:
    expected = sorted(
        (world.rec[f"page{i}"] for i in range(7)),
        key=lambda r: (r.started_at, r.id),
        reverse=order == "newest",
    )
    dispute = world.as_role(D)
    for method in ("GET", "POST"):
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while pages < 10:
            query: dict[str, Any] = {"queue": "paging-q", "limit": 2, "order": order}
            if cursor:
                query["cursor"] = cursor
            if method == "GET":
                response = dispute.get(RECORDINGS, params=query)
            else:
                response = dispute.post(f"{RECORDINGS}/search", json=query)
            pages += 1
            seen += ids(response)
            cursor = response.json()["next_cursor"]
            if cursor is None:
                break
        assert pages == 4, method
        assert seen == [str(r.id) for r in expected], method


# --- bad input ------------------------------------------------------------------

BAD_FILTERS: list[tuple[dict[str, Any], str]] = [
    ({"from": "2025-13-01"}, "from"),
    ({"from": "last tuesday"}, "from"),
    ({"to": "2025-03-01T25:00:00"}, "to"),
    ({"from": "2025-03-02", "to": "2025-03-01"}, "to"),
    ({"direction": "sideways"}, "direction"),
    ({"order": "random"}, "order"),
    ({"limit": 0}, "limit"),
    ({"limit": 201}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"cursor": base64.urlsafe_b64encode(b'{"a": 1}').decode()}, "cursor"),
    ({"reason": ["gossip"]}, "reason"),
    ({"reason": ["billing", "gossip"]}, "reason"),
    ({"number": "12"}, "number"),
    ({"number": "040 123"}, "number"),
    ({"number": "+358 40 123 4567 8901 2345"}, "number"),
    ({"number": "x" * 65}, "number"),
    ({"identity_code": "131052-308X"}, "identity_code"),
    ({"identity_code": "131352-308T"}, "identity_code"),
    ({"identity_code": "2077474-1"}, "identity_code"),
    ({"min_duration": -1}, "min_duration"),
    ({"max_duration": 10**9}, "max_duration"),
    ({"min_duration": 5, "max_duration": 1}, "max_duration"),
    ({"held": "maybe"}, "held"),
    ({"agent": "a" * 129}, "agent"),
    ({"customer_id": "C\x01"}, "customer_id"),
]


@pytest.mark.parametrize(("filters", "field"), BAD_FILTERS, ids=[f for _, f in BAD_FILTERS])
def test_bad_filters_are_422_naming_the_field(
    world: World, filters: dict[str, Any], field: str
) -> None:
    dispute = world.as_role(D)
    for response in (
        dispute.get(RECORDINGS, params=_query(filters)),
        dispute.post(f"{RECORDINGS}/search", json=filters),
    ):
        error = assert_error(response, 422, "invalid_request", field)
        assert error["message"].startswith(f"{field}: "), error
        for value in filters.values():
            if field in ("number", "identity_code"):
                assert str(value) not in response.text
                assert str(value).replace(" ", "") not in response.text


@pytest.mark.parametrize(
    "query",
    [
        {"from": "0001-01-01"},
        {"from": "0001-01-01T00:00:00+14:00"},
        {"to": "9999-12-31T23:59:59-14:00"},
        {"cursor": "forged-uuid"},
        {"cursor": "forged-date"},
    ],
    ids=["naive-year-1", "year-1-east", "year-9999-west", "cursor-id-not-text", "cursor-year-1"],
)
def test_dates_at_the_edge_of_the_calendar_and_forged_cursors_are_422(
    world: World, query: dict[str, str]
) -> None:
    forged = {
        "forged-uuid": ["2025-01-01T00:00:00+00:00", 123],
        "forged-date": ["0001-01-01T00:00:00+05:00", uuid.uuid4().hex],
    }
    if query.get("cursor") in forged:
        raw = json.dumps(forged[query["cursor"]]).encode()
        query = {"cursor": base64.urlsafe_b64encode(raw).decode().rstrip("=")}
    field = next(iter(query))
    assert_error(world.as_role(D).get(RECORDINGS, params=query), 422, "invalid_request", field)
    response = world.as_role(D).post(f"{RECORDINGS}/search", json=query)
    assert_error(response, 422, "invalid_request", field)
    if field != "cursor":
        auditor = world.as_role(A)
        assert_error(auditor.get("/api/v1/audit", params=query), 422, "invalid_request", field)


@pytest.mark.parametrize(
    "path",
    [
        f"{RECORDINGS}/not-a-uuid",
        f"{RECORDINGS}/123/audio?purpose=dispute&case=D-1",
        f"{RECORDINGS}/{'0' * 31}/audio?purpose=dispute&case=D-1",
    ],
)
def test_malformed_recording_ids_are_422(world: World, path: str) -> None:
    assert_error(world.as_role(D).get(path), 422, "invalid_request", "recording_id")


def test_malformed_ids_in_post_paths_are_422(world: World) -> None:
    dispute = world.as_role(D)
    response = dispute.post(f"{RECORDINGS}/xyz/reasons", json={"add": ["billing"]})
    assert_error(response, 422, "invalid_request", "recording_id")
    response = dispute.post("/api/v1/holds/xyz/release", json={"reason": "done"})
    assert_error(response, 422, "invalid_request", "hold_id")


def test_unknown_recording_is_404(world: World) -> None:
    dispute = world.as_role(D)
    missing = uuid.uuid4()
    assert_error(dispute.get(f"{RECORDINGS}/{missing}"), 404, "not_found")
    assert_error(dispute.get(audio_url(missing), params=DISPUTE), 404, "not_found")
    response = dispute.post(f"{RECORDINGS}/{missing}/reasons", json={"add": ["billing"]})
    assert_error(response, 404, "not_found")


def test_oversized_query_string_is_414(world: World) -> None:
    response = world.as_role(D).get(RECORDINGS, params={"agent": "a" * 5000})
    assert_error(response, 414, "uri_too_long")
    within = world.as_role(D).get(RECORDINGS, params={"agent": "a" * 128, **WINDOW})
    assert ids(within) == []


HOSTILE = [
    "' OR 1=1 --",
    "'; DROP TABLE recordings; --",
    '" OR ""="',
    "1); DELETE FROM audit_events; --",
    "../../etc/passwd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "..\\..\\windows\\win.ini",
    "C-100' --",
    "\u202eC-100",
    "Ω≈ç√∫µ≤≥÷",
]

#: String parameters of GET /recordings (and the search body) and what they may answer.
STRING_FILTERS = [
    "customer_id", "number", "identity_code", "from", "to", "reason", "agent", "queue",
    "direction", "order", "cursor",
]  # fmt: skip


def _intact(runtime: Runtime) -> tuple[set[str], int, int]:
    with runtime.sessions() as session:
        recordings = session.scalar(select(func.count(Recording.id))) or 0
        customers = session.scalar(select(func.count(Customer.customer_id))) or 0
    return table_names(runtime.engine), recordings, customers


def test_sql_and_path_fragments_never_cause_a_server_error(world: World) -> None:
    before = _intact(world.runtime)
    dispute = world.as_role(D)
    recording = add_recording(world.runtime, customer_id="C-HOSTILE", agent="agent-hostile")
    problems = []

    def check(label: str, response: httpx.Response, allowed: set[int]) -> None:
        if response.status_code not in allowed:
            problems.append((label, response.status_code, response.text[:200]))
        elif response.headers["content-type"] == "application/json" and (
            response.status_code == 200 and response.json().get("items")
        ):
            problems.append((label, "found something", response.text[:200]))

    for value in HOSTILE:
        for name in STRING_FILTERS:
            check(
                f"GET {name}={value!r}", dispute.get(RECORDINGS, params={name: value}), {200, 422}
            )
            body = {name: [value] if name == "reason" else value}
            check(f"POST {name}={value!r}", dispute.post(f"{RECORDINGS}/search", json=body),
                  {200, 422})  # fmt: skip
        raw = f"{RECORDINGS}?agent={value}&queue={value}"
        check(f"raw {value!r}", dispute.get(raw), {200, 422})
        check(f"path {value!r}", dispute.get(f"{RECORDINGS}/{value}"), {404, 422})
        check(f"audio path {value!r}", dispute.get(f"{RECORDINGS}/{value}/audio"), {404, 422})
        params = {"purpose": "dispute", "case": value}
        response = dispute.get(audio_url(recording), params=params)
        check(f"audio case {value!r}", response, {200})
        for name in ("purpose", "format"):
            response = dispute.get(audio_url(recording), params={**DISPUTE, name: value})
            check(f"audio {name} {value!r}", response, {422})
        response = dispute.post("/api/v1/holds", json={"case_ref": value, "reason": value,
                                                       "customer_id": value})  # fmt: skip
        check(f"hold {value!r}", response, {201})
        if response.status_code == 201:
            released = dispute.post(f"/api/v1/holds/{response.json()['id']}/release",
                                    json={"reason": value})  # fmt: skip
            check(f"release {value!r}", released, {200})
        response = world.as_role(A).get(
            "/api/v1/audit", params={"actor": value, "action": value, "limit": 5}
        )
        check(f"audit {value!r}", response, {200})
    assert problems == []
    assert _intact(world.runtime) == (before[0], before[1] + 1, before[2])
    assert verify_chain(world.runtime.sessions).intact
    assert ids(dispute.get(RECORDINGS, params={"customer_id": "C-100", **WINDOW})) == names(
        world, "b", "a"
    )


@pytest.mark.parametrize(
    ("method", "url", "payload"),
    [
        ("GET", "audio", {"purpose": "dispute", "case": "D\x001"}),
        ("POST", "/api/v1/holds", {"case_ref": "D\x001", "reason": "r", "customer_id": "C-NUL"}),
        ("POST", "/api/v1/holds", {"case_ref": "D-1", "reason": "r\x00", "customer_id": "C-NUL"}),
        ("POST", "/api/v1/holds", {"case_ref": "D-1", "reason": "r", "customer_id": "C\x00"}),
        ("GET", "/api/v1/audit", {"actor": "a\x00"}),
        ("GET", "/api/v1/audit", {"action": "a\x00"}),
    ],
    ids=["audio-case", "hold-case", "hold-reason", "hold-customer", "audit-actor", "audit-action"],
)
def test_nul_characters_in_free_text_are_refused_not_a_server_error(
    world: World, method: str, url: str, payload: dict[str, str]
) -> None:
    role = A if "audit" in url else D
    client = world.as_role(role)
    if url == "audio":
        recording = add_recording(world.runtime, customer_id="C-NUL")
        response = client.get(audio_url(recording), params=payload)
    elif method == "GET":
        response = client.get(url, params=payload)
    else:
        response = client.post(url, json=payload)
    assert response.status_code == 422, response.text


# --- authentication and roles -----------------------------------------------------


def test_missing_garbage_and_revoked_tokens_are_401(world: World) -> None:
    revoked = add_user(world.runtime, "revoked-user", D, actor=ADMIN)
    revoke_token(world.runtime, revoked.token_id, actor=ADMIN)
    client = world.api.anonymous()
    forged = f"rca_{uuid.uuid4().hex}_{'A' * 43}"
    attempts = {
        "missing": {},
        "garbage": {"Authorization": "Bearer garbage"},
        "empty": {"Authorization": "Bearer "},
        "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
        "forged": {"Authorization": f"Bearer {forged}"},
        "revoked": {"Authorization": f"Bearer {revoked.token}"},
        "token in the cookie": {"Cookie": f"recarchive_session={world.role_tokens[D]}"},
        "token in the old cookie": {"Cookie": f"recarchive_token={world.role_tokens[D]}"},
    }
    for label, headers in attempts.items():
        method = "GET"
        url = f"{RECORDINGS}/search" if method == "POST" else RECORDINGS
        response = client.request(
            method, url, headers=headers, json={} if method == "POST" else None
        )
        assert response.status_code == 401, (label, response.text)
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="recarchive"', label
        assert response.json()["error"]["code"] == "unauthenticated"
    refusals = {
        client.get(RECORDINGS, headers=attempts[k]).json()["error"]["message"]
        for k in ("forged", "revoked")
    }
    assert refusals == {"invalid or expired token"}
    # Unauthenticated requests learn nothing about recordings.
    assert client.get(f"{RECORDINGS}/{world.rec['a'].id}").status_code == 401
    assert client.get(f"{RECORDINGS}/not-a-uuid").status_code == 401


def test_the_sign_in_cookie_works_for_reads(world: World) -> None:
    """The cookie holds a web session (tests/integration/test_api_sessions.py), not a token."""
    with TestClient(create_app(world.runtime), follow_redirects=False) as client:
        signed_in = client.post(
            "/session", data={"token": world.role_tokens[D]}, headers={"Origin": BASE_URL}
        )
        assert signed_in.status_code == 303, signed_in.text
        response = client.get(f"{RECORDINGS}/{world.rec['a'].id}")
        assert response.status_code == 200, response.text


def test_me_names_the_role_and_its_purposes(world: World) -> None:
    me = world.as_role(P).get("/api/v1/me").json()
    assert me == {
        "user": "privacy_officer",
        "role": "privacy_officer",
        "purposes": ["data_subject_request", "dispute"],
        "sees_identity": True,
    }
    assert world.as_role(Q).get("/api/v1/me").json()["purposes"] == ["training"]


# --- metadata and audio -----------------------------------------------------------


def test_metadata_of_one_recording(world: World) -> None:
    recording = world.rec["c"]
    body = world.as_role(D).get(f"{RECORDINGS}/{recording.id}").json()
    assert body["id"] == str(recording.id)
    assert body["held"] is True
    assert [hold["case_ref"] for hold in body["holds"]] == ["D-1"]
    assert body["customer"]["customer_id"] == "C-200"
    assert body["retention"]["class"] == "standard"
    assert body["audio"] == {
        "format": "wav",
        "codec": "pcm_s16le",
        "channels": 1,
        "sample_rate": 8000,
        "size_bytes": recording.size_bytes,
        "sha256": recording.sha256,
    }
    trainer = world.as_role(Q).get(f"{RECORDINGS}/{recording.id}").json()
    assert trainer["customer"] is None
    assert trainer["holds"] is None


def test_purpose_rules(world: World) -> None:
    url = audio_url(world.rec["a"])
    dispute, trainer = world.as_role(D), world.as_role(Q)
    seq = last_seq(world.runtime)
    assert_error(dispute.get(url), 422, "invalid_request", "purpose")
    assert_error(dispute.get(url, params={"purpose": "dispute"}), 422, "invalid_request", "purpose")
    assert_error(
        dispute.get(url, params={"purpose": "dispute", "case": "  "}), 422, field="purpose"
    )
    assert_error(dispute.get(url, params={"purpose": "marketing"}), 422, field="purpose")
    assert_error(dispute.get(url, params={"purpose": "training"}), 403, "forbidden")
    assert_error(trainer.get(url, params=DISPUTE), 403, "forbidden")
    assert_error(trainer.get(url, params={"purpose": "training", "download": "true"}), 403)
    assert_error(world.as_role(A).get(url, params=DISPUTE), 403, "forbidden")
    # A refusal for a recording that does not exist looks the same.
    assert_error(trainer.get(audio_url(uuid.uuid4()), params=DISPUTE), 403, "forbidden")
    # Nothing played; each 403 is on record as a refusal (test_api_refusals.py).
    assert [e.action for e in audit_since(world.runtime, seq)] == ["access.refused"] * 5
    assert trainer.get(url, params={"purpose": "training"}).status_code == 200
    privacy = world.as_role(P)
    response = privacy.get(url, params={"purpose": "data_subject_request", "case": "DSR-1"})
    assert response.status_code == 200


def test_range_requests(audio_world: World) -> None:
    recording = add_recording(audio_world.runtime, customer_id="C-RANGE", seconds=2)
    data = wav_bytes(2)
    size = len(data)
    dispute = audio_world.as_role(D)
    url = audio_url(recording)

    def get(range_header: str | None) -> httpx.Response:
        headers = {"Range": range_header} if range_header is not None else {}
        return dispute.get(url, params=DISPUTE, headers=headers)

    whole = get(None)
    assert whole.status_code == 200
    assert whole.content == data
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert whole.headers["ETag"] == f'"{recording.sha256}"'
    assert whole.headers["Content-Length"] == str(size)
    assert whole.headers["Content-Type"] == "audio/wav"
    assert whole.headers["Content-Disposition"] == f'inline; filename="{recording.id}.wav"'

    partial = {
        "bytes=0-99": (0, 99),
        "bytes=100-": (100, size - 1),
        "bytes=-500": (size - 500, size - 1),
        f"bytes=0-{size * 10}": (0, size - 1),
        f"bytes={size - 1}-{size - 1}": (size - 1, size - 1),
        f"bytes=-{size * 2}": (0, size - 1),
        "bytes = 10 - 19": (10, 19),
    }
    for header, (start, end) in partial.items():
        response = get(header)
        assert response.status_code == 206, (header, response.text[:200])
        assert response.content == data[start : end + 1], header
        assert response.headers["Content-Range"] == f"bytes {start}-{end}/{size}", header
        assert response.headers["Content-Length"] == str(end - start + 1), header
        assert response.headers["ETag"] == f'"{recording.sha256}"'

    for header in (f"bytes={size}-", f"bytes={size + 100}-{size + 200}", "bytes=-0"):
        response = get(header)
        assert_error(response, 416, "range_not_satisfiable")
        assert response.headers["Content-Range"] == f"bytes */{size}", header

    for header in (
        "bytes=0-1,5-6",
        "bytes=abc",
        "items=0-5",
        "bytes=5-2",
        "bytes=-",
        "bytes=0-1-2",
    ):
        response = get(header)
        assert response.status_code == 200, header
        assert response.content == data, header
        assert "Content-Range" not in response.headers

    details = [
        e.details for e in audit_since(audio_world.runtime, 0) if e.recording_id == recording.id
    ]
    assert {"range": "0-99"} in details
    assert {"range": f"{size - 500}-{size - 1}"} in details


def test_download_and_play_are_different_audit_actions(audio_world: World) -> None:
    recording = add_recording(audio_world.runtime, customer_id="C-DL")
    dispute = audio_world.as_role(D)
    seq = last_seq(audio_world.runtime)
    played = dispute.get(audio_url(recording), params=DISPUTE)
    downloaded = dispute.get(audio_url(recording), params={**DISPUTE, "download": "true"})
    assert played.headers["Content-Disposition"].startswith("inline;")
    assert downloaded.headers["Content-Disposition"] == (
        f'attachment; filename="{recording.id}.wav"'
    )
    assert downloaded.content == played.content == wav_bytes(2)
    events = audit_since(audio_world.runtime, seq)
    assert [(e.action, e.recording_id, e.purpose, e.case_ref) for e in events] == [
        ("play", recording.id, "dispute", "D-42"),
        ("download", recording.id, "dispute", "D-42"),
    ]


@pytest.mark.parametrize(
    ("fmt", "container", "codec", "content_type", "extension"),
    [
        ("opus", "ogg", "opus", "audio/ogg", "ogg"),
        ("mp3", "mp3", "mp3", "audio/mpeg", "mp3"),
        ("wav", "wav", "pcm_s16le", "audio/wav", "wav"),
    ],
)
def test_transcoded_playback(
    audio_world: World,
    tmp_path: Path,
    fmt: str,
    container: str,
    codec: str,
    content_type: str,
    extension: str,
) -> None:
    recording = add_recording(audio_world.runtime, customer_id="C-TRANSCODE", seconds=3, channels=2)
    response = audio_world.as_role(D).get(
        audio_url(recording), params={**DISPUTE, "format": fmt}, headers={"Range": "bytes=0-99"}
    )
    assert response.status_code == 200, response.text[:300]
    assert response.headers["Content-Type"] == content_type
    assert response.headers["Accept-Ranges"] == "none"
    assert response.headers["Content-Disposition"] == (
        f'inline; filename="{recording.id}.{extension}"'
    )
    path = tmp_path / f"out.{extension}"
    path.write_bytes(response.content)
    probed = ffprobe(path)
    assert probed["format"] == container
    assert probed["codec"] == codec
    assert probed["duration"] == pytest.approx(3.0, abs=0.25)
    events = audit_since(audio_world.runtime, last_seq(audio_world.runtime) - 1)
    assert events[-1].details == {"format": fmt}


def test_a_recording_whose_object_vanished_is_404_audio_missing(audio_world: World) -> None:
    recording = add_recording(audio_world.runtime, customer_id="C-VANISHED")
    audio_world.runtime.store.delete(recording.object_key)
    dispute = audio_world.as_role(D)
    assert_error(dispute.get(audio_url(recording), params=DISPUTE), 404, "audio_missing")
    response = dispute.get(audio_url(recording), params=DISPUTE, headers={"Range": "bytes=0-9"})
    assert_error(response, 404, "audio_missing")
    # The catalogue still knows it: metadata is served.
    assert dispute.get(f"{RECORDINGS}/{recording.id}").status_code == 200


def test_a_transcode_of_a_vanished_object_is_404_not_an_empty_200(audio_world: World) -> None:
    recording = add_recording(audio_world.runtime, customer_id="C-VANISHED")
    audio_world.runtime.store.delete(recording.object_key)
    response = audio_world.as_role(D).get(
        audio_url(recording), params={**DISPUTE, "format": "opus"}
    )
    assert_error(response, 404, "audio_missing")


def test_an_expired_recording_is_410_with_its_tombstone(audio_world: World) -> None:
    runtime = audio_world.runtime
    past = utcnow() - dt.timedelta(days=1)
    recording = add_recording(
        runtime, customer_id="C-EXPIRED", caller_number=NUMBER, agent="agent-expired",
        started_at=past - dt.timedelta(days=365), retain_until=past,
    )  # fmt: skip
    report = expire_recordings(runtime)
    assert report.deleted == 1
    assert not runtime.store.exists(recording.object_key)
    for role, url, params in [
        (D, f"{RECORDINGS}/{recording.id}", {}),
        (D, audio_url(recording), DISPUTE),
        (Q, f"{RECORDINGS}/{recording.id}", {}),
        (Q, audio_url(recording), {"purpose": "training"}),
    ]:
        response = audio_world.as_role(role).get(url, params=params)
        error = assert_error(response, 410, "gone")
        tombstone = error["tombstone"]
        assert set(tombstone) == {"id", "deleted_at", "rule", "sha256"}
        assert tombstone["id"] == str(recording.id)
        assert tombstone["sha256"] == recording.sha256
        assert tombstone["rule"] == "retention:default"
        assert dt.datetime.fromisoformat(tombstone["deleted_at"]) > past
        assert NUMBER not in response.text
        assert "C-EXPIRED" not in response.text
    gone = audio_world.as_role(D).get(RECORDINGS, params={"agent": "agent-expired"})
    assert ids(gone) == []


# --- restrictions ---------------------------------------------------------------------


def _restrict(runtime: Runtime, **fields: Any) -> ProcessingRestriction:
    restriction = ProcessingRestriction(created_by="privacy-officer", **fields)
    with transaction(runtime.sessions) as session:
        session.add(restriction)
    return restriction


@pytest.fixture(scope="module")
def restricted(world: World) -> dict[str, Recording]:
    """Recordings under each kind of restriction, all by agent ``agent-restricted``."""
    runtime = world.runtime
    rec = {
        name: add_recording(runtime, customer_id=customer, agent="agent-restricted")
        for name, customer in [
            ("customer_restricted", "C-RESTRICTED"),
            ("customer_objected", "C-OBJECTED"),
            ("recording_restricted", "C-FREE"),
            ("recording_objected", "C-FREE"),
            ("lifted", "C-LIFTED"),
            ("free", "C-FREE"),
        ]
    }
    _restrict(runtime, kind=RestrictionKind.RESTRICTION, customer_id="C-RESTRICTED",
              allowed_purpose="dispute", case_ref="D-77")  # fmt: skip
    _restrict(runtime, kind=RestrictionKind.OBJECTION, customer_id="C-OBJECTED")
    _restrict(runtime, kind=RestrictionKind.RESTRICTION,
              recording_id=rec["recording_restricted"].id, allowed_purpose="dispute")  # fmt: skip
    _restrict(runtime, kind=RestrictionKind.OBJECTION, recording_id=rec["recording_objected"].id)
    _restrict(runtime, kind=RestrictionKind.RESTRICTION, customer_id="C-LIFTED",
              lifted_at=utcnow(), lifted_by="privacy-officer")  # fmt: skip
    return rec


HIDDEN_FROM_TRAINERS = [
    "customer_restricted", "customer_objected", "recording_restricted", "recording_objected",
]  # fmt: skip


def test_trainers_never_see_restricted_or_objected_recordings(
    world: World, restricted: dict[str, Recording]
) -> None:
    trainer = world.as_role(Q)
    found = ids(trainer.get(RECORDINGS, params={"agent": "agent-restricted", "order": "oldest"}))
    assert set(found) == {str(restricted["lifted"].id), str(restricted["free"].id)}
    body = trainer.post(f"{RECORDINGS}/search", json={"agent": "agent-restricted", "limit": 200})
    assert set(ids(body)) == set(found)
    for name in HIDDEN_FROM_TRAINERS:
        recording = restricted[name]
        assert_error(trainer.get(f"{RECORDINGS}/{recording.id}"), 404, "not_found")
        response = trainer.get(audio_url(recording), params={"purpose": "training"})
        assert_error(response, 404, "not_found")
    assert (
        trainer.get(audio_url(restricted["lifted"]), params={"purpose": "training"}).status_code
        == 200
    )
    # Dispute handlers see all six, flagged.
    everything = world.as_role(D).get(RECORDINGS, params={"agent": "agent-restricted"}).json()
    flags = {item["id"]: (item["restricted"], item["objected"]) for item in everything["items"]}
    assert flags == {
        str(restricted["customer_restricted"].id): (True, False),
        str(restricted["customer_objected"].id): (False, True),
        str(restricted["recording_restricted"].id): (True, False),
        str(restricted["recording_objected"].id): (False, True),
        str(restricted["lifted"].id): (False, False),
        str(restricted["free"].id): (False, False),
    }


def test_restricted_recordings_play_only_for_the_allowed_purpose_and_case(
    world: World, restricted: dict[str, Recording]
) -> None:
    dispute, privacy = world.as_role(D), world.as_role(P)
    by_customer = audio_url(restricted["customer_restricted"])
    assert (
        dispute.get(by_customer, params={"purpose": "dispute", "case": "D-77"}).status_code == 200
    )
    assert (
        dispute.get(by_customer, params={"purpose": "dispute", "case": " D-77 "}).status_code == 200
    )
    assert_error(dispute.get(by_customer, params={"purpose": "dispute", "case": "D-78"}), 403,
                 "restricted")  # fmt: skip
    response = privacy.get(by_customer, params={"purpose": "data_subject_request", "case": "D-77"})
    assert_error(response, 403, "restricted")
    by_recording = audio_url(restricted["recording_restricted"])
    assert (
        dispute.get(by_recording, params={"purpose": "dispute", "case": "any"}).status_code == 200
    )
    response = privacy.get(by_recording, params={"purpose": "data_subject_request", "case": "R-1"})
    assert_error(response, 403, "restricted")
    # An objection only keeps a recording out of training.
    for name in ("customer_objected", "recording_objected"):
        response = dispute.get(audio_url(restricted[name]), params=DISPUTE)
        assert response.status_code == 200, name


def test_a_refusal_does_not_tell_the_case_that_unlocks_a_restriction(
    world: World, restricted: dict[str, Recording]
) -> None:
    response = world.as_role(D).get(
        audio_url(restricted["customer_restricted"]), params={"purpose": "dispute", "case": "D-1"}
    )
    assert_error(response, 403, "restricted")
    assert "D-77" not in response.text


# --- holds ------------------------------------------------------------------------------


def test_holds_through_the_api(world: World) -> None:
    runtime = world.runtime
    dispute = world.as_role(D)
    first, second, third = (
        add_recording(runtime, customer_id="C-HOLD", agent="agent-hold") for _ in range(3)
    )
    placed = dispute.post(
        "/api/v1/holds",
        json={"case_ref": "D-500", "reason": "billing dispute",
              "recording_ids": [str(first.id), str(second.id), str(first.id)]},
    )  # fmt: skip
    assert placed.status_code == 201, placed.text
    hold = placed.json()
    assert (hold["case_ref"], hold["recordings"], hold["placed_by"]) == (
        "D-500",
        2,
        "dispute_handler",
    )
    assert hold["customer_id"] is None
    assert hold["released_at"] is None
    metadata = dispute.get(f"{RECORDINGS}/{first.id}").json()
    assert metadata["held"] is True
    assert [h["id"] for h in metadata["holds"]] == [hold["id"]]
    held = dispute.get(RECORDINGS, params={"agent": "agent-hold", "held": "true"})
    assert set(ids(held)) == {str(first.id), str(second.id)}

    until = (dt.datetime.now() + dt.timedelta(days=30)).replace(microsecond=0)
    on_customer = dispute.post(
        "/api/v1/holds",
        json={"case_ref": "L-9", "reason": "legal claim", "customer_id": "C-HOLD",
              "until": until.isoformat()},
    )  # fmt: skip
    assert on_customer.status_code == 201, on_customer.text
    assert on_customer.json()["recordings"] == 3
    stored_until = dt.datetime.fromisoformat(on_customer.json()["until"])
    assert stored_until == until.replace(tzinfo=runtime.settings.tz)  # naive: Helsinki time
    listed = {h["id"]: h for h in dispute.get("/api/v1/holds").json()["items"]}
    assert {hold["id"], on_customer.json()["id"]} <= set(listed)
    assert listed[on_customer.json()["id"]]["recordings"] == 3

    released = dispute.post(f"/api/v1/holds/{hold['id']}/release", json={"reason": "settled"})
    assert released.status_code == 200, released.text
    assert released.json()["released_by"] == "dispute_handler"
    again = dispute.post(f"/api/v1/holds/{hold['id']}/release", json={"reason": "settled"})
    assert_error(again, 409, "conflict")
    unknown = dispute.post(f"/api/v1/holds/{uuid.uuid4()}/release", json={"reason": "x"})
    assert_error(unknown, 404, "not_found")
    open_ids = {h["id"] for h in dispute.get("/api/v1/holds").json()["items"]}
    assert hold["id"] not in open_ids
    with_released = dispute.get("/api/v1/holds", params={"include_released": "true"}).json()
    assert hold["id"] in {h["id"] for h in with_released["items"]}
    assert set(ids(dispute.get(RECORDINGS, params={"agent": "agent-hold", "held": "true"}))) == {
        str(first.id),
        str(second.id),
        str(third.id),
    }  # still under the customer hold
    dispute.post(f"/api/v1/holds/{on_customer.json()['id']}/release", json={"reason": "done"})
    assert ids(dispute.get(RECORDINGS, params={"agent": "agent-hold", "held": "true"})) == []
    assert world.as_role(Q).get("/api/v1/holds").status_code == 403


HOLD_BAD_INPUT: list[tuple[dict[str, Any], str]] = [
    ({"case_ref": "D-1", "reason": "r"}, "recording_ids"),
    ({"case_ref": "D-1", "reason": "r", "customer_id": "C-1", "recording_ids": ["RID"]},
     "recording_ids"),
    ({"case_ref": "D-1", "reason": "r", "recording_ids": ["not-a-uuid"]}, "recording_ids.0"),
    ({"case_ref": "", "reason": "r", "recording_ids": ["RID"]}, "case_ref"),
    ({"reason": "r", "recording_ids": ["RID"]}, "case_ref"),
    ({"case_ref": "D-1", "recording_ids": ["RID"]}, "reason"),
    ({"case_ref": "D-1", "reason": "r", "customer_id": ""}, "customer_id"),
    ({"case_ref": "D-1", "reason": "r", "recording_ids": ["RID"], "until": "soon"}, "until"),
    # Times Python cannot convert to UTC, and naive ones at the calendar's ends.
    ({"case_ref": "D-1", "reason": "r", "customer_id": "C-1",
      "until": "9999-12-31T23:59:59-14:00"}, "until"),
    ({"case_ref": "D-1", "reason": "r", "recording_ids": ["RID"],
      "until": "0001-01-01T00:00:00+14:00"}, "until"),
    ({"case_ref": "D-1", "reason": "r", "recording_ids": ["RID"],
      "until": "0001-01-01T00:00:00"}, "until"),
    ({"case_ref": "D-1", "reason": "r", "recording_ids": ["RID"],
      "until": "9999-12-31T23:59:59"}, "until"),
    ({"case_ref": "D-1", "reason": "r", "recording_ids": ["RID"], "until": 10**30}, "until"),
    ({"case_ref": "D-1", "reason": "r", "recording_ids": ["RID"], "extra": 1}, "extra"),
    ({"case_ref": "x" * 129, "reason": "r", "recording_ids": ["RID"]}, "case_ref"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "field"), HOLD_BAD_INPUT, ids=[f for _, f in HOLD_BAD_INPUT])
def test_hold_bad_input_is_422(world: World, body: dict[str, Any], field: str) -> None:
    rid = str(world.rec["a"].id)
    body = {k: [rid if v == "RID" else v for v in value] if k == "recording_ids" else value
            for k, value in body.items()}  # fmt: skip
    seq = last_seq(world.runtime)
    assert_error(world.as_role(D).post("/api/v1/holds", json=body), 422, "invalid_request", field)
    assert audit_since(world.runtime, seq) == []


def test_holds_the_service_refuses_are_409(world: World) -> None:
    dispute = world.as_role(D)
    recording = add_recording(world.runtime, customer_id="C-HOLD-REFUSED")
    missing = uuid.uuid4()
    both = [str(recording.id), str(missing)]
    body = {"case_ref": "D-1", "reason": "r", "recording_ids": both}
    response = dispute.post("/api/v1/holds", json=body)
    error = assert_error(response, 409, "conflict")
    assert str(missing) in error["message"]
    response = dispute.post("/api/v1/holds", json={
        "case_ref": "D-1", "reason": "r", "recording_ids": [str(recording.id)],
        "until": "2020-01-01T00:00:00Z"})  # fmt: skip
    assert_error(response, 409, "conflict")
    response = dispute.post("/api/v1/holds/00000000-0000-0000-0000-000000000000/release", json={})
    assert_error(response, 422, "invalid_request", "reason")
    assert dispute.get(f"{RECORDINGS}/{recording.id}").json()["held"] is False


# --- reason corrections -------------------------------------------------------------------


def test_reason_corrections(world: World) -> None:
    recording = add_recording(world.runtime, customer_id="C-REASONS", reasons=["billing"])
    url = f"{RECORDINGS}/{recording.id}/reasons"
    dispute = world.as_role(D)
    seq = last_seq(world.runtime)
    steps = [
        ({"set": ["moving", "fault_report"]}, ["billing"], ["fault_report", "moving"], True),
        ({"add": ["billing"]}, ["fault_report", "moving"], ["billing", "fault_report", "moving"],
         True),
        ({"remove": ["fault_report"]}, ["billing", "fault_report", "moving"], ["billing", "moving"],
         True),
        ({"add": ["moving"], "remove": ["other"]}, ["billing", "moving"], ["billing", "moving"],
         False),
        ({"set": []}, ["billing", "moving"], [], True),
        ({"set": ["other"], "add": ["billing"]}, [], ["billing", "other"], True),
    ]  # fmt: skip
    for body, before, after, changed in steps:
        response = dispute.post(url, json=body)
        assert response.status_code == 200, response.text
        assert response.json() == {
            "id": str(recording.id), "before": before, "after": after, "changed": changed,
        }  # fmt: skip
    assert dispute.get(f"{RECORDINGS}/{recording.id}").json()["reasons"] == ["billing", "other"]
    events = [e for e in audit_since(world.runtime, seq) if e.action != "view"]
    assert [(e.details["before"], e.details["after"]) for e in events] == [
        (before, after) for _, before, after, changed in steps if changed
    ]
    assert {(e.action, e.actor, e.recording_id) for e in events} == {
        ("reasons.correct", "dispute_handler", recording.id)
    }


def test_a_correction_that_changes_nothing_is_no_change(world: World) -> None:
    # Codes whose alphabetical order is not their order in the taxonomy.
    recording = add_recording(world.runtime, customer_id="C-REASONS", reasons=["moving", "outage"])
    seq = last_seq(world.runtime)
    response = world.as_role(D).post(
        f"{RECORDINGS}/{recording.id}/reasons", json={"add": ["moving"]}
    )
    assert response.json()["before"] == response.json()["after"] == ["outage", "moving"]
    assert response.json()["changed"] is False
    assert audit_since(world.runtime, seq) == []


def test_reason_correction_bad_input(world: World) -> None:
    recording = add_recording(world.runtime, customer_id="C-REASONS", reasons=["billing"])
    url = f"{RECORDINGS}/{recording.id}/reasons"
    dispute = world.as_role(D)
    seq = last_seq(world.runtime)
    error = assert_error(
        dispute.post(url, json={"add": ["gossip"]}), 422, "invalid_request", "codes"
    )
    assert "gossip" in error["message"]
    body = {"set": ["billing"], "remove": ["rumour"]}
    assert_error(dispute.post(url, json=body), 422, field="codes")
    assert_error(dispute.post(url, json={}), 422, "invalid_request", "set")
    assert_error(dispute.post(url, json={"replace": ["billing"]}), 422, field="replace")
    assert_error(dispute.post(url, json={"add": "billing"}), 422, field="add")
    assert_error(dispute.post(url, json={"add": ["billing"] * 21}), 422, field="add")
    assert_error(world.as_role(Q).post(url, json={"add": ["billing"]}), 403, "forbidden")
    assert [e.action for e in audit_since(world.runtime, seq)] == ["access.refused"]
    assert dispute.get(f"{RECORDINGS}/{recording.id}").json()["reasons"] == ["billing"]


# --- audit ------------------------------------------------------------------------------------


def test_reads_are_audited_with_who_why_and_from_where(world: World) -> None:
    runtime = world.runtime
    recording = add_recording(runtime, customer_id="C-AUDIT", caller_number=NUMBER)
    dispute, trainer = world.as_role(D), world.as_role(Q)
    seq = last_seq(runtime)
    assert dispute.get(RECORDINGS, params={"number": "040 123 4567", **WINDOW}).status_code == 200
    assert dispute.post(f"{RECORDINGS}/search", json={"identity_code": HETU}).status_code == 200
    assert dispute.get(RECORDINGS, params={"customer_id": "C-AUDIT"}).status_code == 200
    assert dispute.get(f"{RECORDINGS}/{recording.id}").status_code == 200
    assert dispute.get(audio_url(recording), params=DISPUTE).status_code == 200
    response = dispute.get(audio_url(recording), params={**DISPUTE, "download": "true"})
    assert response.status_code == 200
    assert trainer.get(audio_url(recording), params={"purpose": "training"}).status_code == 200
    events = audit_since(runtime, seq)
    rows = [
        (e.actor, e.actor_role, e.action, e.recording_id, e.purpose, e.case_ref, e.client_addr)
        for e in events
    ]
    rid = recording.id
    assert rows == [
        ("dispute_handler", "dispute_handler", "search", None, None, None, "testclient"),
        ("dispute_handler", "dispute_handler", "search", None, None, None, "testclient"),
        ("dispute_handler", "dispute_handler", "search", None, None, None, "testclient"),
        ("dispute_handler", "dispute_handler", "view", rid, None, None, "testclient"),
        ("dispute_handler", "dispute_handler", "play", rid, "dispute", "D-42", "testclient"),
        ("dispute_handler", "dispute_handler", "download", rid, "dispute", "D-42", "testclient"),
        ("qa_trainer", "qa_trainer", "play", rid, "training", None, "testclient"),
    ]
    assert events[0].details["filters"] == ["number", "started_from", "started_to"]
    assert events[1].details["filters"] == ["identity_hash"]
    assert events[2].details["customer_id"] == "C-AUDIT"
    assert events[2].details["results"] == 1
    assert verify_chain(runtime.sessions).intact


def test_changes_are_audited_with_role_and_client_address(world: World) -> None:
    runtime = world.runtime
    recording = add_recording(runtime, customer_id="C-AUDIT-CHANGE", reasons=["billing"])
    dispute = world.as_role(D)
    seq = last_seq(runtime)
    body = {"case_ref": "D-900", "reason": "dispute", "recording_ids": [str(recording.id)]}
    hold = dispute.post("/api/v1/holds", json=body).json()
    dispute.post(f"/api/v1/holds/{hold['id']}/release", json={"reason": "settled"})
    dispute.post(f"{RECORDINGS}/{recording.id}/reasons", json={"add": ["moving"]})
    events = audit_since(runtime, seq)
    assert [e.action for e in events] == ["hold.place", "hold.release", "reasons.correct"]
    assert [e.case_ref for e in events] == ["D-900", "D-900", None]
    assert events[2].recording_id == recording.id
    assert [(e.actor, e.actor_role, e.client_addr) for e in events] == [
        ("dispute_handler", "dispute_handler", "testclient")
    ] * 3


def test_the_audit_log_holds_no_numbers_or_identity_codes(world: World) -> None:
    dispute = world.as_role(D)
    seq = last_seq(world.runtime)
    for spelling in NUMBER_SPELLINGS:  # searches that carry personal data, valid and not
        dispute.get(RECORDINGS, params={"number": spelling})
    dispute.get(RECORDINGS, params={"number": "040 123"})
    dispute.post(f"{RECORDINGS}/search", json={"identity_code": HETU})
    dispute.post(f"{RECORDINGS}/search", json={"identity_code": "131052-308X"})
    dispute.get(RECORDINGS, params={"identity_code": YTUNNUS})
    with world.runtime.sessions() as session:
        entries = [entry_content(e) for e in session.scalars(select(AuditEvent))]
    dumped = json.dumps(entries, ensure_ascii=False, default=str)
    searches = [e for e in audit_since(world.runtime, seq) if e.action == "search"]
    assert len(searches) == len(NUMBER_SPELLINGS) + 2  # the valid number and identity-code searches
    leaked = [value for value in (*PERSONAL, "Maija", "Esimerkki") if value in dumped]
    assert leaked == []
    secrets = [token.split("_", 2)[2] for token in world.role_tokens.values()]  # rca_<id>_<secret>
    assert all(len(secret) == 43 for secret in secrets)  # a secret may itself hold "_"
    assert not [secret for secret in secrets if secret in dumped]
    assert verify_chain(world.runtime.sessions).intact


def test_auditors_read_the_log_and_their_reading_is_audited(world: World) -> None:
    played = world.as_role(D).get(audio_url(world.rec["a"]), params=DISPUTE)
    assert played.status_code == 200  # a play of its own: tests run in any order, on any worker
    auditor = world.as_role(A)
    first = auditor.get("/api/v1/audit", params={"limit": 3})
    assert first.status_code == 200, first.text
    page = first.json()
    assert len(page["items"]) == 3
    assert page["items"][0]["prev_hash"] == "0" * 64
    assert page["items"][1]["prev_hash"] == page["items"][0]["hash"]
    second = auditor.get("/api/v1/audit", params={"limit": 3, "cursor": page["next_cursor"]}).json()
    assert second["items"][0]["seq"] > page["items"][-1]["seq"]
    plays = auditor.get("/api/v1/audit", params={"action": "play", "limit": 1000}).json()
    assert plays["items"]
    assert {item["action"] for item in plays["items"]} == {"play"}
    of_one = auditor.get("/api/v1/audit", params={"recording_id": str(world.rec["a"].id)}).json()
    assert all(item["recording_id"] == str(world.rec["a"].id) for item in of_one["items"])
    events = audit_since(world.runtime, last_seq(world.runtime) - 1)
    assert (events[-1].action, events[-1].actor_role) == ("audit.read", "auditor")
    assert_error(world.as_role(D).get("/api/v1/audit"), 403, "forbidden")
    assert_error(auditor.get("/api/v1/audit", params={"limit": 0}), 422, field="limit")
    assert_error(auditor.get("/api/v1/audit", params={"from": "never"}), 422, field="from")


# --- operations ---------------------------------------------------------------------------------


def test_healthz(world: World) -> None:
    response = world.api.anonymous().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "catalogue": "ok", "audit": "ok", "store": "ok"}
    assert response.headers["X-Content-Type-Options"] == "nosniff"


UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def test_metrics_are_labelled_by_route_template_only(world: World) -> None:
    dispute = world.as_role(D)
    dispute.get(f"{RECORDINGS}/{world.rec['a'].id}")
    dispute.get(f"{RECORDINGS}/{uuid.uuid4()}")
    dispute.get(RECORDINGS, params={"number": "040 123 4567"})
    dispute.get(f"/nothing/here/{NUMBER}")
    text = world.api.anonymous().get("/metrics").text
    requests = [
        line for line in text.splitlines() if line.startswith("recarchive_http_requests_total{")
    ]
    routes = {re.search(r'route="([^"]*)"', line).group(1) for line in requests}  # type: ignore[union-attr]
    documented = world.api.anonymous().get("/openapi.json").json()["paths"]
    templates = {*documented, "/openapi.json", "/docs", "unmatched"}
    assert "/api/v1/recordings/{recording_id}" in routes
    assert "/api/v1/recordings" in routes
    assert routes <= templates
    assert not UUID_PATTERN.search(text)
    assert not [value for value in PERSONAL if value in text]
    assert 'status="404"' in text
    assert "recarchive_recordings{" in text


def test_metrics_carry_the_figures_of_recarchive_status(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recarchive.api import metrics
    from recarchive.status import installation_status

    monkeypatch.setattr(metrics, "GAUGE_TTL_S", 0.0)  # read now, not an earlier test's figures
    text = world.api.anonymous().get("/metrics").text
    gauges = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("recarchive_") and not line.startswith("recarchive_http")
    }
    status = installation_status(world.runtime)
    assert gauges["recarchive_stored_bytes"] == status.bytes_stored
    assert gauges["recarchive_encryption_enabled"] == 0  # this world stores plaintext
    assert not status.encryption.enabled
    assert gauges["recarchive_recordings_plaintext"] == status.encryption.plaintext
    assert status.encryption.plaintext > 0
    assert gauges["recarchive_work_waiting"] == status.waiting
    assert gauges["recarchive_quarantine_open"] == sum(status.quarantined.values())
    assert gauges["recarchive_holds_open"] == status.open_holds
    assert gauges["recarchive_subject_requests_open"] == status.open_requests
    assert gauges["recarchive_audit_last_seq"] == status.audit.head_seq
    assert gauges["recarchive_store_up"] == 1
    assert gauges["recarchive_work_remains"] == status.work_remains
    assert gauges["recarchive_nightly_done"] == (status.nightly.done_at is not None)
    assert (
        gauges["recarchive_nightly_next_timestamp_seconds"] == status.nightly.following.timestamp()
    )
    for source in status.sources:
        assert gauges[f'recarchive_source_waiting{{source="{source.name}"}}'] == source.waiting


def test_openapi_lists_the_endpoints(world: World) -> None:
    schema = world.api.anonymous().get("/openapi.json").json()
    paths = {path: sorted(ops) for path, ops in schema["paths"].items()}
    assert {
        "/api/v1/recordings": ["get"],
        "/api/v1/recordings/search": ["post"],
        "/api/v1/recordings/{recording_id}": ["get"],
        "/api/v1/recordings/{recording_id}/audio": ["get"],
        "/api/v1/recordings/{recording_id}/reasons": ["post"],
        "/api/v1/holds": ["get", "post"],
        "/api/v1/holds/{hold_id}/release": ["post"],
        "/api/v1/audit": ["get"],
        "/api/v1/me": ["get"],
        "/healthz": ["get"],
        "/metrics": ["get"],
    }.items() <= paths.items()
