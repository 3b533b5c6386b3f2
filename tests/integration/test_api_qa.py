"""``/api/v1/qa`` on both catalogues: plans, a sample drawn once and shown again, its check,
clear 422s for bad periods, and nothing in a QA answer that says who called."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Iterator

import pytest

from recarchive.access.models import Role
from recarchive.runtime import Runtime
from tests.api_fixtures import (
    ApiClient,
    add_customer,
    add_recording,
    build_runtime,
    close_runtime,
    leaks,
    national,
    new_number,
    tokens,
)

Q = Role.QA_TRAINER
PLANS = "/api/v1/qa/plans"
#: Week 2026-W40 (Monday 2026-09-28, Helsinki): over, and the recordings still retained.
IN_WEEK = dt.datetime(2026, 9, 29, 9, 0, tzinfo=dt.UTC)


@dataclasses.dataclass
class World:
    runtime: Runtime
    api: ApiClient
    customer: str
    number: str


@pytest.fixture(scope="module")
def world(catalogue_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    runtime = build_runtime(catalogue_url, tmp_path_factory.mktemp("qa-api"))
    number = new_number()
    customer = f"C-{uuid.uuid4().hex[:6]}"
    add_customer(runtime, customer, "Qa Api Customer", [national(number)])
    for n in range(6):
        add_recording(
            runtime,
            started_at=IN_WEEK + dt.timedelta(hours=n),
            agent=f"agent-{n % 2}",
            queue="billing-q",
            reasons=["billing"],
            customer_id=customer,
            caller_number=national(number),
        )
    api = ApiClient(runtime, tokens(runtime))
    yield World(runtime, api, customer, number)
    api.close()
    close_runtime(runtime)


def _plan(world: World, **criteria: object) -> dict[str, object]:
    body = {"name": f"plan-{uuid.uuid4().hex[:6]}", "calls_per_agent": 2, "period_kind": "week"}
    response = world.api.as_role(Q).post(PLANS, json={**body, **criteria})
    assert response.status_code == 201, response.text
    data: dict[str, object] = response.json()
    return data


def test_a_plan_is_created_listed_shown_and_revised(world: World) -> None:
    plan = _plan(world, queues=["billing-q"], reason_codes=["billing"], direction="inbound")
    trainer = world.api.as_role(Q)
    assert plan["version"] == 1
    assert plan["criteria"]["queues"] == ["billing-q"]  # type: ignore[index]
    listed = trainer.get(PLANS).json()["items"]
    assert plan["id"] in [p["id"] for p in listed]
    revised = trainer.post(
        f"{PLANS}/{plan['id']}/versions", json={"calls_per_agent": 5, "period_kind": "month"}
    )
    assert revised.status_code == 201, revised.text
    shown = trainer.get(f"{PLANS}/{plan['id']}").json()
    assert shown["version"] == 2
    assert [v["criteria"]["calls_per_agent"] for v in shown["versions"]] == [2, 5]
    taken = trainer.post(
        PLANS, json={"name": plan["name"], "calls_per_agent": 1, "period_kind": "week"}
    )
    assert taken.status_code == 409


def test_a_sample_is_drawn_once_shown_again_and_verified(world: World) -> None:
    plan = _plan(world, queues=["billing-q"])
    trainer = world.api.as_role(Q)
    first = trainer.post(f"{PLANS}/{plan['id']}/samples", json={"period": "2026-W40"})
    assert first.status_code == 200, first.text
    again = trainer.post(f"{PLANS}/{plan['id']}/samples", json={"period": "2026-W40"})
    a, b = first.json(), again.json()
    assert (a["already_drawn"], b["already_drawn"]) == (False, True)
    assert a["id"] == b["id"]
    assert [r["id"] for r in a["recordings"]] == [r["id"] for r in b["recordings"]]
    assert len(a["recordings"]) == 4
    assert [(x["agent"], x["candidates"], x["picked"]) for x in a["agents"]] == [
        ("agent-0", 3, 2),
        ("agent-1", 3, 2),
    ]
    shown = trainer.get(f"/api/v1/qa/samples/{a['id']}").json()
    assert [r["id"] for r in shown["recordings"]] == [r["id"] for r in a["recordings"]]
    verified = trainer.get(f"/api/v1/qa/samples/{a['id']}/verify")
    assert verified.status_code == 200
    assert verified.json()["ok"] is True
    assert [x["matches"] for x in verified.json()["agents"]] == [True, True]


def test_qa_answers_never_say_who_called(world: World) -> None:
    plan = _plan(world, queues=["billing-q"], calls_per_agent=3)
    trainer = world.api.as_role(Q)
    sample = trainer.post(f"{PLANS}/{plan['id']}/samples", json={"period": "2026-W40"})
    verify = trainer.get(f"/api/v1/qa/samples/{sample.json()['id']}/verify")
    texts = [sample.text, verify.text, trainer.get(PLANS).text]
    assert sample.json()["recordings"], "nothing to look at"
    for item in sample.json()["recordings"]:
        assert item["customer"] is None
        assert item["holds"] is None
    for text in texts:
        assert world.customer not in text
        assert not leaks(text)
        assert "Qa Api Customer" not in text
    assert "customer_id" not in json.dumps(sample.json())


@pytest.mark.parametrize(
    ("period", "field_message"),
    [
        ("2026-W54", "ISO weeks 01 to 53"),
        ("2026-13", "months are 01 to 12"),
        ("garbage", "not a period"),
        ("2026-W40 ", None),  # surrounding spaces are forgiven: a valid week
        ("2999-W01", "has not ended"),
        ("2026-09", "samples by week"),
    ],
)
def test_bad_periods_get_a_clear_422(world: World, period: str, field_message: str | None) -> None:
    plan = _plan(world)
    response = world.api.as_role(Q).post(f"{PLANS}/{plan['id']}/samples", json={"period": period})
    if field_message is None:
        assert response.status_code == 200, response.text
        return
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "period"
    assert field_message in error["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"calls_per_agent": 0, "period_kind": "week"},
        {"calls_per_agent": 1, "period_kind": "fortnight"},
        {"calls_per_agent": 1, "period_kind": "week", "min_duration_s": 60, "max_duration_s": 10},
        {"calls_per_agent": 1, "period_kind": "week", "unknown": 1},
    ],
)
def test_bad_criteria_get_a_422(world: World, body: dict[str, object]) -> None:
    response = world.api.as_role(Q).post(PLANS, json={"name": "bad", **body})
    assert response.status_code == 422, response.text


def test_unknown_plans_and_samples_are_404(world: World) -> None:
    trainer = world.api.as_role(Q)
    unknown = uuid.uuid4()
    assert trainer.get(f"{PLANS}/{unknown}").status_code == 404
    assert (
        trainer.post(f"{PLANS}/{unknown}/samples", json={"period": "2026-W40"}).status_code == 404
    )
    assert trainer.get(f"/api/v1/qa/samples/{unknown}").status_code == 404
    assert trainer.get(f"/api/v1/qa/samples/{unknown}/verify").status_code == 404


@pytest.mark.parametrize("role", [r for r in Role if r is not Q], ids=lambda r: r.value)
def test_other_roles_are_refused_the_qa_workspace(world: World, role: Role) -> None:
    plan = _plan(world)
    other = world.api.as_role(role)
    for response in (
        other.get(PLANS),
        other.post(PLANS, json={"name": "x", "calls_per_agent": 1, "period_kind": "week"}),
        other.get(f"{PLANS}/{plan['id']}"),
        other.post(f"{PLANS}/{plan['id']}/samples", json={"period": "2026-W40"}),
    ):
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "forbidden"
