"""QA reports and the "not yet evaluated" sampling filter, on both catalogues.

A small archive, built once per backend: two agents, two forms, weeks
2026-W40 and 2026-W41 (Europe/Helsinki). Every expected figure below is
computed by hand from the scoring rules of docs/qa.md:

- agent-a, W40: c1 82.5 (opening 100, handling 87.5, closing 0); c2 first
  82.5, then revised to 30 (a section critical: handling 0), only 30 counts;
  c3 on form B 50 (manner 50), its call deleted since; c4 a draft (not
  counted). Average (82.5 + 30 + 50) / 3 = 54.1666… → 54.17.
- agent-a, W41: c6 on form B, 100. Delta 100 - 162.5/3 = 45.8333… → 45.83.
- agent-b, W40: c5 with a form critical failed: 0 (opening 0, handling
  87.5, closing 0). W41: c7 82.5, delta 82.5.
- The W40 sample (10 per agent, so every candidate is picked): agent-a 4
  (c1 to c4), agent-b 1 (c5); c3's deletion withdraws it.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from recarchive.access.models import AuditEvent, Role
from recarchive.access.policy import Forbidden
from recarchive.catalogue.database import transaction
from recarchive.catalogue.models import Recording
from recarchive.qa.evaluations import create_evaluation, revise_evaluation
from recarchive.qa.models import SampleCall
from recarchive.qa.plans import Criteria, create_plan
from recarchive.qa.report_csv import AGENT_COLUMNS, SECTION_COLUMNS, report_csv
from recarchive.qa.reports import ReportRangeError, build_report
from recarchive.qa.sampling import run_sample, show_sample
from recarchive.qa.scorecards import create_form
from recarchive.qa.verify import verify_sample
from recarchive.runtime import Runtime
from tests.actors import staff
from tests.api_fixtures import build_runtime, close_runtime
from tests.qa_fixtures import IN_WEEK_40, add_call

TRAINER = staff("report-trainer", Role.QA_TRAINER)
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "qa-form.json"
WEEK = dt.timedelta(days=7)
ANSWERS = {
    "greeting": "yes",
    "identity": "yes",
    "understood": 4,
    "accurate": "yes",
    "hold": "na",
    "summary": "no",
}
FORM_B = {
    "sections": [
        {
            "id": "manner",
            "title": "Manner",
            "questions": [
                {"id": "q1", "text": "Polite?", "kind": "yes_no_na"},
                {"id": "q2", "text": "Patient?", "kind": "yes_no_na"},
            ],
        }
    ]
}


@dataclasses.dataclass
class World:
    runtime: Runtime
    form_a: uuid.UUID
    form_b: uuid.UUID
    sample_id: uuid.UUID


def _evaluate(runtime: Runtime, call: uuid.UUID, version: uuid.UUID, answers: Any) -> uuid.UUID:
    view = create_evaluation(
        runtime, recording_id=call, form_version_id=version, answers=answers, submit=True,
        actor=TRAINER,
    )  # fmt: skip
    return view.evaluation.id


@pytest.fixture(scope="module")
def world(catalogue_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    runtime = build_runtime(catalogue_url, tmp_path_factory.mktemp("qa-reports"))
    example = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    example.pop("name")
    form_a = create_form(runtime, name="A form", definition=example, actor=TRAINER)
    form_b = create_form(runtime, name="B form", definition=FORM_B, actor=TRAINER)
    a_version, b_version = form_a.versions[0].id, form_b.versions[0].id
    w41 = IN_WEEK_40 + WEEK
    c1, c2, c3, c4 = (add_call(runtime, agent="agent-a", queue=q)
                      for q in ("sales", "sales", "support", "sales"))  # fmt: skip
    c5 = add_call(runtime, agent="agent-b", queue="sales")
    c6 = add_call(runtime, agent="agent-a", queue="support", started_at=w41)
    c7 = add_call(runtime, agent="agent-b", queue="sales", started_at=w41)
    plan = create_plan(runtime, name="report-plan", criteria=Criteria(10, "week"), actor=TRAINER)
    sample = run_sample(runtime, plan.id, "2026-W40", actor=TRAINER)
    _evaluate(runtime, c1, a_version, ANSWERS)
    second = _evaluate(runtime, c2, a_version, ANSWERS)
    revise_evaluation(runtime, second, answers={**ANSWERS, "accurate": "no"}, actor=TRAINER)
    _evaluate(runtime, c3, b_version, {"q1": "yes", "q2": "no"})
    create_evaluation(runtime, recording_id=c4, form_version_id=b_version,
                      answers={"q1": "yes", "q2": "yes"}, actor=TRAINER)  # fmt: skip
    _evaluate(runtime, c5, a_version, {**ANSWERS, "identity": "no"})
    _evaluate(runtime, c6, b_version, {"q1": "yes", "q2": "yes"})
    _evaluate(runtime, c7, a_version, ANSWERS)
    with transaction(runtime.sessions) as session:  # c3's call is gone; its evaluation is not
        recording = session.get(Recording, c3)
        assert recording is not None
        session.delete(recording)
    show_sample(runtime, sample.sample.id, actor=TRAINER)  # withdraws c3
    yield World(runtime, form_a.id, form_b.id, sample.sample.id)
    close_runtime(runtime)


def _report(world: World, **options: Any) -> dict[str, Any]:
    options = {"period_kind": "week", "first": "2026-W40", "last": "2026-W41", **options}
    return build_report(world.runtime, actor=TRAINER, **options).as_dict()


def _figures(period: dict[str, Any]) -> tuple[Any, ...]:
    keys = ("picked", "withdrawn", "evaluations", "scored", "average", "min", "max")
    return (*(period[k] for k in keys), period["critical_failures"], period["delta"])


def test_every_figure_per_agent_and_period_is_the_hand_computed_one(world: World) -> None:
    report = _report(world)
    assert [p["period"] for p in report["periods"]] == ["2026-W40", "2026-W41"]
    agents = {a["agent"]: a["periods"] for a in report["agents"]}
    assert list(agents) == ["agent-a", "agent-b"]
    a40, a41 = agents["agent-a"]
    assert _figures(a40) == (4, 1, 3, 3, 54.17, 30.0, 82.5, 1, None)
    assert _figures(a41) == (0, 0, 1, 1, 100.0, 100.0, 100.0, 0, 45.83)
    b40, b41 = agents["agent-b"]
    assert _figures(b40) == (1, 0, 1, 1, 0.0, 0.0, 0.0, 1, None)
    assert _figures(b41) == (0, 0, 1, 1, 82.5, 82.5, 82.5, 0, 82.5)
    sections = [(s["form"], s["section_id"], s["title"], s["evaluations"], s["average"])
                for s in a40["sections"]]  # fmt: skip
    assert sections == [
        ("A form", "opening", "Opening", 2, 100.0),
        ("A form", "handling", "Handling the request", 2, 43.75),
        ("A form", "closing", "Closing", 2, 0.0),
        ("B form", "manner", "Manner", 1, 50.0),
    ]
    assert [(s["section_id"], s["average"]) for s in b40["sections"]] == [
        ("opening", 0.0),
        ("handling", 87.5),
        ("closing", 0.0),
    ]
    trend = {a["agent"]: a["trend"] for a in report["agents"]}
    assert trend["agent-a"] == [
        {"period": "2026-W40", "average": 54.17, "delta": None},
        {"period": "2026-W41", "average": 100.0, "delta": 45.83},
    ]


def test_filters_by_agent_and_queue(world: World) -> None:
    only_b = _report(world, agent=" agent-b ")
    assert [a["agent"] for a in only_b["agents"]] == ["agent-b"]
    assert only_b["agent"] == "agent-b"
    sales = {a["agent"]: a["periods"] for a in _report(world, queue="sales")["agents"]}
    a40, a41 = sales["agent-a"]
    # c1 82.5 and c2 30 only; a sample's calls carry no queue, so no counts of them.
    assert _figures(a40) == (None, None, 2, 2, 56.25, 30.0, 82.5, 1, None)
    assert _figures(a41) == (None, None, 0, 0, None, None, None, 0, None)
    nobody = _report(world, agent="agent-nobody")
    assert [(a["agent"], a["periods"][0]["evaluations"]) for a in nobody["agents"]] == [
        ("agent-nobody", 0)
    ]


def test_a_month_report_counts_the_same_evaluations_and_only_month_samples(world: World) -> None:
    report = _report(world, period_kind="month", first="2026-09", last="2026-10")
    agents = {a["agent"]: a["periods"] for a in report["agents"]}
    september, october = agents["agent-a"]
    # 29 September is W40; 6 October (W41) is in October. The W40 sample is a week plan's.
    assert _figures(september) == (0, 0, 3, 3, 54.17, 30.0, 82.5, 1, None)
    assert (october["evaluations"], october["average"], october["delta"]) == (1, 100.0, 45.83)


def test_the_csv_round_trips_with_its_documented_columns(world: World) -> None:
    report = build_report(world.runtime, period_kind="week", first="2026-W40", last="2026-W41",
                          actor=TRAINER)  # fmt: skip
    rows = list(csv.reader(io.StringIO(report_csv(report))))
    assert tuple(rows[0]) == AGENT_COLUMNS
    assert len(rows) == 1 + 4
    first = dict(zip(AGENT_COLUMNS, rows[1], strict=True))
    assert (first["agent"], first["period"], first["average"], first["delta"]) == (
        "agent-a", "2026-W40", "54.17", "",
    )  # fmt: skip
    assert (first["picked"], first["withdrawn"], first["critical_failures"]) == ("4", "1", "1")
    sections = list(csv.reader(io.StringIO(report_csv(report, "sections"))))
    assert tuple(sections[0]) == SECTION_COLUMNS
    assert sections[1][:2] + sections[1][3:] == [
        "agent-a", "2026-W40", "A form", "opening", "Opening", "2", "100.0",
    ]  # fmt: skip
    assert len(sections) == 1 + 4 + 1 + 3 + 3


def test_a_formula_looking_agent_id_title_and_form_name_are_neutralised(world: World) -> None:
    form = create_form(world.runtime, name="=HYPERLINK(1)", actor=TRAINER, definition={
        "sections": [{"id": "tone", "title": "+Tone", "questions": [
            {"id": "t", "text": "Calm?", "kind": "yes_no_na"}]}]})  # fmt: skip
    call = add_call(world.runtime, agent="=cmd|'/C calc'!A0", started_at=IN_WEEK_40 + 2 * WEEK)
    _evaluate(world.runtime, call, form.versions[0].id, {"t": "no"})
    report = build_report(world.runtime, period_kind="week", first="2026-W42", last="2026-W42",
                          actor=TRAINER)  # fmt: skip
    agents = list(csv.reader(io.StringIO(report_csv(report))))
    assert agents[1][0] == "'=cmd|'/C calc'!A0"
    assert agents[1][8] == "0.0"
    sections = list(csv.reader(io.StringIO(report_csv(report, "sections"))))
    assert (sections[1][0], sections[1][3], sections[1][5]) == (
        "'=cmd|'/C calc'!A0", "'=HYPERLINK(1)", "'+Tone",
    )  # fmt: skip
    assert report.as_dict()["agents"][0]["agent"] == "=cmd|'/C calc'!A0"  # JSON: as it is


def test_a_report_is_audited_and_only_for_qa_trainers(world: World) -> None:
    report = build_report(world.runtime, period_kind="week", first="2026-W40", last="2026-W41",
                          agent="agent-a", actor=TRAINER, output="csv:agents")  # fmt: skip
    with world.runtime.sessions() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "qa.report").order_by(
                AuditEvent.seq.desc())
        ).first()  # fmt: skip
    assert event is not None
    assert event.details == {
        "period_kind": "week", "from": "2026-W40", "to": "2026-W41", "agent": "agent-a",
        "queue": None, "output": "csv:agents", "rows": report.rows,
    }  # fmt: skip
    assert report.rows == 2
    for role in (Role.DISPUTE_HANDLER, Role.PRIVACY_OFFICER, Role.AUDITOR, Role.ADMIN):
        with pytest.raises(Forbidden):
            build_report(world.runtime, period_kind="week", actor=staff("x", role))


@pytest.mark.parametrize(
    ("options", "field", "fragment"),
    [
        ({"first": "2026-W40", "last": "2028-W40"}, "from", "at most 104 periods"),
        ({"first": "2026-W41", "last": "2026-W40"}, "to", "ends (2026-W40) before"),
        ({"first": "2026-09", "last": "2026-W40"}, "from", "like 2026-W49"),
        ({"first": "2026-W40", "last": "2026-W60"}, "to", "ISO weeks 01 to 53"),
        ({"period_kind": "day"}, "period", "week or month"),
    ],
)
def test_a_bad_range_is_refused_naming_the_field(
    world: World, options: dict[str, Any], field: str, fragment: str
) -> None:
    with pytest.raises(ReportRangeError, match=re.escape(fragment)) as exc:
        build_report(world.runtime, actor=TRAINER, **{"period_kind": "week", **options})
    assert exc.value.field == field


def test_104_weeks_is_the_longest_range(world: World) -> None:
    report = build_report(world.runtime, period_kind="week", first="2025-W01", last="2026-W52",
                          actor=TRAINER)  # fmt: skip
    assert len(report.periods) == 104


def test_not_evaluated_leaves_evaluated_calls_out_and_verification_survives(
    world: World,
) -> None:
    w43 = IN_WEEK_40 + 3 * WEEK
    evaluated = add_call(world.runtime, agent="agent-n", started_at=w43)
    fresh = [add_call(world.runtime, agent="agent-n", started_at=w43) for _ in range(3)]
    form = create_form(world.runtime, name="N form", definition=FORM_B, actor=TRAINER)
    version = form.versions[0].id
    draft = create_evaluation(world.runtime, recording_id=evaluated, form_version_id=version,
                              answers={"q1": "yes", "q2": "yes"}, actor=TRAINER)  # fmt: skip
    assert draft.evaluation.status.value == "draft"  # any status excludes the call
    plan = create_plan(world.runtime, name="fresh-only",
                       criteria=Criteria(2, "week", not_evaluated=True), actor=TRAINER)  # fmt: skip
    assert plan.versions[0].criteria()["not_evaluated"] is True
    sample = run_sample(world.runtime, plan.id, "2026-W43", actor=TRAINER).sample
    assert sample.criteria["not_evaluated"] is True
    with world.runtime.sessions() as session:
        candidates = set(session.scalars(
            select(SampleCall.recording_id).where(SampleCall.sample_id == sample.id)))  # fmt: skip
    assert candidates == set(fresh)
    # Every pick is evaluated after the draw: the draw still verifies from what it stored.
    picked = [c for c in fresh if c in candidates]
    for call in picked:
        _evaluate(world.runtime, call, version, {"q1": "yes", "q2": "no"})
    verification = verify_sample(world.runtime, sample.id, actor=TRAINER)
    assert verification.ok
    assert [(a.agent, a.candidates, a.picked) for a in verification.agents] == [("agent-n", 3, 2)]
    plain = create_plan(world.runtime, name="every-call", criteria=Criteria(10, "week"),
                        actor=TRAINER)  # fmt: skip
    assert run_sample(world.runtime, plain.id, "2026-W43", actor=TRAINER).sample.candidates == 4
