"""The QA pages end to end, in headless Chromium: a QA trainer's week, in Finnish then English.

The trainer opens the QA home in Finnish (the installation's default), creates
a sampling plan, draws its sample for the last finished week (the picker's
default), opens a pick, notes a moment (a marker on the seek bar that seeks
there when clicked), fills the scorecard and submits it from the keyboard
alone, sees the score the archive computed (checked against the API, with a
decimal comma), cuts a
clip, finds it in the library, plays and deletes it (confirmed), and switches
to English. Another role gets the refusal page. The server is the real API
under uvicorn over SQLite and the filesystem store (tests/browser/test_player.py
has the set-up); screenshots are checked in code (tests/browser/test_case_pages.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import select

from recarchive.access.models import AuditEvent, Role
from recarchive.access.users import add_user
from recarchive.api.qa_pages import last_finished_periods
from recarchive.catalogue.database import create_catalogue_engine, utcnow
from recarchive.catalogue.migrate import upgrade_schema
from recarchive.config import load_settings
from recarchive.qa.periods import parse_period
from recarchive.qa.scorecards import create_form
from recarchive.runtime import Runtime
from tests.actors import ADMIN, staff
from tests.browser.test_case_pages import catalogue, check_screenshot, png_pixels
from tests.browser.test_player import (
    CALL_S,
    LAUNCH_ARGS,
    PEPPER,
    Call,
    _add_recording,
    _serve,
    _stereo_wav,
    chromium,  # noqa: F401 - the fixture that skips (or fails) without the browser
)

VIEWPORT = {"width": 1280, "height": 800}
CALLS = (
    Call("agent-aila", ("billing",), "C-3001", "+358403330001"),
    Call("agent-aila", ("billing",), "C-3002", "+358403330002"),
    Call("agent-olli", ("moving",), "C-3003", "+358403330003"),
)
NOTE_AT_S = 12.0
#: The private note marker's colour (player.css).
MARKER_RGB = (0xC7, 0x6B, 0x00)
FORM = {
    "sections": [
        {
            "id": "opening",
            "title": "Avaus",
            "questions": [
                {"id": "greeting", "text": "Tervehti", "kind": "yes_no_na", "weight": 1},
                {
                    "id": "identity",
                    "text": "Tunnisti soittajan",
                    "kind": "yes_no_na",
                    "weight": 2,
                    "critical": "form",
                },
            ],
        },
        {
            "id": "handling",
            "title": "Käsittely",
            "questions": [
                {"id": "understood", "text": "Ymmärsi asian", "kind": "scale", "min": 1, "max": 5},
                {"id": "remarks", "text": "Palaute agentille", "kind": "text", "weight": 0},
            ],
        },
    ]
}


@dataclasses.dataclass(frozen=True)
class Archive:
    runtime: Runtime
    base_url: str
    tokens: dict[str, str]
    ids: list[uuid.UUID]
    week: str

    def audit(self, action: str) -> list[AuditEvent]:
        with self.runtime.sessions() as session:
            query = select(AuditEvent).where(AuditEvent.action == action)
            return list(session.scalars(query.order_by(AuditEvent.seq)))


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    base = tmp_path_factory.mktemp("qa-pages")
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
    assert runtime.settings.api.language == "fi"
    runtime.store.create()
    runtime.anchors.sink.create()
    week = last_finished_periods(utcnow(), runtime.settings.tz)["week"]
    monday = parse_period(week, runtime.settings.tz).start
    audio = _stereo_wav(base / "call.wav")
    ids = [
        _add_recording(runtime, audio, call, monday + dt.timedelta(days=1, hours=hours))
        for hours, call in enumerate(CALLS, start=8)
    ]
    create_form(runtime, name="Asiakaspalvelu", definition=FORM, actor=staff("t", Role.QA_TRAINER))
    tokens = {
        name: add_user(runtime, name, role, actor=ADMIN).token
        for name, role in (("trainer", "qa_trainer"), ("handler", "dispute_handler"))
    }
    server, thread, base_url = _serve(runtime)
    yield Archive(runtime, base_url, tokens, ids, week)
    server.should_exit = True
    thread.join(timeout=10)
    runtime.close()


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Browser]:  # noqa: F811 - the fixture imported above
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=LAUNCH_ARGS
        )
        expect.set_options(timeout=15_000)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    yield page
    context.close()
    unexpected = [p for p in problems if not p.startswith("Failed to load resource")]
    assert unexpected == [], unexpected


def finnish(value: float | None, signed: bool = False) -> str:
    """A figure as Intl.NumberFormat("fi-FI") writes it with one or two decimals."""
    if value is None:
        return "\u2013"  # the dash of a missing figure (facts.none)
    text = f"{abs(value):.2f}"
    text = (text[:-1] if text.endswith("0") else text).replace(".", ",")
    sign = "\u2212" if value < 0 else "+" if signed and value > 0 else ""
    return sign + text


def sign_in(page: Page, archive: Archive, user: str) -> None:
    page.goto(f"{archive.base_url}/")
    page.get_by_label("API token").fill(archive.tokens[user])
    page.get_by_label("API token").press("Enter")
    page.wait_for_url(f"{archive.base_url}/player")


def pause_at(page: Page, seconds: float) -> None:
    page.locator("#audio").evaluate(
        "(a, s) => new Promise(done => { a.pause();"
        " a.addEventListener('seeked', () => done(), {once: true}); a.currentTime = s; })",
        seconds,
    )


def playing(page: Page, audio: str) -> None:
    page.wait_for_function(
        f"() => {{ const a = document.getElementById('{audio}');"
        " return !a.paused && a.readyState >= 2 && a.currentTime > 0.2; }"
    )


def shot_from_top(page: Page, path: Path) -> None:
    """The page's top (header, first card) as a checked screenshot."""
    page.evaluate("window.scrollTo(0, 0)")
    check_screenshot(page, path)


def create_plan_and_draw(page: Page, archive: Archive, fi: dict[str, str], name: str) -> None:
    page.get_by_label(fi["qa.plan.name"]).fill(name)
    page.get_by_label(fi["qa.plan.per_agent"]).fill("1")
    page.get_by_label(fi["qa.plan.queues"]).fill("customer-service")
    page.get_by_label(fi["qa.plan.name"]).press("Enter")
    expect(page.locator("#plans tbody tr").filter(has_text=name)).to_have_count(1)
    expect(page.locator("#sample-status")).to_have_text(fi["qa.plan.created"].format(name=name))
    period = page.get_by_label(fi["qa.sample.period_week"])
    expect(period).to_have_value(archive.week)  # the last finished week
    page.get_by_role("button", name=fi["qa.sample.draw"]).click()
    expected = fi["qa.sample.new"].format(period=archive.week, count=2)
    expect(page.locator("#sample-status")).to_have_text(expected)
    picks = page.locator("#picks tbody tr")
    expect(picks).to_have_count(2)  # one per agent
    expect(picks.filter(has_text=fi["qa.sample.not_evaluated"])).to_have_count(2)
    expect(page.locator("#sample-agents tbody tr")).to_have_count(2)


def note_and_seek(page: Page, fi: dict[str, str]) -> None:
    """A note at 0:12: its marker sits on the seek bar where 0:12 is, drawn, and seeks."""
    page.get_by_role("button", name=fi["qa.player.play"], exact=True).click()
    playing(page, "audio")
    pause_at(page, NOTE_AT_S)
    text = page.get_by_role("textbox", name=f"{fi['qa.notes.at']} 0:12")
    text.fill("Tervehdys voisi olla lämpimämpi")
    text.press("Enter")
    markers = page.locator("#note-markers .note-marker")
    expect(markers).to_have_count(1)
    expect(page.locator("#notes-status")).to_have_text(fi["qa.notes.count_one"])
    expect(page.locator("#notes-list .note-meta")).to_have_text(
        fi["qa.notes.private_by"].format(user=fi["qa.notes.you"])
    )
    bar, box = page.locator("#seek").bounding_box(), markers.first.bounding_box()
    assert bar is not None
    assert box is not None
    centre = box["x"] + box["width"] / 2
    assert centre == pytest.approx(bar["x"] + bar["width"] * NOTE_AT_S / CALL_S, abs=12)
    shot = page.screenshot(
        clip={"x": centre - 1, "y": box["y"] + box["height"] / 2 - 1, "width": 3, "height": 3}
    )
    pixels = [pixel for line in png_pixels(shot) for pixel in line]
    assert MARKER_RGB in pixels, pixels  # the marker is drawn where it says it is
    pause_at(page, 25.0)
    markers.first.click()
    page.wait_for_function(
        f"() => Math.abs(document.getElementById('audio').currentTime - {NOTE_AT_S}) < 0.05"
    )


def score_from_the_keyboard(page: Page, fi: dict[str, str]) -> None:
    """Every answer and the submission with Tab, Space and typing only."""
    expect(page.get_by_label(fi["qa.score.form"], exact=True)).to_have_value(re.compile(".+"))
    expect(page.locator("#questions fieldset")).to_have_count(3)
    expect(page.locator("#questions .critical")).to_have_text([fi["qa.score.critical.form"]])
    page.locator('input[name="greeting"][value="yes"]').focus()
    page.keyboard.press("Space")  # greeting: yes
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # identity: yes (the group's first)
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # understood: 1 (the scale's first)
    page.keyboard.press("Tab")
    page.keyboard.type("Selkeä ja ystävällinen.")  # remarks
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name=fi["qa.score.save_draft"])).to_be_focused()
    page.keyboard.press("Tab")
    submit = page.get_by_role("button", name=fi["qa.score.submit"])
    expect(submit).to_be_focused()
    outline = submit.evaluate("b => getComputedStyle(b).outlineStyle")
    assert outline == "solid"  # focus is drawn
    page.keyboard.press("Enter")
    expect(page.locator("#result")).to_be_visible()
    expect(page.locator("#result-status")).to_have_text(fi["qa.status.submitted"])


def check_score(page: Page, archive: Archive, recording_id: str) -> None:
    """The page shows the score the archive stored, not one of its own."""
    answer = page.request.get(
        f"{archive.base_url}/api/v1/qa/evaluations?recording_id={recording_id}"
    )
    assert answer.ok
    (evaluation,) = answer.json()["items"]
    assert evaluation["status"] == "submitted"
    assert evaluation["answers"] == {
        "greeting": "yes",
        "identity": "yes",
        "understood": 1,
        "remarks": "Selkeä ja ystävällinen.",
    }
    expect(page.locator("#result-score")).to_have_text(f"{finnish(evaluation['score'])} %")
    expect(page.locator("#result-version")).to_have_text(str(evaluation["version"]))
    sections = page.locator("#result-sections tbody tr")
    expect(sections).to_have_count(len(evaluation["sections"]))
    for section, score in evaluation["sections"].items():
        expect(sections.and_(page.locator(f'[data-section="{section}"]'))).to_contain_text(
            f"{finnish(score)} %"
        )


def cut_clip(page: Page, fi: dict[str, str], title: str) -> None:
    pause_at(page, 5.0)
    page.get_by_role("button", name=fi["qa.clip.start_now"]).click()
    pause_at(page, 15.0)
    page.get_by_role("button", name=fi["qa.clip.end_now"]).click()
    expect(page.get_by_label(fi["qa.clip.start"])).to_have_value("5")
    expect(page.get_by_label(fi["qa.clip.end"])).to_have_value("15")
    page.get_by_label(fi["qa.clip.name"]).fill(title)
    page.get_by_label(fi["qa.clip.purpose"]).fill("Hyvä tervehdys")
    page.get_by_role("button", name=fi["qa.clip.cut"]).click()
    expect(page.locator("#clip-status")).to_have_text(fi["qa.clip.done"].format(title=title))


def library(page: Page, fi: dict[str, str], title: str) -> None:
    page.get_by_role("link", name=fi["nav.qa_library"]).click()
    page.wait_for_url(re.compile(r"/player/qa/library$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(fi["qa.library.title"])
    row = page.locator("#clips tbody tr").filter(has_text=title)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("0:10")
    expect(row).to_contain_text("Hyvä tervehdys")
    row.get_by_role("button", name=fi["qa.library.play_label"].format(title=title)).click()
    playing(page, "clip-audio")
    page.locator("#clip-audio").evaluate("a => a.pause()")


def delete_clip(page: Page, fi: dict[str, str], title: str) -> None:
    row = page.locator("#clips tbody tr").filter(has_text=title)
    row.get_by_role("button", name=fi["qa.library.delete_label"].format(title=title)).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name=fi["qa.library.cancel"]).click()
    expect(row).to_have_count(1)  # nothing without the confirm
    row.get_by_role("button", name=fi["qa.library.delete_label"].format(title=title)).click()
    dialog.get_by_role("button", name=fi["qa.library.delete_yes"]).click()
    expect(row).to_have_count(0)
    expect(page.locator("#library-status")).to_have_text(
        fi["qa.library.deleted"].format(title=title)
    )


def test_a_trainer_samples_scores_and_clips_a_call_in_finnish_then_english(
    page: Page, archive: Archive, tmp_path: Path
) -> None:
    fi, en = catalogue("fi"), catalogue("en")
    sign_in(page, archive, "trainer")
    page.get_by_role("link", name="Quality assurance").click()  # the search page is English
    page.wait_for_url(f"{archive.base_url}/player/qa")
    expect(page.locator("html")).to_have_attribute("lang", "fi")
    expect(page.get_by_role("heading", level=1)).to_have_text("Laadunvarmistus")
    expect(page.locator("#plans-status")).to_have_text(fi["qa.plans.none"])
    create_plan_and_draw(page, archive, fi, "Viikko-otanta")
    shot_from_top(page, tmp_path / "qa-home-fi.png")

    pick = page.locator("#picks tbody tr").first
    recording_id = pick.get_attribute("data-recording-id")
    assert recording_id is not None
    pick.get_by_role("link", name=re.compile(f"^{fi['qa.sample.evaluate']}")).click()
    page.wait_for_url(f"{archive.base_url}/player/qa/calls/{recording_id}")
    expect(page.locator("#player")).to_be_visible()
    expect(page.locator("#player-purpose")).to_have_text("Käyttötarkoitus: Koulutus ja laatu")
    expect(page.locator("#notes-status")).to_have_text(fi["qa.notes.none"])
    note_and_seek(page, fi)
    score_from_the_keyboard(page, fi)
    check_score(page, archive, recording_id)
    cut_clip(page, fi, "Tervehdys")
    shot_from_top(page, tmp_path / "qa-call-fi.png")
    plays = [e for e in archive.audit("play") if e.actor == "trainer"]
    assert {(e.purpose, str(e.recording_id)) for e in plays} == {("training", recording_id)}

    library(page, fi, "Tervehdys")
    shot_from_top(page, tmp_path / "qa-library-fi.png")
    delete_clip(page, fi, "Tervehdys")

    page.get_by_role("link", name=fi["nav.qa"]).click()
    page.get_by_role("button", name=fi["qa.sample.draw"]).click()
    expected = fi["qa.sample.stored"].format(period=archive.week, count=2)
    expect(page.locator("#sample-status")).to_have_text(expected)
    row = page.locator(f'#picks tr[data-recording-id="{recording_id}"]')
    expect(row).to_contain_text(fi["qa.sample.evaluated"])

    page.get_by_role("button", name="in English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    for heading in ("Quality assurance", "Sampling plans", "Sample", "New sampling plan"):
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    page.goto(f"{archive.base_url}/player/qa/calls/{recording_id}")
    for heading in ("Evaluate a call", "Player", "Notes", "Scorecard", en["qa.result.title"]):
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    expect(page.locator("#notes-status")).to_have_text(en["qa.notes.count_one"])
    expect(page.locator("#score-status")).to_contain_text("This call has an evaluation (version 1")
    expect(page.locator("#result-status")).to_have_text("submitted")
    expect(page.get_by_role("button", name="Play", exact=True)).to_be_visible()
    assert "Muistiinpanot" not in page.locator("body").inner_text()
    shot_from_top(page, tmp_path / "qa-call-en.png")
    page.goto(f"{archive.base_url}/player/qa/forms")
    expect(page.get_by_role("heading", level=2)).to_have_text("Asiakaspalvelu")
    page.locator("summary").first.focus()
    page.keyboard.press("Enter")  # the disclosure opens from the keyboard
    expect(page.get_by_text("Tunnisti soittajan")).to_be_visible()
    expect(page.locator("details li").nth(1)).to_contain_text("critical: whole form")


def test_another_role_gets_the_refusal(page: Page, archive: Archive, tmp_path: Path) -> None:
    sign_in(page, archive, "handler")
    expect(page.get_by_role("link", name="Quality assurance")).to_have_count(0)
    before = len(archive.audit("access.refused"))
    answer = page.goto(f"{archive.base_url}/player/qa/calls/{archive.ids[0]}")
    assert answer is not None
    assert answer.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Roolisi ei salli tätä")
    expect(page.locator("#player")).to_have_count(0)
    shot_from_top(page, tmp_path / "qa-refused.png")
    assert len(archive.audit("access.refused")) == before + 1
