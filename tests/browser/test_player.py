"""The web player end to end, in headless Chromium: sign in, search, state a purpose, listen.

The API runs under uvicorn on a free local port, over a fresh SQLite
catalogue and filesystem store holding three real 30-second stereo WAV
recordings (a different tone on each channel). Playwright drives Debian's
Chromium, which streams the audio the way any browser does: with Range
requests, seeking by asking for a later byte range. The network is throttled
to twice the audio's bit rate so that a seek lands past what has been
fetched, as it does on a real network, instead of inside a file that
localhost delivered whole in a millisecond.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import os
import re
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, Request, expect, sync_playwright
from sqlalchemy import select

from recarchive.access.models import AuditEvent
from recarchive.access.users import add_user
from recarchive.api.app import create_app
from recarchive.api.auth import COOKIE_NAME
from recarchive.catalogue.database import create_catalogue_engine, transaction, utcnow
from recarchive.catalogue.migrate import upgrade_schema
from recarchive.catalogue.models import CustomerMatch, Direction, Recording, RecordingReason
from recarchive.catalogue.restrictions import ProcessingRestriction, RestrictionKind
from recarchive.config import load_settings
from recarchive.retention.holds import place_hold
from recarchive.runtime import Runtime
from tests.actors import ADMIN, staff

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
PEPPER = "browser-test-token-pepper-0123456789abcdef"
CALL_S = 30
#: 8 kHz, 2 channels, 16 bits: 32 000 bytes per second of audio.
BYTES_PER_S = 8000 * 2 * 2
#: What the throttled browser may download per second: twice real time.
THROTTLE_BYTES_PER_S = 2 * BYTES_PER_S
RESTRICTED_CASE = "CASE-7"


@dataclasses.dataclass(frozen=True)
class Call:
    agent: str
    reasons: tuple[str, ...]
    customer_id: str
    caller_number: str


CALLS = (
    Call("agent-anna", ("billing",), "C-1001", "+358401110001"),
    Call("agent-bert", ("fault_report", "outage"), "C-1002", "+358401110002"),
    Call("agent-cecilia", ("moving",), "C-1003", "+358401110003"),
)
HELD, PLAYED, RESTRICTED = CALLS
#: The second part of the held call, transferred to another agent (same linked call id).
TRANSFERRED = Call("agent-dora", ("billing",), "C-1001", "+358401110001")


@dataclasses.dataclass(frozen=True)
class Archive:
    runtime: Runtime
    base_url: str
    tokens: dict[str, str]
    ids: dict[str, uuid.UUID]

    def plays(self, actor: str) -> list[AuditEvent]:
        with self.runtime.sessions() as session:
            query = select(AuditEvent).where(AuditEvent.action == "play", AuditEvent.actor == actor)
            return list(session.scalars(query.order_by(AuditEvent.seq)))


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium (scripts/test does this)"
        if os.environ.get("RECARCHIVE_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


def _stereo_wav(path: Path) -> bytes:
    """A real 8 kHz PCM WAV: 440 Hz on the left (caller), 660 Hz on the right (agent)."""
    tone = "sine=frequency={}:sample_rate=8000:duration=" + str(CALL_S)
    command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"]
    command += ["-f", "lavfi", "-i", tone.format(440), "-f", "lavfi", "-i", tone.format(660)]
    command += ["-filter_complex", "[0:a][1:a]join=inputs=2:channel_layout=stereo[a]"]
    command += ["-map", "[a]", "-c:a", "pcm_s16le", str(path)]
    subprocess.run(command, check=True, timeout=60)
    return path.read_bytes()


def _add_recording(
    runtime: Runtime,
    audio: bytes,
    call: Call,
    started_at: dt.datetime,
    linked_call_id: str | None = None,
) -> uuid.UUID:
    recording_id = uuid.uuid4()
    key = f"recordings/{started_at:%Y/%m/%d}/{recording_id}.wav"
    info = runtime.store.put(key, io.BytesIO(audio), tags={"retention-class": "standard"})
    recording = Recording(
        id=recording_id,
        source="pbx",
        source_ref=f"ref-{recording_id}",
        linked_call_id=linked_call_id,
        started_at=started_at,
        duration_ms=CALL_S * 1000,
        direction=Direction.INBOUND,
        caller_number=call.caller_number,
        called_number="+358201234000",
        agent=call.agent,
        queue="customer-service",
        customer_id=call.customer_id,
        customer_match=CustomerMatch.MATCHED,
        object_key=key,
        format="wav",
        codec="pcm_s16le",
        channels=2,
        sample_rate=8000,
        size_bytes=len(audio),
        sha256=info.sha256 or "",
        retain_until=started_at + dt.timedelta(days=365),
        reasons=[RecordingReason(code=code) for code in call.reasons],
    )
    with transaction(runtime.sessions) as session:
        session.add(recording)
    return recording_id


def _serve(runtime: Runtime) -> tuple[uvicorn.Server, threading.Thread, str]:
    """The API on a free 127.0.0.1 port (the socket is bound here, so no port race)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(runtime), log_config=None, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    base = tmp_path_factory.mktemp("player")
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
    audio = _stereo_wav(base / "call.wav")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ids = {
        call.agent: _add_recording(runtime, audio, call, now - dt.timedelta(hours=hours))
        for hours, call in enumerate(CALLS, start=1)
    }
    with transaction(runtime.sessions) as session:
        session.get_one(Recording, ids[HELD.agent]).linked_call_id = "call-held"
    later = now - dt.timedelta(minutes=50)  # the held call started an hour ago
    ids[TRANSFERRED.agent] = _add_recording(runtime, audio, TRANSFERRED, later, "call-held")
    place_hold(
        runtime,
        case_ref="DISPUTE-1",
        reason="billing dispute",
        actor=staff("privacy-officer"),
        recording_ids=[ids[HELD.agent]],
    )
    tokens = {
        role: add_user(runtime, name, role, actor=ADMIN).token
        for name, role in (("trainer", "qa_trainer"), ("handler", "dispute_handler"))
    }
    # A second dispute handler, whose plays the other tests do not count.
    tokens["second_handler"] = add_user(
        runtime, "second-handler", "dispute_handler", actor=ADMIN
    ).token
    server, thread, base_url = _serve(runtime)
    yield Archive(runtime, base_url, tokens, ids)
    server.should_exit = True
    thread.join(timeout=10)
    runtime.close()


@pytest.fixture
def restriction(archive: Archive) -> Iterator[None]:
    """Restrict one recording to a dispute case while a test runs (training roles lose it)."""
    restriction = ProcessingRestriction(
        kind=RestrictionKind.RESTRICTION,
        recording_id=archive.ids[RESTRICTED.agent],
        allowed_purpose="dispute",
        case_ref=RESTRICTED_CASE,
        created_by="privacy-officer",
    )
    with transaction(archive.runtime.sessions) as session:
        session.add(restriction)
    yield
    with transaction(archive.runtime.sessions) as session:
        session.get_one(ProcessingRestriction, restriction.id).lifted_at = utcnow()


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=LAUNCH_ARGS
        )
        expect.set_options(timeout=15_000)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def sign_in(page: Page, archive: Archive, role: str) -> None:
    page.goto(f"{archive.base_url}/")
    page.get_by_label("API token").fill(archive.tokens[role])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{archive.base_url}/player")


def search_all(page: Page) -> None:
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#results tbody tr")).to_have_count(len(CALLS))


def listen(page: Page, call: Call) -> None:
    row = page.locator("#results tbody tr").filter(has_text=call.agent)
    row.get_by_role("button", name="Listen").click()
    expect(page.get_by_role("dialog")).to_be_visible()


def audio_state(page: Page) -> dict[str, float]:
    state: dict[str, float] = page.locator("#audio").evaluate(
        "a => ({time: a.currentTime, paused: a.paused ? 1 : 0, ready: a.readyState,"
        " rate: a.playbackRate})"
    )
    return state


def wait_playing(page: Page, after_s: float = 0.0) -> None:
    page.wait_for_function(
        "after => { const a = document.getElementById('audio');"
        " return !a.paused && a.readyState >= 2 && a.currentTime > after; }",
        arg=after_s,
    )


def throttle(page: Page, bytes_per_s: int) -> None:
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": bytes_per_s, "uploadThroughput": -1},
    )


def range_starts(requests: list[Request]) -> list[int]:
    """The first byte of every Range header the browser sent for the audio."""
    starts = []
    for request in requests:
        header = request.all_headers().get("range", "")
        if "/audio" in request.url and header.startswith("bytes="):
            starts.append(int(header.removeprefix("bytes=").split("-")[0]))
    return starts


def test_training_playback_streams_seeks_and_is_audited(page: Page, archive: Archive) -> None:
    requests: list[Request] = []
    page.on("request", lambda request: requests.append(request))
    sign_in(page, archive, "qa_trainer")
    expect(page.locator("#whoami")).to_have_text("Signed in as trainer (qa_trainer)")
    search_all(page)
    for call in CALLS:
        row = page.locator("#results tbody tr").filter(has_text=call.agent)
        expect(row.locator(".badge:not(.flag)")).to_have_text(list(call.reasons))
    held_row = page.locator("#results tbody tr").filter(has_text=HELD.agent)
    expect(held_row.locator(".flag")).to_have_text(["held"])

    listen(page, PLAYED)
    purposes = page.get_by_role("radio")
    expect(purposes).to_have_count(1)
    expect(page.get_by_role("radio", name="Training and quality")).to_be_checked()
    throttle(page, THROTTLE_BYTES_PER_S)
    page.get_by_role("button", name="Play", exact=True).click()
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(page.locator("#player-reasons .badge")).to_have_text(list(PLAYED.reasons))

    wait_playing(page)
    before = audio_state(page)["time"]
    page.wait_for_timeout(1000)
    assert audio_state(page)["time"] - before > 0.5

    expect(page.get_by_label("Channel")).to_be_visible()
    expect(page.get_by_label("Channel").locator("option")).to_have_text(
        ["Both", "Caller (left)", "Agent (right)"]
    )
    page.get_by_label("Channel").select_option("caller")
    page.get_by_label("Speed").select_option("1.5")
    assert audio_state(page)["rate"] == 1.5

    page.get_by_label("Position").fill("20")
    page.wait_for_function(
        "() => { const a = document.getElementById('audio');"
        " return !a.seeking && Math.abs(a.currentTime - 20) < 1.5; }"
    )
    wait_playing(page, after_s=20.2)  # still playing after the seek, caller channel only
    assert any(start > 0 for start in range_starts(requests)), range_starts(requests)
    audited = [event.details.get("range", "") for event in archive.plays("trainer")]
    assert all(
        event.recording_id == archive.ids[PLAYED.agent] for event in archive.plays("trainer")
    )
    assert any(r and not r.startswith("0-") for r in audited), audited

    page.keyboard.press(" ")
    expect(page.get_by_role("button", name="Play", exact=True)).to_be_visible()
    paused = audio_state(page)
    assert paused["paused"] == 1
    page.keyboard.press("ArrowLeft")
    assert audio_state(page)["time"] == pytest.approx(paused["time"] - 10, abs=0.25)


def test_the_parts_of_a_transferred_call_are_found_once_and_play_from_the_player(
    page: Page, archive: Archive
) -> None:
    sign_in(page, archive, "second_handler")
    search_all(page)  # the transferred part is not a row of its own
    expect(page.locator("#results tbody tr").filter(has_text=TRANSFERRED.agent)).to_have_count(0)
    listen(page, HELD)
    page.get_by_role("radio", name="Billing or contract dispute").check()
    page.get_by_label("Case reference").fill("CASE-9")
    page.get_by_role("button", name="Play", exact=True).click()
    parts = page.locator("#player-parts li")
    expect(parts).to_have_count(2)
    expect(parts.nth(0)).to_have_text(re.compile(r"^Part 1 of 2 — "))
    expect(parts.nth(0)).to_have_attribute("aria-current", "true")
    page.get_by_role("link", name=re.compile(r"^Part 2 of 2 — ")).click()
    expect(page.locator("#player-call")).to_contain_text(TRANSFERRED.agent)
    expect(page.locator("#player-parts [aria-current]")).to_have_text(re.compile("^Part 2 of 2"))
    wait_playing(page)
    transferred = archive.ids[TRANSFERRED.agent]
    plays = [e for e in archive.plays("second-handler") if e.recording_id == transferred]
    assert plays
    assert all(e.purpose == "dispute" and e.case_ref == "CASE-9" for e in plays)


def test_bad_token_shows_an_error_and_sets_no_cookie(page: Page, archive: Archive) -> None:
    page.goto(f"{archive.base_url}/")
    page.get_by_label("API token").fill("rca_not-a-real-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Sign-in failed")
    assert "rca_not-a-real-token" not in page.content()
    assert page.context.cookies() == []
    page.goto(f"{archive.base_url}/player")
    expect(page.get_by_label("API token")).to_be_visible()  # sent back to sign in


def test_qa_trainer_never_sees_customer_fields(page: Page, archive: Archive) -> None:
    sign_in(page, archive, "qa_trainer")
    expect(page.get_by_label("Customer id")).to_have_count(0)
    expect(page.get_by_label("Phone number")).to_have_count(0)
    search_all(page)
    expect(page.get_by_role("columnheader", name="Customer")).to_have_count(0)
    text = page.locator("body").inner_text()
    for call in CALLS:
        assert call.customer_id not in text
        assert call.caller_number not in text


@pytest.mark.usefixtures("restriction")
def test_dispute_handler_needs_a_case_reference_and_sees_refusals(
    page: Page, archive: Archive
) -> None:
    sign_in(page, archive, "dispute_handler")
    page.get_by_label("Customer id").fill(PLAYED.customer_id)
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#results tbody tr")).to_have_count(1)
    expect(page.get_by_role("cell", name=PLAYED.customer_id)).to_be_visible()

    listen(page, PLAYED)
    expect(page.get_by_role("radio")).to_have_count(1)
    expect(page.get_by_role("radio", name="Billing or contract dispute")).to_be_checked()
    page.get_by_role("button", name="Play", exact=True).click()
    expect(page.locator("#purpose-error")).to_contain_text("case reference")
    expect(page.get_by_role("dialog")).to_be_visible()
    assert page.locator("#audio").get_attribute("src") is None
    assert archive.plays("handler") == []

    page.get_by_label("Case reference").fill("DISPUTE-42")
    page.get_by_role("button", name="Play", exact=True).click()
    wait_playing(page)
    plays = archive.plays("handler")
    assert {(e.purpose, e.case_ref) for e in plays} == {("dispute", "DISPUTE-42")}

    page.get_by_label("Customer id").fill("")
    search_all(page)
    restricted_row = page.locator("#results tbody tr").filter(has_text=RESTRICTED.agent)
    expect(restricted_row.locator(".flag")).to_have_text(["restricted"])
    listen(page, RESTRICTED)
    page.get_by_label("Case reference").fill("DISPUTE-42")
    page.get_by_role("button", name="Play", exact=True).click()
    expect(page.locator("#error")).to_have_text(
        "Not allowed: processing of this recording is restricted to one dispute case"
    )


def test_sign_out_ends_the_session_and_the_old_cookie_is_refused(
    browser: Browser, page: Page, archive: Archive
) -> None:
    sign_in(page, archive, "dispute_handler")
    [cookie] = [c for c in page.context.cookies() if c["name"] == COOKIE_NAME]
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/"
    assert cookie["value"] not in archive.tokens["dispute_handler"]
    search_all(page)  # the page's script, with the session
    me = page.request.get(f"{archive.base_url}/api/v1/me")
    assert me.status == 200
    assert me.json()["user"] == "handler"

    # A form on another origin (about:blank: Origin null) cannot sign the user out.
    forged = page.context.new_page()
    forged.set_content(
        f'<form method="post" action="{archive.base_url}/session/end">'
        '<button type="submit">go</button></form>'
    )
    with forged.expect_response(f"{archive.base_url}/session/end") as answer:
        forged.get_by_role("button", name="go").click()
    assert answer.value.status == 403
    assert page.request.get(f"{archive.base_url}/api/v1/me").status == 200

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{archive.base_url}/")
    assert [c for c in page.context.cookies() if c["name"] == COOKIE_NAME] == []
    replay = browser.new_context()
    try:
        replay.add_cookies([cookie])  # a copy of the cookie taken before sign-out
        assert replay.request.get(f"{archive.base_url}/api/v1/me").status == 401
        old = replay.new_page()
        old.goto(f"{archive.base_url}/player")
        expect(old.get_by_label("API token")).to_be_visible()  # sent back to sign in
    finally:
        replay.close()
    with archive.runtime.sessions() as session:
        refused = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "auth.refused")
            .order_by(AuditEvent.seq.desc())
            .limit(1)
        ).one()
    assert refused.details["reason"] == "unknown_session"


def test_docs_render_from_local_files_under_the_csp(page: Page, archive: Archive) -> None:
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text))
    foreign: list[str] = []
    page.on(
        "request",
        lambda request: (
            foreign.append(request.url)
            if not request.url.startswith((archive.base_url, "data:"))
            else None
        ),
    )
    page.goto(f"{archive.base_url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("recarchive")
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    assert foreign == []
    assert [p for p in problems if "Content Security Policy" in p or "Refused" in p] == []
