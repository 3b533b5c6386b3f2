"""The player shows, for the recording being played, when its SHA-256 was last verified.

Headless Chromium over the archive of ``test_player`` (its fixtures, a world
of this module's own): a full play is a full read, checked as it is served,
and the player reads the check again once the play ends; a recording whose
bytes were changed behind the archive's back shows a warning.
"""

# The fixtures come from test_player; pytest hands them over by parameter name,
# which pyflakes sees as redefining the imports.
# ruff: noqa: F811

from __future__ import annotations

import datetime as dt
import io
import re
import uuid
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect

from recarchive.catalogue.models import Recording
from recarchive.retention.models import RecordingCheck
from tests.browser.test_player import (  # noqa: F401
    PLAYED,
    RESTRICTED,
    Archive,
    archive,
    browser,
    chromium,
    listen,
    search_all,
    sign_in,
    wait_playing,
)

HELSINKI = "Europe/Helsinki"
VERIFIED = re.compile(r"^SHA-256 verified (\d{4}-\d\d-\d\d \d\d:\d\d) \(on playback\)$")


@pytest.fixture
def helsinki_page(browser: Browser) -> Iterator[Page]:
    """A page whose clock shows Helsinki time (the player shows local times)."""
    context = browser.new_context(timezone_id=HELSINKI)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def check_of(archive: Archive, recording_id: uuid.UUID) -> RecordingCheck | None:
    with archive.runtime.sessions() as session:
        return session.get(RecordingCheck, recording_id)


def in_helsinki(moment: dt.datetime) -> str:
    return moment.astimezone(ZoneInfo(HELSINKI)).strftime("%Y-%m-%d %H:%M")


def test_a_full_play_shows_the_sha256_verified_on_playback(
    helsinki_page: Page, archive: Archive
) -> None:
    page = helsinki_page
    recording_id = archive.ids[PLAYED.agent]
    assert check_of(archive, recording_id) is None
    sign_in(page, archive, "qa_trainer")
    search_all(page)
    listen(page, PLAYED)
    held: list[Route] = []  # the audio waits until the line has shown the state before
    audio_requests = re.compile(r"/audio\?")

    def hold(route: Route) -> None:
        if released:
            route.continue_()
        else:
            held.append(route)

    released = False

    page.route(audio_requests, hold)
    page.get_by_role("button", name="Play", exact=True).click()
    line = page.locator("#player-integrity")
    expect(line).to_have_text("SHA-256 not verified yet")
    page.wait_for_function("() => true")  # let the route handler see the request
    assert held
    released = True
    for route in held:
        route.continue_()
    wait_playing(page)
    # All of it fetched: the one full read has been served, its last chunk after the check.
    page.wait_for_function(
        "() => { const a = document.getElementById('audio');"
        " return a.buffered.length && a.buffered.end(a.buffered.length - 1) >= a.duration - 0.05; }"
    )
    page.locator("#audio").evaluate("a => { a.currentTime = a.duration - 0.3; }")
    page.wait_for_function("() => document.getElementById('audio').ended")

    expect(line).to_have_text(VERIFIED)
    expect(line).to_have_class(re.compile(r"\bok\b"))
    check = check_of(archive, recording_id)
    assert check is not None
    assert (check.ok, check.via) == (True, "playback")
    shown = VERIFIED.match(line.inner_text())
    assert shown is not None
    assert shown.group(1) == in_helsinki(check.checked_at)


def test_a_recording_whose_bytes_changed_shows_a_warning(
    helsinki_page: Page, archive: Archive
) -> None:
    page = helsinki_page
    recording_id = archive.ids[RESTRICTED.agent]  # no restriction in this module: plain call
    store: Any = archive.runtime.store.inner  # type: ignore[attr-defined]
    key = _key_of(archive, recording_id)
    with store.get(key) as reader:
        data = bytearray(reader.read())
    data[len(data) // 2] ^= 0x01
    store.put(key, io.BytesIO(bytes(data)))
    headers = {"Authorization": f"Bearer {archive.tokens['qa_trainer']}"}
    with (
        httpx.Client(base_url=archive.base_url, headers=headers, timeout=30) as client,
        client.stream(
            "GET", f"/api/v1/recordings/{recording_id}/audio", params={"purpose": "training"}
        ) as response,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        response.read()  # cut before its end
    check = check_of(archive, recording_id)
    assert check is not None
    assert not check.ok

    sign_in(page, archive, "qa_trainer")
    search_all(page)
    listen(page, RESTRICTED)
    page.get_by_role("button", name="Play", exact=True).click()
    line = page.locator("#player-integrity")
    expect(line).to_have_text(
        "Warning: the audio did not match its SHA-256 at the last check, "
        f"{in_helsinki(check.checked_at)} (on playback)"
    )
    expect(line).to_have_class(re.compile(r"\bfailed\b"))


def _key_of(archive: Archive, recording_id: uuid.UUID) -> str:
    with archive.runtime.sessions() as session:
        return session.get_one(Recording, recording_id).object_key
