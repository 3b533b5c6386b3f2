"""A QA trainer's notes on the timeline, in headless Chromium: added at the current
position, shown as a marker on the seek bar and listed under the player; a click
on either (or Enter on the list's button) moves the audio there.

Over the archive of ``test_player`` (its fixtures; the notes this module writes
are deleted afterwards). What is asserted is read from the DOM and the
``<audio>`` element, and from the catalogue.
"""

# The fixtures come from test_player; pytest hands them over by parameter name,
# which pyflakes sees as redefining the imports.
# ruff: noqa: F811

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import delete, select

from recarchive.access.models import AuditEvent
from recarchive.catalogue.database import transaction
from recarchive.qa.models import Note
from tests.browser.test_player import (  # noqa: F401
    CALL_S,
    PLAYED,
    Archive,
    archive,
    browser,
    chromium,
    listen,
    page,
    search_all,
    sign_in,
    wait_playing,
)

NOTE_AT_S = 12.0


@pytest.fixture
def no_notes(archive: Archive) -> Iterator[None]:
    yield
    with transaction(archive.runtime.sessions) as session:
        session.execute(delete(Note))


def pause_at(page: Page, seconds: float) -> None:
    page.locator("#audio").evaluate(
        "(a, s) => new Promise(done => { a.pause();"
        " a.addEventListener('seeked', () => done(), {once: true}); a.currentTime = s; })",
        seconds,
    )


def current_time(page: Page) -> float:
    value: float = page.locator("#audio").evaluate("a => a.currentTime")
    return value


def test_a_trainer_notes_a_moment_and_its_marker_seeks_there(
    page: Page, archive: Archive, no_notes: None
) -> None:
    sign_in(page, archive, "qa_trainer")
    search_all(page)
    listen(page, PLAYED)
    page.get_by_role("button", name="Play", exact=True).click()
    wait_playing(page)
    expect(page.locator("#notes-status")).to_have_text("No notes on this call yet.")
    pause_at(page, NOTE_AT_S)
    expect(page.locator("#note-at")).to_have_text("0:12")

    text = page.get_by_role("textbox", name="Note at 0:12")
    text.fill("<b>greeting</b> could be warmer")
    page.get_by_label("Share with QA team").check()
    text.press("Enter")  # Enter submits; the form adds the note at the current position

    markers = page.locator("#note-markers .note-marker")
    expect(markers).to_have_count(1)
    expect(page.locator("#notes-status")).to_have_text("1 note on this call.")
    entry = page.locator("#notes-list li")
    expect(entry.locator(".note-text")).to_have_text("<b>greeting</b> could be warmer")  # as text
    expect(entry.locator(".note-meta")).to_have_text("shared, by you")
    expect(entry.locator("b")).to_have_count(0)
    expect(page.locator("#note-text")).to_have_value("")
    colour = markers.first.evaluate("m => getComputedStyle(m).backgroundColor")
    assert colour not in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)")  # seen on the bar
    left = markers.first.evaluate("m => parseFloat(m.style.left)")
    assert left == pytest.approx(100 * NOTE_AT_S / CALL_S, abs=0.5)
    # The marker sits over the seek bar, where the note's moment is.
    bar = page.locator("#seek").bounding_box()
    box = markers.first.bounding_box()
    assert bar is not None
    assert box is not None
    centre = box["x"] + box["width"] / 2
    assert bar["x"] <= centre <= bar["x"] + bar["width"]
    assert centre == pytest.approx(bar["x"] + bar["width"] * NOTE_AT_S / CALL_S, abs=12)

    pause_at(page, 25.0)
    markers.first.click()
    page.wait_for_function(
        f"() => Math.abs(document.getElementById('audio').currentTime - {NOTE_AT_S}) < 0.05"
    )
    assert current_time(page) == pytest.approx(NOTE_AT_S, abs=0.05)
    pause_at(page, 3.0)
    entry.get_by_role("button", name="Go to 0:12").focus()
    page.keyboard.press("Enter")
    page.wait_for_function(
        f"() => Math.abs(document.getElementById('audio').currentTime - {NOTE_AT_S}) < 0.05"
    )

    with archive.runtime.sessions() as session:
        notes = list(session.scalars(select(Note)))
        added = session.scalars(select(AuditEvent).where(AuditEvent.action == "qa.note.add"))
        assert [e.details["note_id"] for e in added] == [str(notes[0].id)]
    assert [(n.offset_ms // 100, n.visibility.value, n.author) for n in notes] == [
        (int(NOTE_AT_S * 10), "shared", "trainer")
    ]

    entry.get_by_role("button", name="Delete the note at 0:12").click()
    expect(markers).to_have_count(0)
    expect(page.locator("#notes-status")).to_have_text("No notes on this call yet.")


def test_other_roles_get_no_notes(page: Page, archive: Archive) -> None:
    sign_in(page, archive, "dispute_handler")
    expect(page.locator("#whoami")).to_contain_text("dispute_handler")
    expect(page.locator("#notes")).to_have_count(0)
    expect(page.locator("#note-markers")).to_have_count(0)
    assert page.locator("script[src*='player_notes']").count() == 0
