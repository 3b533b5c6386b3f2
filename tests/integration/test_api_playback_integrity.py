"""Integrity at playback: every full read served is checked against the recording's SHA-256.

On SQLite and PostgreSQL, the filesystem store and the S3 server, with
recordings in plaintext and encrypted (:data:`tests.api_fixtures.STORE_VARIANTS`).
An object's bytes are changed behind the archive's back by writing the raw
object again through the store under the encryption (the way a disk fault,
a restore of the wrong backup or an intruder would leave it): the full read
must then be cut before its end, audited, counted and recorded, and the
recording's view must say so.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import logging
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import delete, select

from recarchive.access.models import AuditEvent, Role
from recarchive.api.app import create_app
from recarchive.catalogue.database import transaction, utcnow
from recarchive.catalogue.models import Recording
from recarchive.retention import integrity
from recarchive.retention.checks import (
    VIA_PLAYBACK,
    VIA_VERIFY,
    Check,
    Expected,
    FullReadCheck,
    record_check,
    record_checks,
)
from recarchive.retention.integrity import verify_integrity
from recarchive.retention.models import RecordingCheck
from recarchive.runtime import Runtime
from tests.api_fixtures import (
    STORE_VARIANTS,
    ApiClient,
    RoleClient,
    add_recording,
    build_runtime,
    close_runtime,
    tokens,
    variant_runtime,
    wav_bytes,
)

D, Q = Role.DISPUTE_HANDLER, Role.QA_TRAINER
DISPUTE = {"purpose": "dispute", "case": "D-77"}
TAMPERINGS = ("flipped", "truncated", "extended")


@dataclasses.dataclass
class World:
    runtime: Runtime
    api: ApiClient
    role_tokens: dict[Role, str]

    def as_role(self, role: Role) -> RoleClient:
        return self.api.as_role(role)


@pytest.fixture(scope="module")
def base(catalogue_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    runtime = build_runtime(catalogue_url, tmp_path_factory.mktemp("playcheck"))
    role_tokens = tokens(runtime)
    api = ApiClient(runtime, role_tokens)
    yield World(runtime, api, role_tokens)
    api.close()
    close_runtime(runtime)


@pytest.fixture(scope="module", params=STORE_VARIANTS)
def world(
    request: pytest.FixtureRequest, base: World, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """The base's catalogue and users, on one store variant."""
    if request.param == "filesystem":
        yield base
        return
    runtime = variant_runtime(
        base.runtime.settings.catalogue_url,
        tmp_path_factory.mktemp(f"playcheck-{request.param}"),
        request.param,
    )
    api = ApiClient(runtime, base.role_tokens)
    yield World(runtime, api, base.role_tokens)
    api.close()
    close_runtime(runtime)


# --- helpers --------------------------------------------------------------------


def audio_url(recording: Recording) -> str:
    return f"/api/v1/recordings/{recording.id}/audio"


def check_of(runtime: Runtime, recording_id: uuid.UUID) -> RecordingCheck | None:
    with runtime.sessions() as session:
        return session.get(RecordingCheck, recording_id)


def mismatch_events(runtime: Runtime, recording_id: uuid.UUID) -> list[AuditEvent]:
    with runtime.sessions() as session:
        statement = select(AuditEvent).where(
            AuditEvent.action == "integrity.mismatch", AuditEvent.recording_id == recording_id
        )
        return list(session.scalars(statement.order_by(AuditEvent.seq)))


def mismatches_counted(world: World) -> float:
    text = world.api.anonymous().get("/metrics").text
    match = re.search(r"^recarchive_integrity_mismatches_total (\S+)$", text, re.MULTILINE)
    assert match, "the counter is missing from /metrics"
    return float(match.group(1))


def raw_object(runtime: Runtime, key: str) -> bytes:
    """The bytes stored under ``key``, as the store holds them (ciphertext when encrypted)."""
    inner: Any = runtime.store.inner  # type: ignore[attr-defined]
    with inner.get(key) as reader:
        data: bytes = reader.read()
    return data


def tamper(runtime: Runtime, recording: Recording, how: str) -> None:
    """Change the stored object's bytes without the catalogue knowing."""
    data = bytearray(raw_object(runtime, recording.object_key))
    if how == "flipped":  # same size, one byte changed (inside the audio, past any header)
        data[len(data) // 2] ^= 0x01
    elif how == "truncated":
        del data[-100:]
    else:  # extended: bytes appended after the audio
        data += b"\x00" * 100
    inner: Any = runtime.store.inner  # type: ignore[attr-defined]
    inner.put(recording.object_key, io.BytesIO(bytes(data)))


def view(world: World, recording: Recording, role: Role = D) -> dict[str, Any]:
    response = world.as_role(role).get(f"/api/v1/recordings/{recording.id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- a full read that matches -----------------------------------------------------


def test_an_untouched_recording_played_whole_is_recorded_as_verified(world: World) -> None:
    recording = add_recording(world.runtime, seconds=2)
    assert view(world, recording)["integrity"] is None  # never checked
    before = utcnow()
    response = world.as_role(D).get(audio_url(recording), params=DISPUTE)
    assert response.status_code == 200, response.text[:200]
    assert response.content == wav_bytes(2)
    check = check_of(world.runtime, recording.id)
    assert check is not None
    assert (check.ok, check.via) == (True, VIA_PLAYBACK)
    assert before <= check.checked_at <= utcnow()
    assert check.last_ok_at == check.checked_at
    expected = {
        "last_checked_at": check.checked_at.isoformat().replace("+00:00", "Z"),
        "ok": True,
        "via": "playback",
        "last_ok_at": check.checked_at.isoformat().replace("+00:00", "Z"),
    }
    for role in (D, Q):  # every role that may view a recording sees its check
        shown = view(world, recording, role)["integrity"]
        assert {k: _iso(v) for k, v in shown.items()} == {k: _iso(v) for k, v in expected.items()}
    assert not mismatch_events(world.runtime, recording.id)


def _iso(value: Any) -> Any:
    """An ISO 8601 time as a datetime (the API may spell UTC as Z or +00:00)."""
    if isinstance(value, str) and re.match(r"^\d{4}-\d\d-\d\dT", value):
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


def test_a_range_covering_the_whole_recording_is_a_full_read(world: World) -> None:
    recording = add_recording(world.runtime, seconds=2)
    response = world.as_role(D).get(
        audio_url(recording), params=DISPUTE, headers={"Range": "bytes=0-"}
    )
    assert response.status_code == 206
    assert response.content == wav_bytes(2)
    check = check_of(world.runtime, recording.id)
    assert check is not None
    assert (check.ok, check.via) == (True, VIA_PLAYBACK)


def test_partial_reads_and_transcodes_record_nothing(world: World) -> None:
    recording = add_recording(world.runtime, seconds=2)
    size = len(wav_bytes(2))
    dispute = world.as_role(D)
    for header in ("bytes=0-99", "bytes=100-", f"bytes=-{size - 1}", f"bytes=0-{size - 2}"):
        response = dispute.get(audio_url(recording), params=DISPUTE, headers={"Range": header})
        assert response.status_code == 206, header
    transcoded = dispute.get(audio_url(recording), params={**DISPUTE, "format": "wav"})
    assert transcoded.status_code == 200
    assert check_of(world.runtime, recording.id) is None
    assert view(world, recording)["integrity"] is None


# --- bytes changed behind the archive's back ---------------------------------------


@pytest.mark.parametrize("how", TAMPERINGS)
def test_a_changed_object_is_cut_audited_counted_and_recorded(
    world: World, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    recording = add_recording(world.runtime, seconds=2)
    data = wav_bytes(2)
    dispute = world.as_role(D)
    assert dispute.get(audio_url(recording), params=DISPUTE).content == data
    verified = check_of(world.runtime, recording.id)
    assert verified is not None
    assert verified.ok
    counted = mismatches_counted(world)

    tamper(world.runtime, recording, how)
    with caplog.at_level(logging.ERROR, logger="recarchive"):
        response = dispute.get(audio_url(recording), params=DISPUTE)
    if response.status_code == 200:  # the answer had begun: its end never came
        assert response.headers["Content-Length"] == str(len(data))
        assert len(response.content) < len(data)
        assert data.startswith(response.content)  # nothing past the catalogued size either
    else:  # an encrypted object cut or grown does not even open
        assert response.status_code == 500, response.status_code
        assert world.runtime.settings.encryption.enabled
        assert how != "flipped"

    check = check_of(world.runtime, recording.id)
    assert check is not None
    assert (check.ok, check.via) == (False, VIA_PLAYBACK)
    assert check.checked_at > verified.checked_at
    assert check.last_ok_at == verified.checked_at  # kept through the failure
    [event] = mismatch_events(world.runtime, recording.id)
    assert event.actor == "playback"
    assert event.details["via"] == "playback"
    assert event.details["object_key"] == recording.object_key
    assert event.details["expected_sha256"] == recording.sha256
    assert event.details["expected_size"] == len(data)
    if not world.runtime.settings.encryption.enabled:  # plaintext: what was read instead
        assert event.details["actual_sha256"] not in (None, recording.sha256)
        assert event.details["actual_size"] == {"flipped": 0, "truncated": -100, "extended": 100}[
            how
        ] + len(data)
    assert mismatches_counted(world) == counted + 1
    logged = [r for r in caplog.records if r.getMessage() == "integrity_mismatch"]
    assert [getattr(r, "recording_id", None) for r in logged] == [str(recording.id)]
    assert logged[0].expected_sha256 == recording.sha256

    shown = view(world, recording)["integrity"]
    assert (shown["ok"], shown["via"]) == (False, "playback")
    assert _iso(shown["last_ok_at"]) == verified.checked_at

    # A part of the file is still served (it is not checked), and records nothing new.
    partial = dispute.get(audio_url(recording), params=DISPUTE, headers={"Range": "bytes=0-9"})
    assert partial.status_code in (206, 500)
    assert len(mismatch_events(world.runtime, recording.id)) == 1


# --- the domain: early ends, and the one writer of checks ---------------------------


def test_a_client_gone_before_the_end_records_nothing(world: World) -> None:
    recording = add_recording(world.runtime, seconds=10)  # the flip lands past the first chunk
    expected = Expected(recording.id, recording.object_key, recording.sha256, recording.size_bytes)
    counted: list[int] = []
    check = FullReadCheck(world.runtime, expected, on_mismatch=lambda: counted.append(1))
    stream = check.chunks(check.open(), 1000)
    assert len(next(stream)) == 1000
    stream.close()  # the listener went away
    assert check_of(world.runtime, recording.id) is None

    tamper(world.runtime, recording, "flipped")
    stream = check.chunks(check.open(), 1000)
    next(stream)
    stream.close()  # gone before the end: not a finding either
    assert check_of(world.runtime, recording.id) is None
    assert not mismatch_events(world.runtime, recording.id)
    assert not counted


def test_a_catalogue_that_fails_the_write_does_not_fail_a_matching_stream(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    recording = add_recording(world.runtime, seconds=2)
    expected = Expected(recording.id, recording.object_key, recording.sha256, recording.size_bytes)
    check = FullReadCheck(world.runtime, expected)
    reader = check.open()
    with transaction(world.runtime.sessions) as session:  # the row goes while it streams
        session.execute(delete(Recording).where(Recording.id == recording.id))
    with caplog.at_level(logging.ERROR, logger="recarchive"):
        assert b"".join(check.chunks(reader, 4096)) == wav_bytes(2)
    assert check_of(world.runtime, recording.id) is None


@pytest.fixture(params=STORE_VARIANTS)
def fresh(
    request: pytest.FixtureRequest, empty_catalogue_url: str, tmp_path: Path
) -> Iterator[Runtime]:
    """A runtime of its own (catalogue and store), for tests that read everything."""
    runtime = variant_runtime(empty_catalogue_url, tmp_path / "var", request.param)
    yield runtime
    close_runtime(runtime)


def test_record_check_keeps_the_last_success_and_ignores_older_news(fresh: Runtime) -> None:
    recording = add_recording(fresh, seconds=1)
    t0 = utcnow().replace(microsecond=0)
    later = [t0 + dt.timedelta(minutes=m) for m in range(4)]
    with transaction(fresh.sessions) as session:
        record_check(session, recording.id, ok=True, via=VIA_VERIFY, at=later[0])
    with transaction(fresh.sessions) as session:
        record_check(session, recording.id, ok=False, via=VIA_PLAYBACK, at=later[2])
    check = check_of(fresh, recording.id)
    assert check is not None
    assert (check.ok, check.via, check.checked_at, check.last_ok_at) == (
        False, VIA_PLAYBACK, later[2], later[0],
    )  # fmt: skip
    with transaction(fresh.sessions) as session:  # a check older than the one recorded
        record_check(session, recording.id, ok=True, via=VIA_VERIFY, at=later[1])
    check = check_of(fresh, recording.id)
    assert check is not None
    assert (check.ok, check.checked_at) == (False, later[2])
    gone = uuid.uuid4()  # no such recording: skipped, not a foreign-key failure
    with transaction(fresh.sessions) as session:
        written = record_checks(
            session,
            [
                Check(recording.id, False, VIA_VERIFY, later[3]),
                Check(recording.id, True, VIA_VERIFY, later[3] + dt.timedelta(seconds=1)),
                Check(gone, True, VIA_VERIFY, later[3]),
            ],
        )
    assert written == 1
    check = check_of(fresh, recording.id)
    assert check is not None
    assert (check.ok, check.via) == (True, VIA_VERIFY)
    assert check.last_ok_at == check.checked_at == later[3] + dt.timedelta(seconds=1)
    assert check_of(fresh, gone) is None


def test_verify_records_a_check_of_every_recording_it_read(
    fresh: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(integrity, "CHECKS_PER_COMMIT", 2)  # several commits in one run
    recordings = [add_recording(fresh, seconds=1) for _ in range(5)]
    bad, lost = recordings[1], recordings[3]
    tamper(fresh, bad, "flipped")
    fresh.store.delete(lost.object_key)
    started = utcnow()
    report = verify_integrity(fresh, all_=True)
    assert (report.checked, report.ok, report.mismatched, report.missing) == (5, 3, 1, 1)
    for recording in recordings:
        check = check_of(fresh, recording.id)
        assert check is not None, recording.id
        assert check.via == VIA_VERIFY
        assert check.ok == (recording not in (bad, lost))
        assert check.checked_at >= started
        assert (check.last_ok_at is not None) == check.ok
    with fresh.sessions() as session:
        [mismatch] = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "integrity.mismatch")
        ).all()
    assert (mismatch.recording_id, mismatch.details["via"]) == (bad.id, "verify")

    sample = verify_integrity(fresh, sample=2)  # a sample records what it read
    assert sample.checked == 2
    with fresh.sessions() as session:
        newer = session.scalar(
            select(RecordingCheck.recording_id).where(RecordingCheck.checked_at > report_end(fresh))
        )
    assert newer is not None


def report_end(runtime: Runtime) -> dt.datetime:
    """When the first run's summary was committed."""
    with runtime.sessions() as session:
        first = session.scalars(
            select(AuditEvent.at)
            .where(AuditEvent.action == "integrity.verified")
            .order_by(AuditEvent.seq)
        ).first()
    assert first is not None
    return first


# --- over a real connection ---------------------------------------------------------


def _read_into(response: httpx.Response, received: bytearray) -> None:
    for chunk in response.iter_bytes():
        received += chunk


def _serve(runtime: Runtime) -> tuple[uvicorn.Server, threading.Thread, str]:
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


def test_over_http_the_client_sees_the_connection_cut_never_a_whole_file(world: World) -> None:
    recording = add_recording(world.runtime, seconds=10)  # several chunks
    tamper(world.runtime, recording, "flipped")
    server, thread, url = _serve(world.runtime)
    try:
        headers = {"Authorization": f"Bearer {world.role_tokens[D]}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            received = bytearray()
            with client.stream("GET", audio_url(recording), params=DISPUTE) as response:
                assert response.status_code == 200
                assert response.headers["Content-Length"] == str(recording.size_bytes)
                with pytest.raises(httpx.RemoteProtocolError):  # cut, not ended: never whole
                    _read_into(response, received)
            assert len(received) < recording.size_bytes
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    check = check_of(world.runtime, recording.id)
    assert check is not None
    assert not check.ok
