"""The QA reports page and attaching notes to an evaluation, in headless Chromium, in Finnish.

The archive holds two agents' submitted evaluations: two calls of one agent in
the last finished week, one call of the other in that week and one in the
week before (so that agent has a trend). A trainer opens the reports page in
Finnish: for the default range (the last six finished weeks) every figure of
every agent's table is the API's, written with a decimal comma, the trend in
words beside its arrow; the sections' averages open from the keyboard; the
agents' CSV link downloads a CSV whose rows are the API's. Then on an
evaluated call's page the score is written the Finnish way, and the trainer
attaches their note to the evaluation, sees it listed, and removes it. The
server and the browser are set up as in tests/browser/test_qa_pages.py.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from recarchive.access.models import Role
from recarchive.access.users import add_user
from recarchive.api.qa_pages import last_finished_periods
from recarchive.catalogue.database import create_catalogue_engine, utcnow
from recarchive.catalogue.migrate import upgrade_schema
from recarchive.config import load_settings
from recarchive.qa.evaluations import create_evaluation
from recarchive.qa.notes import add_note
from recarchive.qa.periods import parse_period
from recarchive.qa.scorecards import create_form
from recarchive.runtime import Runtime
from tests.actors import ADMIN, staff
from tests.browser.test_case_pages import catalogue
from tests.browser.test_player import PEPPER, Call, _add_recording, _serve, _stereo_wav
from tests.browser.test_qa_pages import (  # noqa: F401 - the fixtures the tests use
    FORM,
    browser,
    chromium,
    finnish,
    page,
    shot_from_top,
)

TRAINER = staff("trainer", Role.QA_TRAINER)
#: Each call: its agent, the week (0: the last finished one, 1: the one before), answers.
CALLS = (
    ("agent-aila", 0, {"greeting": "yes", "identity": "yes", "understood": 4}),
    ("agent-aila", 0, {"greeting": "no", "identity": "yes", "understood": 3}),
    ("agent-olli", 1, {"greeting": "no", "identity": "yes", "understood": 2}),
    ("agent-olli", 0, {"greeting": "yes", "identity": "no", "understood": 5}),
)
NOTE_TEXT = "Tervehdys jäi kesken"
#: The dash of a missing figure (facts.none).
NONE = "\u2013"


@dataclasses.dataclass(frozen=True)
class Archive:
    runtime: Runtime
    base_url: str
    tokens: dict[str, str]
    calls: list[uuid.UUID]
    note_id: uuid.UUID


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    base = tmp_path_factory.mktemp("qa-reports-page")
    url = f"sqlite:///{base / 'recarchive.db'}"
    engine = create_catalogue_engine(url)
    upgrade_schema(engine)
    engine.dispose()
    env = {
        "RECARCHIVE_GENERAL_DATA_DIR": str(base / "var"),
        "RECARCHIVE_CATALOGUE_URL": url,
        "RECARCHIVE_TOKEN_PEPPER": PEPPER,
    }
    runtime = Runtime(load_settings(env=env))
    runtime.store.create()
    runtime.anchors.sink.create()
    week = last_finished_periods(utcnow(), runtime.settings.tz)["week"]
    monday = parse_period(week, runtime.settings.tz).start
    audio = _stereo_wav(base / "call.wav")
    form = create_form(runtime, name="Asiakaspalvelu", definition=FORM, actor=TRAINER)
    calls = []
    for number, (agent, weeks_back, answers) in enumerate(CALLS):
        call = Call(agent, ("billing",), f"C-40{number:02d}", f"+3584044400{number:02d}")
        started = monday + dt.timedelta(days=1 - 7 * weeks_back, hours=8 + number)
        calls.append(_add_recording(runtime, audio, call, started))
        create_evaluation(
            runtime,
            recording_id=calls[-1],
            form_version_id=form.versions[0].id,
            answers=answers,
            submit=True,
            actor=TRAINER,
        )
    note = add_note(runtime, calls[0], offset_ms=12_000, text=NOTE_TEXT, actor=TRAINER)
    token = add_user(runtime, "trainer", "qa_trainer", actor=ADMIN).token
    server, thread, base_url = _serve(runtime)
    yield Archive(runtime, base_url, {"trainer": token}, calls, note.id)
    server.should_exit = True
    thread.join(timeout=10)
    runtime.close()


def trend(fi: dict[str, str], delta: float | None) -> str:
    if delta is None:
        return NONE
    if delta == 0:
        return f"▶ {fi['qa.reports.trend.same']}"
    arrow, key = ("▲", "qa.reports.trend.up") if delta > 0 else ("▼", "qa.reports.trend.down")
    return f"{arrow} {fi[key].format(delta=finnish(delta, signed=True))}"


def cells(fi: dict[str, str], figures: dict[str, Any]) -> list[str]:
    """An agent's period row as the page should show it (after the period's heading)."""
    counts = [figures["picked"], figures["withdrawn"], figures["evaluations"]]
    scores = [finnish(figures[name]) for name in ("average", "min", "max")]
    return [
        *(NONE if count is None else str(count) for count in counts),
        *scores,
        str(figures["critical_failures"]),
        trend(fi, figures["delta"]),
    ]


def check_tables(tab: Page, fi: dict[str, str], report: dict[str, Any]) -> None:
    """Every agent's table, row by row, holds the API's figures the Finnish way."""
    assert [a["agent"] for a in report["agents"]] == ["agent-aila", "agent-olli"]
    commas = 0
    for agent in report["agents"]:
        part = tab.locator(f'section.report-agent[data-agent="{agent["agent"]}"]')
        expect(part.get_by_role("heading", level=2)).to_have_text(agent["agent"])
        rows = part.locator("table.report-periods tbody tr")
        expect(rows).to_have_count(len(report["periods"]))
        for figures in agent["periods"]:
            expected = cells(fi, figures)
            commas += sum("," in cell for cell in expected)
            row = part.locator(f'table.report-periods tr[data-period="{figures["period"]}"]')
            expect(row.locator("th")).to_have_text(figures["period"])
            expect(row.locator("td")).to_have_text(expected)
    assert commas > 0  # the figures do have decimals, written with a comma
    olli = report["agents"][1]["periods"][-1]
    assert olli["delta"] is not None  # the second agent has a trend in words


def check_sections(tab: Page, fi: dict[str, str], report: dict[str, Any]) -> None:
    part = tab.locator('section.report-agent[data-agent="agent-aila"]')
    summary = part.locator("summary")
    expect(summary).to_have_text(fi["qa.reports.sections"].format(agent="agent-aila"))
    summary.focus()
    tab.keyboard.press("Enter")  # the disclosure opens from the keyboard
    last = report["agents"][0]["periods"][-1]
    for section in last["sections"]:
        row = part.locator(
            f'tr[data-period="{last["period"]}"][data-section="{section["section_id"]}"]'
        )
        expect(row).to_be_visible()
        expect(row.locator("td").nth(4)).to_have_text(finnish(section["average"]))


def check_csv(tab: Page, report: dict[str, Any]) -> None:
    """The agents' CSV link downloads the same report: one row per agent and period."""
    with tab.expect_download() as info:
        tab.get_by_role("link", name=catalogue("fi")["qa.reports.csv_agents"]).click()
    download = info.value
    assert download.suggested_filename.endswith("-agents.csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text("utf-8"))))
    expected = [(a["agent"], p) for a in report["agents"] for p in a["periods"]]
    assert len(rows) == len(expected)
    for row, (agent, figures) in zip(rows, expected, strict=True):
        assert (row["agent"], row["period"]) == (agent, figures["period"])
        assert int(row["evaluations"]) == figures["evaluations"]
        average = float(row["average"]) if row["average"] else None
        assert average == figures["average"]
        assert int(row["critical_failures"]) == figures["critical_failures"]


def attach_and_remove(tab: Page, archive: Archive, fi: dict[str, str]) -> None:
    """The trainer's note, attached to the call's evaluation, is listed with it; then removed."""
    call = archive.calls[0]
    tab.goto(f"{archive.base_url}/player/qa/calls/{call}")
    answer = tab.request.get(f"{archive.base_url}/api/v1/qa/evaluations?recording_id={call}")
    (evaluation,) = answer.json()["items"]
    expect(tab.locator("#result-score")).to_have_text(f"{finnish(evaluation['score'])} %")
    expect(tab.locator("#evaluation-notes-status")).to_have_text(fi["qa.evnotes.none"])
    choice = tab.get_by_role("checkbox", name=f"0:12 {NOTE_TEXT}")
    choice.check()
    tab.get_by_role("button", name=fi["qa.evnotes.attach"]).click()
    listed = tab.locator("#evaluation-notes-list li")
    expect(listed).to_have_count(1)
    expect(listed).to_contain_text(NOTE_TEXT)
    expect(listed).to_contain_text(fi["qa.evnotes.by"].format(user="trainer"))
    expect(tab.locator("#evaluation-notes-status")).to_have_text(
        fi["qa.evnotes.attached"].format(count=1)
    )
    stored = tab.request.get(f"{archive.base_url}/api/v1/qa/evaluations/{evaluation['id']}")
    assert [n["note_id"] for n in stored.json()["notes"]] == [str(archive.note_id)]
    tab.get_by_role("button", name=fi["qa.evnotes.remove_label"].format(at="0:12")).click()
    expect(listed).to_have_count(0)
    expect(tab.locator("#evaluation-notes-status")).to_have_text(
        fi["qa.evnotes.removed"].format(at="0:12")
    )


def test_a_trainer_reads_the_report_in_finnish_and_attaches_a_note(
    page: Page,  # noqa: F811 - the fixture imported above
    archive: Archive,
    tmp_path: Path,
) -> None:
    fi = catalogue("fi")
    page.goto(f"{archive.base_url}/")
    page.get_by_label("API token").fill(archive.tokens["trainer"])
    page.get_by_label("API token").press("Enter")
    page.wait_for_url(f"{archive.base_url}/player")
    page.goto(f"{archive.base_url}/player/qa/reports")
    expect(page.locator("html")).to_have_attribute("lang", "fi")
    expect(page.get_by_role("heading", level=1)).to_have_text(fi["qa.reports.title"])
    first, last = (
        page.locator("#report-from").input_value(),
        page.locator("#report-to").input_value(),
    )
    assert last == last_finished_periods(utcnow(), archive.runtime.settings.tz)["week"]
    answer = page.request.get(
        f"{archive.base_url}/api/v1/qa/reports?period=week&from={first}&to={last}"
    )
    assert answer.ok
    report = answer.json()
    assert len(report["periods"]) == 6
    status = fi["qa.reports.shown"].format(**{"from": first, "to": last, "count": 2})
    expect(page.locator("#report-status")).to_have_text(status)
    check_tables(page, fi, report)
    check_sections(page, fi, report)
    shot_from_top(page, tmp_path / "qa-reports-fi.png")
    check_csv(page, report)
    attach_and_remove(page, archive, fi)
