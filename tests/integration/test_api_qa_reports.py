"""``/api/v1/qa/reports`` and ``/api/v1/qa/reports.csv`` on both catalogues.

Two agents' calls scored over HTTP in 2026-W40 and W41; the JSON is a list
of agents each with every period, the CSV a download that round-trips
through ``csv.reader`` (with its ``sections`` table), ranges past 104
periods and periods of the wrong kind are clear 422s, and nothing in either
says who called. The role matrix is in test_api_matrix.py; the figures are
checked in detail in test_qa_reports.py.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

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
from tests.qa_fixtures import IN_WEEK_40

Q = Role.QA_TRAINER
REPORTS = "/api/v1/qa/reports"
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "qa-form.json"
ANSWERS = {
    "greeting": "yes",
    "identity": "yes",
    "understood": 4,
    "accurate": "yes",
    "hold": "na",
    "summary": "no",
}
RANGE = {"period": "week", "from": "2026-W40", "to": "2026-W41"}


@dataclasses.dataclass
class World:
    runtime: Runtime
    api: ApiClient
    customer: str


@pytest.fixture(scope="module")
def world(catalogue_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    runtime = build_runtime(catalogue_url, tmp_path_factory.mktemp("qa-reports-api"))
    number = new_number()
    customer = f"C-{uuid.uuid4().hex[:6]}"
    add_customer(runtime, customer, "Report Api Customer", [national(number)])
    api = ApiClient(runtime, tokens(runtime))
    trainer = api.as_role(Q)
    form = trainer.post("/api/v1/qa/forms", json=json.loads(EXAMPLE.read_text(encoding="utf-8")))
    assert form.status_code == 201, form.text
    calls = [
        ("agent-x", IN_WEEK_40, ANSWERS),  # 82.5
        ("agent-x", IN_WEEK_40 + dt.timedelta(days=7), {**ANSWERS, "accurate": "no"}),  # 30
        ("agent-y", IN_WEEK_40, {**ANSWERS, "identity": "no"}),  # 0
    ]
    for agent, started_at, answers in calls:
        recording = add_recording(runtime, agent=agent, queue="service-q", started_at=started_at,
                                  customer_id=customer, caller_number=national(number))  # fmt: skip
        made = trainer.post("/api/v1/qa/evaluations", json={
            "recording_id": str(recording.id), "form_version_id": form.json()["current_version_id"],
            "answers": answers, "submit": True})  # fmt: skip
        assert made.status_code == 201, made.text
    yield World(runtime, api, customer)
    api.close()
    close_runtime(runtime)


def _no_caller(world: World, text: str) -> None:
    assert world.customer not in text
    assert "Report Api Customer" not in text
    assert not leaks(text)


def test_the_json_is_a_list_of_agents_each_with_every_period(world: World) -> None:
    response = world.api.as_role(Q).get(REPORTS, params=RANGE)
    assert response.status_code == 200, response.text
    data = response.json()
    assert (data["period_kind"], data["from"], data["to"]) == ("week", "2026-W40", "2026-W41")
    assert [p["period"] for p in data["periods"]] == ["2026-W40", "2026-W41"]
    agents = {a["agent"]: a for a in data["agents"]}
    assert list(agents) == ["agent-x", "agent-y"]
    x40, x41 = agents["agent-x"]["periods"]
    assert (x40["evaluations"], x40["average"], x40["picked"]) == (1, 82.5, 0)
    assert (x41["average"], x41["critical_failures"], x41["delta"]) == (30.0, 1, -52.5)
    assert agents["agent-x"]["trend"][1] == {"period": "2026-W41", "average": 30.0, "delta": -52.5}
    assert [(s["section_id"], s["average"]) for s in x41["sections"]] == [
        ("opening", 100.0), ("handling", 0.0), ("closing", 0.0),
    ]  # fmt: skip
    y40 = agents["agent-y"]["periods"][0]
    assert (y40["average"], y40["critical_failures"]) == (0.0, 1)
    only = world.api.as_role(Q).get(REPORTS, params={**RANGE, "agent": "agent-y"}).json()
    assert [a["agent"] for a in only["agents"]] == ["agent-y"]
    queue = world.api.as_role(Q).get(REPORTS, params={**RANGE, "queue": "service-q"}).json()
    assert queue["agents"][0]["periods"][0]["picked"] is None
    everyone = world.api.as_role(Q).get(REPORTS, params={**RANGE, "agent": "", "queue": ""})
    assert [a["agent"] for a in everyone.json()["agents"]] == ["agent-x", "agent-y"]
    _no_caller(world, response.text)


def test_the_default_range_is_the_last_six_periods(world: World) -> None:
    data = world.api.as_role(Q).get(REPORTS, params={"period": "month"}).json()
    assert len(data["periods"]) == 6
    assert data["period_kind"] == "month"


def test_the_csv_is_a_download_that_round_trips(world: World) -> None:
    response = world.api.as_role(Q).get(f"{REPORTS}.csv", params=RANGE)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == (
        'attachment; filename="qa-report-2026-W40-2026-W41-agents.csv"'
    )
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0][:3] == ["agent", "period", "period_start"]
    assert [(r[0], r[1], r[8]) for r in rows[1:]] == [
        ("agent-x", "2026-W40", "82.5"),
        ("agent-x", "2026-W41", "30.0"),
        ("agent-y", "2026-W40", "0.0"),
        ("agent-y", "2026-W41", ""),
    ]
    sections = world.api.as_role(Q).get(f"{REPORTS}.csv", params={**RANGE, "table": "sections"})
    rows = list(csv.reader(io.StringIO(sections.text)))
    assert rows[0][-3:] == ["section_title", "evaluations", "average"]
    assert len(rows) == 1 + 3 * 3
    wrong = world.api.as_role(Q).get(f"{REPORTS}.csv", params={**RANGE, "table": "answers"})
    assert (wrong.status_code, wrong.json()["error"]["field"]) == (422, "table")
    _no_caller(world, response.text + sections.text)


@pytest.mark.parametrize(
    ("params", "field", "fragment"),
    [
        ({"from": "2026-W01", "to": "2028-W10"}, "from", "at most 104 periods"),
        ({"from": "2026-W41", "to": "2026-W40"}, "to", "before it starts"),
        ({"from": "2026-09"}, "from", "a week report takes periods like 2026-W49"),
        ({"to": "2026-W99"}, "to", "ISO weeks 01 to 53"),
        ({"period": "day"}, "period", ""),
    ],
)
@pytest.mark.parametrize("path", [REPORTS, f"{REPORTS}.csv"])
def test_a_bad_range_is_a_clear_422(
    world: World, path: str, params: dict[str, str], field: str, fragment: str
) -> None:
    response = world.api.as_role(Q).get(path, params={"period": "week", **params})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert fragment in error["message"]
