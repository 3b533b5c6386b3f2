"""``/api/v1/cases`` on both catalogues: the contract the case page is built on."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from recarchive.access.models import Role
from tests.api_fixtures import (
    ApiClient,
    RoleClient,
    add_customer,
    add_recording,
    build_runtime,
    close_runtime,
    tokens,
)

D, P, Q = Role.DISPUTE_HANDLER, Role.PRIVACY_OFFICER, Role.QA_TRAINER
SUMMARY_KEYS = {
    "id", "reference", "kind", "status", "customer_id", "document_ref", "handler",
    "opened_at", "closed_at", "recordings",
}  # fmt: skip
DETAIL_KEYS = SUMMARY_KEYS | {
    "opened_by", "closed_by", "close_reason", "delete_after", "hold", "notes", "exports",
}  # fmt: skip
RECORDING_KEYS = {
    "id", "started_at", "duration_ms", "direction", "agent", "queue", "caller_number",
    "status", "added_by", "added_at", "other_holds",
}  # fmt: skip
ENTRY_KEYS = {
    "seq", "at", "actor", "actor_role", "action", "recording_id", "purpose", "case_ref",
    "details", "hash",
}  # fmt: skip


@pytest.fixture(scope="module")
def api(catalogue_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiClient]:
    runtime = build_runtime(catalogue_url, Path(tmp_path_factory.mktemp("api-cases")))
    add_customer(runtime, "C-API-CASE", "Api Case Customer")
    with ApiClient(runtime, tokens(runtime)) as client:
        yield client
    close_runtime(runtime)


def _open(client: RoleClient, **extra: object) -> dict[str, object]:
    reference = f"API-{uuid.uuid4().hex[:8]}"
    response = client.post(
        "/api/v1/cases", json={"reference": reference, "kind": "billing", **extra}
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def test_a_case_through_the_api(api: ApiClient) -> None:
    handler, officer = api.as_role(D), api.as_role(P)
    first = add_recording(api.runtime, agent="api-case", caller_number="040 555 0101")
    second = add_recording(api.runtime, agent="api-case")
    case = _open(handler, customer_id="C-API-CASE", document_ref="INV-1")
    assert set(case) == DETAIL_KEYS
    assert (case["status"], case["handler"], case["hold"], case["recordings"]) == (
        "open", "dispute_handler", None, []
    )  # fmt: skip
    url = f"/api/v1/cases/{case['id']}"
    linked = handler.post(f"{url}/recordings", json={"recording_ids": [str(first.id)]})
    assert linked.status_code == 200, linked.text
    (row,) = linked.json()["recordings"]
    assert set(row) == RECORDING_KEYS
    assert (row["id"], row["status"], row["other_holds"]) == (str(first.id), "active", 0)
    assert row["caller_number"] == "+358405550101"
    searched = officer.post(f"{url}/recordings", json={"search": {"agent": "api-case"}})
    assert searched.status_code == 200, searched.text
    detail = searched.json()
    assert {r["id"] for r in detail["recordings"]} == {str(first.id), str(second.id)}
    assert detail["hold"]["recordings"] == 2
    assert detail["hold"]["released_at"] is None
    holds = handler.get("/api/v1/holds").json()["items"]
    assert [h["case_id"] for h in holds if h["id"] == detail["hold"]["id"]] == [case["id"]]
    both = handler.post(
        f"{url}/recordings", json={"recording_ids": [str(first.id)], "search": {"agent": "x"}}
    )
    assert both.status_code == 422, both.text
    noted = handler.post(f"{url}/notes", json={"text": "Called back.\nNo answer."})
    assert [n["text"] for n in noted.json()["notes"]] == ["Called back.\nNo answer."]
    unlinked = handler.request("DELETE", f"{url}/recordings/{second.id}")
    assert unlinked.status_code == 200, unlinked.text
    assert [r["id"] for r in unlinked.json()["recordings"]] == [str(first.id)]
    missing = handler.request("DELETE", f"{url}/recordings/{second.id}")
    assert missing.status_code == 404
    listed = handler.get("/api/v1/cases").json()["cases"]
    mine = [c for c in listed if c["id"] == case["id"]]
    assert len(mine) == 1
    assert set(mine[0]) == SUMMARY_KEYS
    assert mine[0]["recordings"] == 1
    shown = officer.get(url)
    assert shown.status_code == 200
    assert set(shown.json()) == DETAIL_KEYS
    hold_id = shown.json()["hold"]["id"]
    refused = officer.post(f"/api/v1/holds/{hold_id}/release", json={"reason": "tidy"})
    assert refused.status_code == 409
    assert "close the case to release it" in refused.json()["error"]["message"]
    closed = officer.post(f"{url}/close", json={"reason": "credited"})
    assert closed.status_code == 200, closed.text
    body = closed.json()
    assert (body["status"], body["close_reason"], body["closed_by"]) == (
        "closed", "credited", "privacy_officer"
    )  # fmt: skip
    assert body["delete_after"] is not None
    assert body["hold"]["released_at"] is not None
    again = officer.post(f"{url}/close", json={"reason": "again"})
    assert again.status_code == 409
    late = handler.post(f"{url}/recordings", json={"recording_ids": [str(second.id)]})
    assert late.status_code == 409
    assert case["id"] not in [c["id"] for c in handler.get("/api/v1/cases").json()["cases"]]
    closed_list = handler.get("/api/v1/cases", params={"status": "closed"}).json()["cases"]
    assert case["id"] in [c["id"] for c in closed_list]
    entries = handler.get(f"{url}/custody").json()["entries"]
    assert all(set(e) == ENTRY_KEYS for e in entries)
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)
    done = [e["action"] for e in entries]
    for action in ("case.open", "hold.place", "case.link", "hold.extend", "case.note"):
        assert action in done
    for action in ("case.unlink", "case.view", "hold.release", "case.close"):
        assert action in done
    assert entries[0]["action"] == "case.open"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"reference": "", "kind": "billing"}, 422),
        ({"reference": "   ", "kind": "billing"}, 422),
        ({"reference": "R" * 129, "kind": "billing"}, 422),
        ({"reference": "A\x07B", "kind": "billing"}, 422),
        ({"reference": "OK-1", "kind": "fraud"}, 422),
        ({"reference": "OK-1", "kind": "billing", "customer_id": "C-NOBODY"}, 422),
        ({"reference": "OK-1", "kind": "billing", "handler": "qa_trainer"}, 422),
        ({"reference": "OK-1", "kind": "billing", "extra": 1}, 422),
    ],
)
def test_bad_cases_are_refused(api: ApiClient, body: dict[str, object], status: int) -> None:
    response = api.as_role(D).post("/api/v1/cases", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == "invalid_request"
    assert "C-NOBODY" not in response.text


def test_a_taken_reference_is_a_conflict_naming_it(api: ApiClient) -> None:
    case = _open(api.as_role(D))
    again = api.as_role(P).post(
        "/api/v1/cases", json={"reference": case["reference"], "kind": "other"}
    )
    assert again.status_code == 409
    assert str(case["reference"]) in again.json()["error"]["message"]


def test_unknown_cases_and_recordings(api: ApiClient) -> None:
    handler = api.as_role(D)
    unknown = uuid.uuid4()
    assert handler.get(f"/api/v1/cases/{unknown}").status_code == 404
    case = _open(handler)
    response = handler.post(
        f"/api/v1/cases/{case['id']}/recordings", json={"recording_ids": [str(unknown)]}
    )
    assert response.status_code == 409
    assert str(unknown) in response.json()["error"]["message"]


@pytest.mark.parametrize("role", [Q, Role.AUDITOR, Role.ADMIN])
def test_other_roles_see_no_case(api: ApiClient, role: Role) -> None:
    case = _open(api.as_role(D))
    client = api.as_role(role)
    for response in (
        client.get("/api/v1/cases"),
        client.get(f"/api/v1/cases/{case['id']}"),
        client.get(f"/api/v1/cases/{case['id']}/custody"),
        client.post(f"/api/v1/cases/{case['id']}/notes", json={"text": "x"}),
        client.post(f"/api/v1/cases/{case['id']}/close", json={"reason": "x"}),
    ):
        assert response.status_code == 403, response.text
