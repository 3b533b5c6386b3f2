"""The dispute case pages end to end, in headless Chromium, in Finnish and in English.

A dispute handler opens a case from the list page, links two recordings by
id, writes a note, plays one recording in the page (for the case's dispute),
sees the play arrive in the custody record, tries the evidence export and
closes the case with a reason, confirmed. The same walk runs in Finnish
(the installation's default) and in English (chosen with the page's
switch); a QA trainer gets the refusal page and no data. The server is the
real API under uvicorn over SQLite and the filesystem store, the browser
Debian's Chromium (tests/browser/test_player.py has the set-up).

Screenshots are checked in code: a PNG of the viewport's size, and pixels
of the header and of the page's background where the page draws them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import struct
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import select

from recarchive.access.models import AuditEvent
from recarchive.access.users import add_user
from recarchive.catalogue.database import create_catalogue_engine
from recarchive.catalogue.migrate import upgrade_schema
from recarchive.config import load_settings
from recarchive.disputes.keys import create_evidence_key, evidence_key_path
from recarchive.disputes.verify import verify_package
from recarchive.runtime import Runtime
from tests.actors import ADMIN
from tests.api_fixtures import add_customer
from tests.browser.test_player import (
    LAUNCH_ARGS,
    PEPPER,
    Call,
    _add_recording,
    _serve,
    _stereo_wav,
    chromium,  # noqa: F401 - the fixture that skips (or fails) without the browser
)

MESSAGES = Path(__file__).resolve().parents[2] / "recarchive" / "api" / "messages"
VIEWPORT = {"width": 1280, "height": 800}
#: The header's background (player.css, --fg) and the page's (--bg).
HEADER_RGB = (0x1D, 0x24, 0x30)
PAGE_RGB = (0xF4, 0xF6, 0xF9)
CALLS = (
    Call("agent-aino", ("billing",), "C-2001", "+358402220001"),
    Call("agent-eero", ("billing",), "C-2001", "+358402220001"),
    Call("agent-iida", ("moving",), "C-2002", "+358402220002"),
)


@dataclasses.dataclass(frozen=True)
class Archive:
    runtime: Runtime
    base_url: str
    app_routes: frozenset[str]
    tokens: dict[str, str]
    ids: dict[str, uuid.UUID]

    def audit(self, action: str, actor: str | None = None) -> list[AuditEvent]:
        with self.runtime.sessions() as session:
            query = select(AuditEvent).where(AuditEvent.action == action)
            if actor is not None:
                query = query.where(AuditEvent.actor == actor)
            return list(session.scalars(query.order_by(AuditEvent.seq)))


def catalogue(language: str) -> dict[str, str]:
    messages: dict[str, str] = json.loads((MESSAGES / f"{language}.json").read_text("utf-8"))
    return messages


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    base = tmp_path_factory.mktemp("case-pages")
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
    assert runtime.settings.api.language == "fi"  # the default: Finnish staff
    runtime.store.create()
    create_evidence_key(evidence_key_path(runtime.settings))
    runtime.anchors.sink.create()
    audio = _stereo_wav(base / "call.wav")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ids = {
        call.agent: _add_recording(runtime, audio, call, now - dt.timedelta(hours=hours))
        for hours, call in enumerate(CALLS, start=1)
    }
    add_customer(runtime, "C-2001", "Testi Asiakas")
    tokens = {
        name: add_user(runtime, name, role, actor=ADMIN).token
        for name, role in (
            ("handler-fi", "dispute_handler"),
            ("handler-en", "dispute_handler"),
            ("trainer", "qa_trainer"),
        )
    }
    server, thread, base_url = _serve(runtime)
    routes = frozenset(getattr(route, "path", "") for route in server.config.app.routes)
    yield Archive(runtime, base_url, routes, tokens, ids)
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
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    yield page
    context.close()
    # The only console lines expected: the browser noting the API's refusals (4xx).
    unexpected = [p for p in problems if not p.startswith("Failed to load resource")]
    assert unexpected == [], unexpected


def sign_in(page: Page, archive: Archive, user: str) -> None:
    page.goto(f"{archive.base_url}/")
    page.get_by_label("API token").fill(archive.tokens[user])
    page.get_by_label("API token").press("Enter")
    page.wait_for_url(f"{archive.base_url}/player")


# --- screenshots, checked in code -----------------------------------------------------


def png_header(data: bytes) -> tuple[int, int, int, int]:
    """Width, height, bit depth and colour type of a PNG (its IHDR chunk)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR"
    assert length == 13
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    return width, height, depth, colour


def png_pixels(data: bytes) -> list[list[tuple[int, int, int]]]:
    """The RGB pixels of a small 8-bit RGB or RGBA PNG, row by row (for clipped shots)."""
    width, height, depth, colour = png_header(data)
    assert depth == 8, depth
    assert colour in (2, 6), colour
    channels = 3 if colour == 2 else 4
    chunks, at = [], 8
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        if kind == b"IDAT":
            chunks.append(data[at + 8 : at + 8 + length])
        at += 12 + length
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    rows: list[bytearray] = []
    previous = bytearray(stride)
    for y in range(height):
        line = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        kind, current = line[0], bytearray(line[1:])
        for x in range(stride):
            left = current[x - channels] if x >= channels else 0
            up = previous[x]
            corner = previous[x - channels] if x >= channels else 0
            if kind == 1:
                current[x] = (current[x] + left) & 0xFF
            elif kind == 2:
                current[x] = (current[x] + up) & 0xFF
            elif kind == 3:
                current[x] = (current[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                current[x] = (current[x] + pred) & 0xFF
        rows.append(current)
        previous = current
    return [[(r[i], r[i + 1], r[i + 2]) for i in range(0, stride, channels)] for r in rows]


PAINTED = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"


def check_screenshot(page: Page, path: Path) -> None:
    """A viewport-sized PNG; the header drawn in its colour, the page's background around."""
    page.evaluate(PAINTED)
    shot = page.screenshot(path=str(path))
    for _ in range(20):  # a loaded machine can hand back a frame before the page is painted
        if len(shot) > 10_000:
            break
        page.wait_for_timeout(250)
        shot = page.screenshot(path=str(path))
    assert path.stat().st_size == len(shot) > 10_000  # a page, not an empty image
    width, height, _depth, _colour = png_header(shot)
    assert (width, height) == (VIEWPORT["width"], VIEWPORT["height"])
    box = page.locator("header.top").bounding_box()
    assert box is not None
    assert box["height"] > 20
    header = png_pixels(page.screenshot(clip={"x": 2, "y": 2, "width": 6, "height": 6}))
    assert all(pixel == HEADER_RGB for line in header for pixel in line), header[0][:3]
    below = box["y"] + box["height"] + 2
    margin = png_pixels(page.screenshot(clip={"x": 2, "y": below, "width": 6, "height": 4}))
    assert all(pixel == PAGE_RGB for line in margin for pixel in line), margin[0][:3]


# --- the walk ---------------------------------------------------------------------------


def audio_playing(page: Page) -> None:
    page.wait_for_function(
        "() => { const a = document.getElementById('audio');"
        " return !a.paused && a.readyState >= 2 && a.currentTime > 0.2; }"
    )


def open_case(page: Page, text: dict[str, str], reference: str) -> str:
    """From the list page: open a case with the form (submitted with Enter); its id."""
    expect(page.get_by_role("heading", name=text["new.title"])).to_be_visible()
    page.get_by_label(text["new.kind"], exact=True).select_option(label=text["kind.billing"])
    page.get_by_label(text["new.customer"]).fill("C-0000")  # not in the customer directory
    page.get_by_label(text["new.document"]).fill("INV-2026-0042")
    page.get_by_label(text["new.reference"]).fill(reference)
    page.get_by_label(text["new.reference"]).press("Enter")
    refusal = page.locator("#new-error")
    expect(refusal).to_be_visible()
    expect(refusal).to_contain_text(f"{text['error.422']}: ")
    expect(refusal).to_contain_text("customer_id")
    page.get_by_label(text["new.customer"]).fill("C-2001")
    page.get_by_label(text["new.reference"]).press("Enter")
    page.wait_for_url(re.compile(r"/player/cases/[0-9a-f-]{36}$"))
    expect(page.locator("#case-title")).to_have_text(text["case.title"].format(reference=reference))
    return page.url.rsplit("/", 1)[1]


def walk(page: Page, archive: Archive, user: str, text: dict[str, str], tmp_path: Path) -> str:
    """Open, link two, note, play, custody, export, close; the case's id."""
    reference = f"RIITA-{uuid.uuid4().hex[:6]}"
    case_id = open_case(page, text, reference)
    facts = page.locator("#facts")
    expect(facts).to_contain_text("INV-2026-0042")
    expect(facts).to_contain_text(text["status.open"])
    expect(page.locator("#recordings-none")).to_have_text(text["rec.none"])

    first, second, third = (str(archive.ids[call.agent]) for call in CALLS)
    page.get_by_label(text["link.label"]).fill("not-an-id")
    page.get_by_label(text["link.label"]).press("Enter")
    expect(page.locator("#error")).to_have_text(text["link.invalid"].format(value="not-an-id"))
    page.get_by_label(text["link.label"]).fill(f"{first}, {second}\n{third}")
    page.get_by_label(text["link.label"]).press("Enter")
    rows = page.locator("#recordings tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator("#error")).to_be_hidden()
    unlink = re.compile(f"^{re.escape(text['rec.unlink'])} ")
    rows.filter(has_text=CALLS[2].agent).get_by_role("button", name=unlink).click()
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text=CALLS[2].agent)).to_have_count(0)
    expect(page.locator("#hold-recordings")).to_have_text("2")
    expect(rows.filter(has_text=CALLS[0].agent)).to_have_count(1)

    note = 'Asiakas kiistää laskun <b>INV-2026-0042</b> & "puhelun 3"'
    page.get_by_label(text["notes.label"]).fill(note)
    page.get_by_label(text["notes.label"]).press("Enter")
    expect(page.locator("#notes .note-text")).to_have_text([note])  # as text, not markup
    expect(page.locator("#notes b")).to_have_count(0)

    expect(page.locator("#custody tbody tr").first).to_be_visible()
    before = page.locator("#custody tbody tr").count()
    played_before = page.locator('#custody [data-action="play"]').count()  # other cases' plays
    row = rows.filter(has_text=CALLS[0].agent)
    row.get_by_role("button", name=re.compile(f"^{re.escape(text['rec.play'])} ")).click()
    audio_playing(page)
    expect(page.locator("#player-purpose")).to_contain_text(reference)
    page.wait_for_function(
        "n => document.querySelectorAll('#custody [data-action=\"play\"]').length > n",
        arg=played_before,
    )
    assert page.locator("#custody tbody tr").count() > before
    expect(page.locator('#custody [data-action="play"]').last).to_have_text(text["action.play"])
    plays = [e for e in archive.audit("play", user) if e.case_ref == reference]
    assert plays
    assert {(e.purpose, str(e.recording_id)) for e in plays} == {("dispute", first)}
    page.locator("#audio").evaluate("a => a.pause()")

    export(page, archive, text, tmp_path)

    page.get_by_label(text["close.reason"], exact=True).fill("Lasku oikaistu, asiakas tyytyväinen")
    page.get_by_label(text["close.reason"], exact=True).press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(reference)
    expect(page.locator("#facts")).to_contain_text(text["status.open"])  # not yet
    dialog.get_by_role("button", name=text["close.confirm_yes"], exact=True).click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#closed-note")).to_have_text(text["close.closed"])
    expect(facts).to_contain_text(text["status.closed"])
    expect(facts).to_contain_text("Lasku oikaistu, asiakas tyytyväinen")
    expect(page.locator("#close-form")).to_be_hidden()
    expect(page.locator("#link")).to_be_hidden()
    expect(page.locator("#note-form")).to_be_hidden()
    expect(rows.get_by_role("button", name=unlink)).to_have_count(0)
    return case_id


def export(page: Page, archive: Archive, text: dict[str, str], tmp_path: Path) -> None:
    """The export button downloads the evidence package, which then verifies offline."""
    button = page.get_by_role("button", name=text["exports.button"])
    with page.expect_download() as download:
        button.click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name.startswith("evidence-")
    assert saved.suffix == ".zip"
    report = verify_package(saved)
    assert report.ok, report
    expect(page.locator("#exports tbody tr")).to_have_count(1)


def test_a_dispute_handler_works_a_case_in_finnish_and_switches_to_english(
    page: Page, archive: Archive, tmp_path: Path
) -> None:
    fi, en = catalogue("fi"), catalogue("en")
    sign_in(page, archive, "handler-fi")
    page.get_by_role("link", name="Dispute cases").click()
    page.wait_for_url(f"{archive.base_url}/player/cases")
    expect(page.locator("html")).to_have_attribute("lang", "fi")
    expect(page.get_by_role("heading", level=1)).to_have_text("Riita-asiat")
    expect(page.get_by_role("button", name="Avaa asia")).to_be_visible()
    expect(page.locator("#status")).to_have_text("Ei asioita.")

    case_id = walk(page, archive, "handler-fi", fi, tmp_path)
    for heading in ("Pito", "Tallenteet", "Muistiinpanot", "Luovutusketju", "Todisteaineisto"):
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    expect(page.locator("#facts")).to_contain_text("Suljettu")
    check_screenshot(page, tmp_path / "case-fi.png")

    page.get_by_role("button", name="in English").click()
    page.wait_for_url(f"{archive.base_url}/player/cases/{case_id}")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#case-title")).to_have_text(re.compile(r"^Case RIITA-"))
    for heading in ("Hold", "Recordings", "Notes", "Custody record", "Evidence packages"):
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    expect(page.locator("#facts")).to_contain_text(en["status.closed"])
    expect(page.get_by_role("button", name="in English")).to_have_attribute("aria-pressed", "true")
    assert "Luovutusketju" not in page.locator("body").inner_text()

    page.goto(f"{archive.base_url}/player/cases?status=closed")  # remembered in the browser
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator(f'#cases a[href="/player/cases/{case_id}"]')).to_have_count(1)
    page.get_by_role("button", name="suomeksi").click()
    expect(page.locator("html")).to_have_attribute("lang", "fi")
    expect(page.get_by_role("heading", level=1)).to_have_text("Riita-asiat")

    page.goto(f"{archive.base_url}/player/cases/{uuid.uuid4()}")  # no such case
    expect(page.locator("#error")).to_contain_text(f"{fi['error.404']}: ")
    expect(page.locator("#case-title")).to_have_text(fi["case.loading"])


def test_a_dispute_handler_works_a_case_in_english(
    page: Page, archive: Archive, tmp_path: Path
) -> None:
    en = catalogue("en")
    sign_in(page, archive, "handler-en")
    page.goto(f"{archive.base_url}/player/cases")
    expect(page.locator("html")).to_have_attribute("lang", "fi")
    page.get_by_role("button", name="in English").focus()
    page.keyboard.press("Enter")  # the switch works from the keyboard
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Dispute cases")
    page.get_by_label(en["new.document"]).focus()
    page.keyboard.press("Tab")  # to the form's button: focus is drawn
    focused = page.get_by_role("button", name=en["new.submit"])
    expect(focused).to_be_focused()
    outline = focused.evaluate(
        "b => getComputedStyle(b).outlineStyle + ' ' + getComputedStyle(b).outlineWidth"
    )
    assert outline == "solid 3px", outline
    walk(page, archive, "handler-en", en, tmp_path)
    expect(page.locator("#facts")).to_contain_text("Closed")
    check_screenshot(page, tmp_path / "case-en.png")


def test_a_qa_trainer_gets_the_refusal_and_no_data(
    page: Page, archive: Archive, tmp_path: Path
) -> None:
    sign_in(page, archive, "trainer")
    expect(page.get_by_role("link", name="Dispute cases")).to_have_count(0)
    before = len(archive.audit("access.refused", "trainer"))
    answer = page.goto(f"{archive.base_url}/player/cases")
    assert answer is not None
    assert answer.status == 403
    expect(page.locator("html")).to_have_attribute("lang", "fi")
    expect(page.get_by_role("heading", level=1)).to_have_text("Roolisi ei salli tätä")
    expect(page.locator("#refused")).to_contain_text("laatu- ja koulutusvastaava")
    expect(page.locator("table")).to_have_count(0)
    expect(page.locator("form#new-case")).to_have_count(0)
    check_screenshot(page, tmp_path / "refused.png")
    answer = page.goto(f"{archive.base_url}/player/cases/{uuid.uuid4()}")
    assert answer is not None
    assert answer.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Roolisi ei salli tätä")
    assert page.request.get(f"{archive.base_url}/api/v1/cases").status == 403
    assert len(archive.audit("access.refused", "trainer")) >= before + 3
    page.get_by_role("button", name="in English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your role does not allow this")
