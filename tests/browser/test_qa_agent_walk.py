"""The agent's side end to end, in headless Chromium: a trainer scores a call, its agent
reads, hears and acknowledges the evaluation, disputes another, and reads the answer.

A QA trainer (in Finnish, the installation's default) draws the sample of the last
finished week, opens a pick of agent-aila, notes a moment and scores the call from the
keyboard (the steps of tests/browser/test_qa_pages.py, imported from there), and
attaches the note to the evaluation. The agent linked to agent-aila signs in and lands
on their own evaluations: the score is the API's, with a decimal comma; the evaluation
shows the answers beside the questions and the note; the call plays for ``self_review``
(audited); they acknowledge it, and the trainer's API shows it acknowledged. A second
evaluation is disputed (confirmed in a dialog), answered by the trainer on the disputes
page, and the agent then reads the answer. Screenshots are checked in code.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from recarchive.access.agent_ids import link_agent_id
from recarchive.access.models import Role
from recarchive.access.users import add_user
from recarchive.api.qa_pages import last_finished_periods
from recarchive.catalogue.database import create_catalogue_engine, utcnow
from recarchive.catalogue.migrate import upgrade_schema
from recarchive.catalogue.restrictions import RestrictionKind
from recarchive.config import load_settings
from recarchive.qa.periods import parse_period
from recarchive.qa.scorecards import create_form
from recarchive.runtime import Runtime
from tests.actors import ADMIN, staff
from tests.browser.test_case_pages import catalogue
from tests.browser.test_player import (
    PEPPER,
    _add_recording,
    _serve,
    _stereo_wav,
    chromium,  # noqa: F401 - the fixture that skips (or fails) without the browser
)
from tests.browser.test_qa_pages import (
    CALLS,
    FORM,
    VIEWPORT,
    Archive,
    browser,  # noqa: F401 - the module's browser, as the QA pages' walk has it
    check_score,
    create_plan_and_draw,
    note_and_seek,
    page,  # noqa: F401 - a page whose console must stay clean
    playing,
    score_from_the_keyboard,
    shot_from_top,
    sign_in,
)
from tests.qa_fixtures import exclude

AGENT = "agent-aila"
DISPUTE = "Asiakas ei halunnut tunnistautua, joten kysyin uudelleen."
ANSWER = "Totta: tunnistus tehtiin oikein, korjaan arvion."


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    """The QA pages' archive (three calls of the last finished week, the form) and an
    agent user linked to agent-aila."""
    base = tmp_path_factory.mktemp("qa-agent-walk")
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
    ids = [
        _add_recording(runtime, audio, call, monday + dt.timedelta(days=1, hours=hours))
        for hours, call in enumerate(CALLS, start=8)
    ]
    create_form(runtime, name="Asiakaspalvelu", definition=FORM, actor=staff("t", Role.QA_TRAINER))
    tokens = {
        name: add_user(runtime, name, role, actor=ADMIN).token
        for name, role in (("trainer", "qa_trainer"), ("aila", "agent"))
    }
    link_agent_id(runtime, "aila", AGENT, actor=ADMIN)
    server, thread, base_url = _serve(runtime)
    yield Archive(runtime, base_url, tokens, ids, week)
    server.should_exit = True
    thread.join(timeout=10)
    runtime.close()


def decimal_comma(score: float) -> str:
    """A score as the Finnish page writes it (one decimal, comma)."""
    return f"{score:.1f}".replace(".", ",") + " %"


def same_site(archive: Archive) -> dict[str, str]:
    return {"Origin": archive.base_url}


def trainer_scores_a_pick(tab: Page, archive: Archive, fi: dict[str, str]) -> str:
    """Sample, open agent-aila's pick, note 0:12, score and submit; the evaluation's id."""
    sign_in(tab, archive, "trainer")
    tab.goto(f"{archive.base_url}/player/qa")
    create_plan_and_draw(tab, archive, fi, "Viikko")
    pick = tab.locator("#picks tbody tr").filter(has_text=AGENT)
    recording_id = pick.get_attribute("data-recording-id")
    assert recording_id is not None
    pick.get_by_role("link", name=re.compile(f"^{fi['qa.sample.evaluate']}")).click()
    tab.wait_for_url(f"{archive.base_url}/player/qa/calls/{recording_id}")
    note_and_seek(tab, fi)
    score_from_the_keyboard(tab, fi)
    check_score(tab, archive, recording_id)
    api = f"{archive.base_url}/api/v1"
    (evaluation,) = tab.request.get(f"{api}/qa/evaluations?recording_id={recording_id}").json()[
        "items"
    ]
    (note,) = tab.request.get(f"{api}/recordings/{recording_id}/notes").json()["items"]
    attached = tab.request.post(
        f"{api}/qa/evaluations/{evaluation['id']}/notes",
        data={"note_ids": [note["id"]]},
        headers=same_site(archive),
    )
    assert attached.ok, attached.text()
    return str(evaluation["id"])


def trainer_scores_another(tab: Page, archive: Archive) -> str:
    """A second submitted evaluation of agent-aila's other call, through the API."""
    api = f"{archive.base_url}/api/v1"
    taken = {e["recording_id"] for e in tab.request.get(f"{api}/qa/evaluations").json()["items"]}
    other = next(
        str(i)
        for i, c in zip(archive.ids, CALLS, strict=True)
        if c.agent == AGENT and str(i) not in taken
    )
    (form,) = tab.request.get(f"{api}/qa/forms").json()["items"]
    answers = {"greeting": "yes", "identity": "no", "understood": 3}
    body = {"recording_id": other, "form_version_id": form["current_version_id"]}
    made = tab.request.post(
        f"{api}/qa/evaluations",
        data={**body, "answers": answers, "submit": True},
        headers=same_site(archive),
    )
    assert made.ok, made.text()
    return str(made.json()["id"])


def agent_signs_in(tab: Page, archive: Archive) -> None:
    tab.goto(f"{archive.base_url}/")
    tab.get_by_label("API token").fill(archive.tokens["aila"])
    tab.get_by_label("API token").press("Enter")
    tab.wait_for_url(f"{archive.base_url}/player/my")  # not the search: an agent may not


def own(tab: Page, archive: Archive, evaluation_id: str) -> dict[str, Any]:
    answer = tab.request.get(f"{archive.base_url}/api/v1/qa/my/evaluations/{evaluation_id}")
    assert answer.ok
    found: dict[str, Any] = answer.json()
    return found


def agent_reads_hears_and_acknowledges(
    tab: Page, archive: Archive, fi: dict[str, str], first: str, tmp_path: Path
) -> None:
    rows = tab.locator("#evaluations tbody tr")
    expect(rows).to_have_count(2)
    evaluation = own(tab, archive, first)
    row = tab.locator(f'#evaluations tr[data-evaluation-id="{first}"]')
    expect(row.locator("td.score")).to_have_text(decimal_comma(evaluation["score"]))
    expect(row).to_contain_text(fi["qa.status.submitted"])
    shot_from_top(tab, tmp_path / "my-fi.png")
    row.get_by_role("link").click()
    tab.wait_for_url(f"{archive.base_url}/player/my/evaluations/{first}")
    expect(tab.locator("#fact-score")).to_have_text(decimal_comma(evaluation["score"]))
    opening = tab.locator('#answers [data-section="opening"]')
    expect(opening).to_contain_text("Tunnisti soittajan")
    expect(opening.locator('dd[data-question="greeting"]')).to_have_text(fi["qa.answer.yes"])
    expect(tab.locator("#notes-list")).to_contain_text("Tervehdys voisi olla lämpimämpi")
    expect(tab.locator("#notes-list")).to_contain_text("0:12")
    tab.locator("#audio").evaluate("a => a.play()")
    playing(tab, "audio")
    tab.locator("#audio").evaluate("a => a.pause()")
    plays = [e for e in archive.audit("play") if e.actor == "aila"]
    assert plays
    assert {(e.purpose, str(e.recording_id)) for e in plays} == {
        ("self_review", evaluation["recording_id"])
    }
    shot_from_top(tab, tmp_path / "my-evaluation-fi.png")
    tab.get_by_role("button", name=fi["qa.my.acknowledge"]).click()
    expect(tab.locator("#fact-status")).to_have_text(fi["qa.status.acknowledged"])
    expect(tab.locator('#responses-list li[data-kind="acknowledge"]')).to_have_count(1)
    expect(tab.get_by_role("button", name=fi["qa.my.acknowledge"])).to_be_hidden()


def agent_disputes(tab: Page, archive: Archive, fi: dict[str, str], second: str) -> None:
    tab.goto(f"{archive.base_url}/player/my/evaluations/{second}")
    text = tab.get_by_label(fi["qa.my.dispute.label"])
    expect(text).to_be_visible()
    tab.get_by_role("button", name=fi["qa.my.dispute"]).click()
    expect(tab.locator("#respond-error")).to_have_text(fi["qa.my.dispute.empty"])
    text.fill(DISPUTE)
    tab.get_by_role("button", name=fi["qa.my.dispute"]).click()
    dialog = tab.get_by_role("dialog")
    dialog.get_by_role("button", name=fi["qa.my.cancel"]).click()
    expect(tab.locator("#fact-status")).to_have_text(fi["qa.status.submitted"])
    tab.get_by_role("button", name=fi["qa.my.dispute"]).click()
    dialog.get_by_role("button", name=fi["qa.my.dispute.yes"]).click()
    expect(tab.locator("#fact-status")).to_have_text(fi["qa.status.disputed"])
    expect(tab.locator('#responses-list li[data-kind="dispute"]')).to_contain_text(DISPUTE)
    expect(tab.locator("#dispute-form")).to_be_hidden()


def trainer_answers(tab: Page, archive: Archive, fi: dict[str, str], tmp_path: Path) -> None:
    tab.get_by_role("link", name=fi["nav.qa_disputes"]).click()
    tab.wait_for_url(f"{archive.base_url}/player/qa/disputes")
    item = tab.locator("#disputes li")
    expect(item).to_have_count(1)
    expect(item).to_contain_text(DISPUTE)
    expect(item.get_by_role("link", name=fi["qa.disputes.open_call"])).to_have_attribute(
        "href", re.compile(r"^/player/qa/calls/[0-9a-f-]{36}$")
    )
    shot_from_top(tab, tmp_path / "disputes-fi.png")
    item.get_by_label(fi["qa.disputes.answer_label"]).fill(ANSWER)
    item.get_by_role("button", name=fi["qa.disputes.answer"]).click()
    expect(tab.locator("#disputes-status")).to_have_text(fi["qa.disputes.answered"])
    expect(item).to_have_count(0)


def recording_gone(tab: Page, archive: Archive, fi: dict[str, str], evaluation_id: str) -> None:
    """The caller objects: the call no longer plays, its evaluation still reads."""
    recording_id = uuid.UUID(own(tab, archive, evaluation_id)["recording_id"])
    exclude(archive.runtime, RestrictionKind.OBJECTION, recording_id=recording_id)
    tab.goto(f"{archive.base_url}/player/my/evaluations/{evaluation_id}")
    expect(tab.locator("#fact-status")).to_have_text(fi["qa.status.acknowledged"])
    tab.locator("#audio").evaluate("a => a.play().catch(() => null)")
    expect(tab.locator("#audio-status")).to_have_text(fi["qa.my.audio.gone"])
    expect(tab.locator("#audio")).to_be_hidden()
    expect(tab.locator("#notes-list")).to_contain_text("Tervehdys voisi olla lämpimämpi")


def test_a_trainer_scores_and_the_agent_reads_hears_acknowledges_and_disputes(
    browser: Browser,  # noqa: F811 - the fixture imported above
    page: Page,  # noqa: F811 - the fixture imported above
    archive: Archive,
    tmp_path: Path,
) -> None:
    fi = catalogue("fi")
    first = trainer_scores_a_pick(page, archive, fi)
    second = trainer_scores_another(page, archive)

    context = browser.new_context(viewport=VIEWPORT)
    agent = context.new_page()
    agent.set_default_timeout(15_000)
    problems: list[str] = []
    agent.on("pageerror", lambda error: problems.append(str(error)))
    agent_signs_in(agent, archive)
    expect(agent.locator("html")).to_have_attribute("lang", "fi")
    expect(agent.get_by_role("heading", level=1)).to_have_text(fi["qa.my.title"])
    agent_reads_hears_and_acknowledges(agent, archive, fi, first, tmp_path)
    api = f"{archive.base_url}/api/v1/qa/evaluations"
    trainer_view = page.request.get(f"{api}?status=acknowledged").json()["items"]
    assert [e["id"] for e in trainer_view] == [first]

    agent_disputes(agent, archive, fi, second)
    trainer_answers(page, archive, fi, tmp_path)
    agent.reload()
    answered = agent.locator('#responses-list li[data-kind="answer"]')
    expect(answered).to_contain_text(ANSWER)
    expect(agent.locator("#fact-status")).to_have_text(fi["qa.status.dispute_answered"])
    assert own(agent, archive, second)["status"] == "dispute_answered"
    recording_gone(agent, archive, fi, first)
    context.close()
    assert problems == []
