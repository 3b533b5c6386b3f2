"""QA trainers' notes on a call's timeline, on both catalogues, through the API.

Written, listed by offset, edited and deleted by their author only; private
ones invisible to another trainer; never on a call objected to or
restricted (refused as an unknown call is, and hidden once the call is
excluded); an offset past the call's end refused; gone with the call when
it expires (the real expiry) or is erased; audited without their text.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from recarchive.access.models import AuditEvent, Role
from recarchive.access.users import add_user
from recarchive.catalogue.database import utcnow
from recarchive.qa.models import Note
from recarchive.retention.expiry import expire_recordings
from recarchive.runtime import Runtime
from tests.actors import ADMIN
from tests.api_fixtures import (
    ApiClient,
    RoleClient,
    add_customer,
    add_recording,
    build_runtime,
    close_runtime,
    tokens,
)

Q, P = Role.QA_TRAINER, Role.PRIVACY_OFFICER
UNKNOWN = "00000000-0000-4000-8000-000000000000"


@dataclasses.dataclass
class World:
    runtime: Runtime
    api: ApiClient
    #: A second QA trainer.
    other: RoleClient


@pytest.fixture(scope="module")
def world(catalogue_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    runtime = build_runtime(catalogue_url, tmp_path_factory.mktemp("qa-notes"))
    api = ApiClient(runtime, tokens(runtime, prefix="n-"))
    second = add_user(runtime, "n-second-trainer", Q, actor=ADMIN).token
    yield World(runtime, api, RoleClient(api.client, second))
    api.close()
    close_runtime(runtime)


def _customer_call(world: World, seconds: float = 2.0, **kwargs: object) -> tuple[str, str]:
    customer = f"C-{uuid.uuid4().hex[:8]}"
    add_customer(world.runtime, customer, "Notes Customer", [])
    recording = add_recording(
        world.runtime, seconds=seconds, customer_id=customer, agent="agent-7", **kwargs
    )  # type: ignore[arg-type]
    return str(recording.id), customer


def _notes_url(recording_id: str) -> str:
    return f"/api/v1/recordings/{recording_id}/notes"


def _add(client: RoleClient, recording_id: str, **body: object) -> dict[str, object]:
    response = client.post(_notes_url(recording_id), json={"offset_ms": 500, "text": "x", **body})
    assert response.status_code == 201, response.text
    data: dict[str, object] = response.json()
    return data


def _rows(world: World, recording_id: str) -> int:
    with world.runtime.sessions() as session:
        count = session.scalar(
            select(func.count(Note.id)).where(Note.recording_id == uuid.UUID(recording_id))
        )
    return int(count or 0)


def _audited(world: World, note_id: object) -> list[AuditEvent]:
    with world.runtime.sessions() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("qa.note.%")).order_by(AuditEvent.seq)
        )
        return [e for e in events if (e.details or {}).get("note_id") == note_id]


def test_a_trainer_adds_lists_edits_and_deletes_notes(world: World) -> None:
    recording_id, _customer = _customer_call(world)
    trainer = world.api.as_role(Q)
    late = _add(trainer, recording_id, offset_ms=1500, text="closing: good summary")
    early = _add(trainer, recording_id, offset_ms=200, text="greeting\nwarm", visibility="shared")
    assert (early["visibility"], late["visibility"]) == ("shared", "private")
    assert (early["author"], early["mine"]) == ("n-qa_trainer", True)
    listed = trainer.get(_notes_url(recording_id)).json()["items"]
    assert [n["id"] for n in listed] == [early["id"], late["id"]]  # by offset
    assert listed[0]["text"] == "greeting\nwarm"

    changed = trainer.request(
        "PATCH",
        f"/api/v1/qa/notes/{late['id']}",
        json={"text": "closing: rushed", "offset_ms": 1800},
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["text"], changed.json()["offset_ms"]) == ("closing: rushed", 1800)
    assert changed.json()["updated_at"] > late["updated_at"]  # type: ignore[operator]
    gone = trainer.request("DELETE", f"/api/v1/qa/notes/{early['id']}")
    assert gone.status_code == 204, gone.text
    assert [n["id"] for n in trainer.get(_notes_url(recording_id)).json()["items"]] == [late["id"]]
    again = trainer.request("DELETE", f"/api/v1/qa/notes/{early['id']}")
    assert again.status_code == 404

    actions = [e.action for e in _audited(world, late["id"])]
    assert actions == ["qa.note.add", "qa.note.edit"]
    assert [e.action for e in _audited(world, early["id"])] == ["qa.note.add", "qa.note.delete"]
    for event in _audited(world, late["id"]) + _audited(world, early["id"]):
        details = str(event.details)
        assert "closing" not in details
        assert "greeting" not in details
        assert event.recording_id == uuid.UUID(recording_id)
    assert _audited(world, late["id"])[1].details["changed"] == ["offset_ms", "text"]


def test_private_notes_are_their_authors_and_only_authors_change_notes(world: World) -> None:
    recording_id, _customer = _customer_call(world)
    mine = _add(world.api.as_role(Q), recording_id, text="private remark")
    shared = _add(world.api.as_role(Q), recording_id, text="for the team", visibility="shared")
    theirs = world.other.get(_notes_url(recording_id)).json()["items"]
    assert [(n["id"], n["mine"]) for n in theirs] == [(shared["id"], False)]
    hidden = world.other.request("PATCH", f"/api/v1/qa/notes/{mine['id']}", json={"text": "y"})
    assert hidden.status_code == 404  # another's private note: as if there were none
    unknown = world.other.request("PATCH", f"/api/v1/qa/notes/{UNKNOWN}", json={"text": "y"})
    assert (hidden.status_code, hidden.json()["error"]["code"]) == (
        unknown.status_code,
        unknown.json()["error"]["code"],
    )
    refused = world.other.request("DELETE", f"/api/v1/qa/notes/{shared['id']}")
    assert refused.status_code == 403
    assert _rows(world, recording_id) == 2
    # Made private, the shared note leaves the other trainer's list.
    world.api.as_role(Q).request(
        "PATCH", f"/api/v1/qa/notes/{shared['id']}", json={"visibility": "private"}
    )
    assert world.other.get(_notes_url(recording_id)).json()["items"] == []


@pytest.mark.parametrize(
    ("offset_ms", "text", "field"),
    [
        (2001, "past the end", "offset_ms"),
        (-1, "before the start", "offset_ms"),
        (0, "   ", "text"),
        (0, "x" * 2001, "text"),
        (0, "tab\there", "text"),
    ],
)
def test_bad_notes_are_refused_clearly(world: World, offset_ms: int, text: str, field: str) -> None:
    recording_id, _customer = _customer_call(world, seconds=2.0)
    response = world.api.as_role(Q).post(
        _notes_url(recording_id), json={"offset_ms": offset_ms, "text": text}
    )
    assert response.status_code == 422, response.text
    assert field in response.text
    assert _rows(world, recording_id) == 0


def test_the_end_of_the_call_is_a_moment_too(world: World) -> None:
    recording_id, _customer = _customer_call(world, seconds=2.0)
    assert _add(world.api.as_role(Q), recording_id, offset_ms=2000)["offset_ms"] == 2000


@pytest.mark.parametrize("exclusion", ["object", "restrict"])
def test_no_notes_on_excluded_calls_and_old_ones_hidden(world: World, exclusion: str) -> None:
    recording_id, customer = _customer_call(world)
    trainer = world.api.as_role(Q)
    note = _add(trainer, recording_id, text="before the objection", visibility="shared")
    body: dict[str, object] = {"subject": {"customer_id": customer}}
    if exclusion == "restrict":
        body.update(purpose="dispute", case_ref="N-1")
    placed = world.api.as_role(P).post(f"/api/v1/subjects/{exclusion}", json=body)
    assert placed.status_code in (200, 201), placed.text

    unknown = trainer.get(_notes_url(UNKNOWN))
    for response in (
        trainer.get(_notes_url(recording_id)),
        world.other.get(_notes_url(recording_id)),
        trainer.post(_notes_url(recording_id), json={"offset_ms": 0, "text": "after"}),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == unknown.json()["error"]["code"]
        assert (
            response.json()["error"]["message"].replace(recording_id, UNKNOWN)
            == (unknown.json()["error"]["message"])
        )
    changed = trainer.request("PATCH", f"/api/v1/qa/notes/{note['id']}", json={"text": "z"})
    assert changed.status_code == 404
    assert _rows(world, recording_id) == 1  # kept, unseen, until the call goes


def test_notes_go_when_their_call_expires(world: World) -> None:
    recording_id, _customer = _customer_call(world, retain_until=utcnow() + dt.timedelta(hours=1))
    _add(world.api.as_role(Q), recording_id, text="expires with the call")
    kept_id, _ = _customer_call(world)
    _add(world.api.as_role(Q), kept_id, text="stays")
    report = expire_recordings(world.runtime, now=utcnow() + dt.timedelta(hours=2))
    assert report.deleted >= 1
    assert _rows(world, recording_id) == 0
    assert _rows(world, kept_id) == 1


def test_notes_go_when_their_call_is_erased(world: World) -> None:
    recording_id, customer = _customer_call(world)
    _add(world.api.as_role(Q), recording_id, text="erased with the call", visibility="shared")
    response = world.api.as_role(P).post("/api/v1/subjects/erase", json={"customer_id": customer})
    assert response.status_code == 200, response.text
    assert response.json()["erased"] == [recording_id]
    assert _rows(world, recording_id) == 0
    assert world.api.as_role(Q).get(_notes_url(recording_id)).status_code == 404
