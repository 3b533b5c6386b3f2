"""``/api/v1/qa/clips`` on both catalogues: a trainer cuts, lists, plays, keeps and deletes a
clip; a mixed clip is not kept; plays are audited for training; nothing says who called."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from recarchive.access.models import AuditEvent, Role
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
from tests.integration.test_qa_clips import SECONDS, two_voices

Q = Role.QA_TRAINER
CLIPS = "/api/v1/qa/clips"


@pytest.fixture(scope="module")
def world(
    catalogue_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Runtime, ApiClient, uuid.UUID]]:
    runtime = build_runtime(catalogue_url, tmp_path_factory.mktemp("clips-api"))
    number = new_number()
    customer = f"C-{uuid.uuid4().hex[:6]}"
    add_customer(runtime, customer, "Clip Api Customer", [national(number)])
    recording = add_recording(
        runtime,
        seconds=SECONDS,
        channels=2,
        audio=two_voices(),
        split_legs=True,
        agent="agent-3",
        customer_id=customer,
        caller_number=national(number),
    )
    api = ApiClient(runtime, tokens(runtime, prefix="clips-"))
    yield runtime, api, recording.id
    api.close()
    close_runtime(runtime)


def _cut(api: ApiClient, rid: uuid.UUID, **extra: object) -> dict[str, object]:
    body = {"recording_id": str(rid), "start_ms": 500, "end_ms": 2500, "title": "Greeting"}
    response = api.as_role(Q).post(CLIPS, json={**body, "purpose": "openings", **extra})
    assert response.status_code == 201, response.text
    data: dict[str, object] = response.json()
    return data


def test_a_trainer_cuts_lists_plays_keeps_and_deletes(
    world: tuple[Runtime, ApiClient, uuid.UUID],
) -> None:
    runtime, api, rid = world
    trainer = api.as_role(Q)
    mixed, agent_only = _cut(api, rid), _cut(api, rid, agent_only=True)
    assert (mixed["channels"], agent_only["channels"], agent_only["agent_only"]) == (2, 1, True)
    listed = trainer.get(CLIPS)
    assert {mixed["id"], agent_only["id"]} <= {c["id"] for c in listed.json()["items"]}
    assert trainer.get(f"{CLIPS}/{mixed['id']}").json()["title"] == "Greeting"
    audio = trainer.get(f"{CLIPS}/{agent_only['id']}/audio")
    assert audio.status_code == 200
    assert audio.headers["content-type"] == "audio/ogg"
    pcm = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", "pipe:0", "-f", "s16le", "pipe:1"],
        input=audio.content,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    assert abs(len(pcm) / 2 / 48000 - 2.0) < 0.05  # mono, decoded at Opus's 48 kHz
    keep = {"until": "2031-01-01T00:00:00+02:00", "reason": "a model greeting"}
    refused = trainer.post(f"{CLIPS}/{mixed['id']}/keep", json=keep)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "keep_refused"
    kept = trainer.post(f"{CLIPS}/{agent_only['id']}/keep", json=keep)
    assert kept.status_code == 200, kept.text
    assert kept.json()["kept_reason"] == "a model greeting"
    assert kept.json()["kept_by"] == "clips-qa_trainer"
    assert trainer.request("DELETE", f"{CLIPS}/{mixed['id']}").status_code == 204
    assert trainer.get(f"{CLIPS}/{mixed['id']}").status_code == 404
    everything = " ".join([listed.text, audio.headers.get("content-disposition", ""), kept.text])
    assert leaks(everything) == []
    with runtime.sessions() as session:
        play = session.scalar(
            select(AuditEvent)
            .where(AuditEvent.action == "qa.clip.play")
            .order_by(AuditEvent.seq.desc())
        )
    assert play is not None
    assert (play.purpose, play.recording_id, play.actor) == ("training", rid, "clips-qa_trainer")


def test_bad_spans_and_unknown_recordings(world: tuple[Runtime, ApiClient, uuid.UUID]) -> None:
    _, api, rid = world
    trainer = api.as_role(Q)
    body = {"recording_id": str(rid), "title": "t", "purpose": "p"}
    beyond = trainer.post(CLIPS, json={**body, "start_ms": 5000, "end_ms": 9000})
    assert beyond.status_code == 422
    assert "the call lasts" in beyond.json()["error"]["message"]
    unknown = trainer.post(
        CLIPS, json={**body, "recording_id": str(uuid.uuid4()), "start_ms": 0, "end_ms": 10}
    )
    assert unknown.status_code == 404
    for role in Role:
        if role is not Q:
            assert api.as_role(role).get(CLIPS).status_code == 403
