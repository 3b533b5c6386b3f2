"""Data-subject rights end to end: find, copy, rectify, erase, restrict, object, the register.

Through the services and the HTTP API, on SQLite and PostgreSQL, with real
audio in the filesystem store; export and erasure also with the S3 server.
One world per module and catalogue backend (:func:`world`): users of every
role and an API client. Each test makes customers, numbers and identity
codes of its own (:func:`new_person`), so tests neither see each other's
recordings nor depend on their order. Every number and identity code made
here is remembered, and the last test checks that none of them, in any
spelling, reached the audit log, the request register or the logs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import logging
import os
import subprocess
import tracemalloc
import uuid
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select

import recarchive.privacy.erasure as erasure_module
from recarchive.access.audit import entry_content, verify_chain
from recarchive.access.models import AuditEvent, Role
from recarchive.access.services import Principal, authenticate
from recarchive.access.users import add_user
from recarchive.catalogue.database import transaction, utcnow
from recarchive.catalogue.models import CustomerMatch, Recording, RecordingStatus
from recarchive.catalogue.restrictions import ProcessingRestriction
from recarchive.errors import StoreUnavailable
from recarchive.privacy.erasure import erase_subject, resume_pending_erasures
from recarchive.privacy.export import export_subject
from recarchive.privacy.models import RequestKind, RequestStatus, SubjectRequest
from recarchive.privacy.subjects import SubjectQuery, request_dict, show_subject
from recarchive.retention.expiry import expire_recordings
from recarchive.retention.holds import place_hold, release_hold
from recarchive.retention.models import Tombstone
from recarchive.retention.tasks import NIGHTLY_ACTION, run_nightly_if_due
from recarchive.runtime import Runtime
from recarchive.storage.interfaces import DeleteResult
from tests.actors import ADMIN, staff
from tests.api_fixtures import (
    PERSONAL,
    STORE_VARIANTS,
    ApiClient,
    RoleClient,
    add_customer,
    add_recording,
    build_runtime,
    close_runtime,
    ffprobe,
    national,
    new_hetu,
    new_number,
    tokens,
    variant_runtime,
    wav_bytes,
)

Q, D, P, A, ADM = (
    Role.QA_TRAINER,
    Role.DISPUTE_HANDLER,
    Role.PRIVACY_OFFICER,
    Role.AUDITOR,
    Role.ADMIN,
)
NOT_PRIVACY = (Q, D, A, ADM)
RECORDINGS = "/api/v1/recordings"
SUBJECTS = "/api/v1/subjects"
RECEIPT_FILES = {"manifest.json", "SHA256SUMS", "LUE_MINUT.txt", "README.txt"}


# --- people and the world ------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclasses.dataclass
class Person:
    customer_id: str
    number: str
    hetu: str
    agent: str
    recordings: list[Recording]

    @property
    def ids(self) -> set[str]:
        return {str(r.id) for r in self.recordings}


@dataclasses.dataclass
class World:
    runtime: Runtime
    api: ApiClient
    role_tokens: dict[Role, str]
    principals: dict[Role, Principal]

    def as_role(self, role: Role) -> RoleClient:
        return self.api.as_role(role)

    @property
    def officer(self) -> Principal:
        return self.principals[P]


def _world(runtime: Runtime, role_tokens: dict[Role, str]) -> World:
    principals = {role: authenticate(runtime, token) for role, token in role_tokens.items()}
    return World(runtime, ApiClient(runtime, role_tokens), role_tokens, principals)


@pytest.fixture(scope="module")
def world(catalogue_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    runtime = build_runtime(catalogue_url, tmp_path_factory.mktemp("subjects"))
    made = _world(runtime, tokens(runtime))
    yield made
    made.api.close()
    close_runtime(runtime)


@pytest.fixture(scope="module", params=STORE_VARIANTS)
def store_world(
    request: pytest.FixtureRequest, world: World, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """The world's catalogue and users, with the filesystem store or the S3 server.

    In the ``-encrypted`` worlds every recording is stored under a data key of
    its own, as ingest stores it with ``encryption.enabled``.
    """
    if request.param == "filesystem":
        yield world
        return
    runtime = variant_runtime(
        world.runtime.settings.catalogue_url,
        tmp_path_factory.mktemp(f"subjects-{request.param}"),
        request.param,
    )
    made = _world(runtime, world.role_tokens)
    yield made
    made.api.close()
    close_runtime(runtime)


@pytest.fixture
def fresh_world(empty_catalogue_url: str, tmp_path: Path) -> Iterator[World]:
    """A privacy officer and a dispute handler on a catalogue of their own (for the nightly run)."""
    runtime = build_runtime(empty_catalogue_url, tmp_path / "data")
    role_tokens = {role: add_user(runtime, role.value, role, actor=ADMIN).token
                   for role in (P, D)}  # fmt: skip
    made = _world(runtime, role_tokens)
    yield made
    made.api.close()
    close_runtime(runtime)


def new_person(
    world: World,
    recordings: int = 2,
    *,
    second_number: str | None = None,
    reasons: Iterable[str] = ("billing",),
    retain_until: dt.datetime | None = None,
) -> Person:
    """A customer with a number, an identity code and ``recordings`` calls from that number."""
    customer_id, number, hetu = unique("C"), new_number(), new_hetu()
    phones = [national(number)] + ([second_number] if second_number else [])
    add_customer(world.runtime, customer_id, "Maija Meikäläinen", phones, identity_code=hetu)
    agent = unique("agent")
    base = utcnow().replace(microsecond=0) - dt.timedelta(days=30)
    made = [
        add_recording(
            world.runtime,
            started_at=base + dt.timedelta(hours=index),
            seconds=1,
            customer_id=customer_id,
            caller_number=national(number),
            called_number="+358 9 123 4567",
            reasons=list(reasons),
            agent=agent,
            queue="billing-q",
            retain_until=retain_until,
        )
        for index in range(recordings)
    ]
    return Person(customer_id, number, hetu, agent, made)


# --- helpers -----------------------------------------------------------------------------


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    if code is not None:
        assert error["code"] == code, error
    return dict(error)


def last_seq(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return int(session.scalar(select(func.max(AuditEvent.seq))) or 0)


def audit_since(runtime: Runtime, seq: int, action: str | None = None) -> list[AuditEvent]:
    statement = select(AuditEvent).where(AuditEvent.seq > seq).order_by(AuditEvent.seq)
    if action is not None:
        statement = statement.where(AuditEvent.action == action)
    with runtime.sessions() as session:
        return list(session.scalars(statement))


def counts(runtime: Runtime) -> dict[str, int]:
    with runtime.sessions() as session:
        return {
            model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (SubjectRequest, ProcessingRestriction, Recording, Tombstone, AuditEvent)
        }


def request_row(runtime: Runtime, request_id: str | uuid.UUID) -> SubjectRequest:
    with runtime.sessions() as session:
        return session.get_one(SubjectRequest, uuid.UUID(str(request_id)))


def recording_row(runtime: Runtime, recording_id: uuid.UUID) -> Recording | None:
    with runtime.sessions() as session:
        return session.get(Recording, recording_id)


def tombstone(runtime: Runtime, recording_id: uuid.UUID) -> Tombstone | None:
    with runtime.sessions() as session:
        return session.get(Tombstone, recording_id)


def audio(recording: Recording | uuid.UUID | str) -> str:
    rid = recording.id if isinstance(recording, Recording) else recording
    return f"{RECORDINGS}/{rid}/audio"


def trainer_finds(world: World, person: Person) -> set[str]:
    """Recordings of ``person`` a QA trainer finds (by the person's agent, searched both ways)."""
    trainer = world.as_role(Q)
    response = trainer.get(RECORDINGS, params={"agent": person.agent, "limit": 200})
    assert response.status_code == 200, response.text
    found = {item["id"] for item in response.json()["items"]}
    body = trainer.post(f"{RECORDINGS}/search", json={"agent": person.agent, "limit": 200})
    assert {item["id"] for item in body.json()["items"]} == found
    return found


def personal_leaks(*texts: str) -> list[str]:
    return sorted({value for value in PERSONAL for text in texts if value in text})


def register_and_log_text(runtime: Runtime) -> str:
    """Every audit entry, registered request and restriction, as one JSON text.

    A restriction on an unlinked caller keeps their number to match their calls,
    as the recordings do: that column is the catalogue's, and left out here.
    """
    with runtime.sessions() as session:
        entries = [entry_content(e) for e in session.scalars(select(AuditEvent))]
        requests = [request_dict(r) for r in session.scalars(select(SubjectRequest))]
        restrictions = [
            {
                c.name: getattr(r, c.name)
                for c in ProcessingRestriction.__table__.columns
                if c.name != "number"
            }
            for r in session.scalars(select(ProcessingRestriction))
        ]
    return json.dumps([entries, requests, restrictions], ensure_ascii=False, default=str)


# --- zip receipts ----------------------------------------------------------------------


@dataclasses.dataclass
class Receipt:
    names: list[str]
    manifest: dict[str, Any]
    files: dict[str, bytes]

    @property
    def recording_ids(self) -> set[str]:
        return {row["id"] for row in self.manifest["recordings"]}

    def row(self, recording_id: uuid.UUID | str) -> dict[str, Any]:
        return next(r for r in self.manifest["recordings"] if r["id"] == str(recording_id))


def read_receipt(data: bytes, scratch: Path) -> Receipt:
    """Open an export, check its checksums and that every recording plays (ffprobe)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        files = {name: archive.read(name) for name in names}
    assert set(names) >= RECEIPT_FILES, names
    manifest = json.loads(files["manifest.json"])
    sums = {}
    for line in files["SHA256SUMS"].decode().splitlines():
        digest, name = line.split("  ", 1)
        sums[name] = digest
    audio_names = [n for n in names if n.startswith("recordings/")]
    assert set(sums) == {*audio_names, "manifest.json", "LUE_MINUT.txt", "README.txt"}
    for name, digest in sums.items():
        assert hashlib.sha256(files[name]).hexdigest() == digest, name
    assert sorted(row["file"] for row in manifest["recordings"]) == sorted(audio_names)
    scratch.mkdir(parents=True, exist_ok=True)
    for row in manifest["recordings"]:
        assert row["sha256"] == sums[row["file"]]
        path = scratch / Path(row["file"]).name
        path.write_bytes(files[row["file"]])
        probed = ffprobe(path)
        assert probed["duration"] == pytest.approx(row["duration_s"], abs=0.1), row
    return Receipt(names, manifest, files)


def export_via_service(world: World, customer_id: str) -> dict[str, Any]:
    buffer = io.BytesIO()
    export_subject(world.runtime, world.officer, SubjectQuery(customer_id=customer_id), buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        return dict(json.loads(archive.read("manifest.json")))


# --- 1. finding the subject --------------------------------------------------------------


def test_find_by_customer_number_spelling_and_identity_code(world: World) -> None:
    privacy, dispute = world.as_role(P), world.as_role(D)
    second = new_number()
    person = new_person(world, 3, second_number=second)
    hold = dispute.post(
        "/api/v1/holds",
        json={"case_ref": "D-FIND", "reason": "billing dispute",
              "recording_ids": [str(person.recordings[0].id)]},
    )  # fmt: skip
    assert hold.status_code == 201, hold.text
    restricted = privacy.post(
        f"{SUBJECTS}/restrict",
        json={"subject": {"customer_id": person.customer_id}, "purpose": "dispute",
              "case_ref": "D-FIND"},
    )  # fmt: skip
    assert restricted.status_code == 200, restricted.text
    seq = last_seq(world.runtime)

    subject = {"customer_id": person.customer_id}
    spellings = [person.number, national(person.number), "00" + person.number[1:],
                 person.number[1:], national(second)]  # fmt: skip
    queries = [subject, *({"number": n} for n in spellings)]
    queries += [{"identity_code": person.hetu}, {"identity_code": person.hetu.lower()}]
    for query in queries:
        response = privacy.post(f"{SUBJECTS}/find", json=query)
        assert response.status_code == 200, (query, response.text)
        found = response.json()
        assert found["subject_ref"] == person.customer_id
        assert found["customer_id"] == person.customer_id
        assert found["name"] == "Maija Meikäläinen"
        # The directory keeps numbers only as keyed hashes: the numbers shown are those
        # the customer's calls came from (the second one finds them, but has no calls).
        assert found["numbers"] == [person.number]
        assert found["recordings"] == 3
        assert found["held"] == 1
        assert [(r["kind"], r["case_ref"], r["lifted_at"]) for r in found["restrictions"]] == [
            ("restriction", "D-FIND", None)
        ]
        assert [(r["kind"], r["status"]) for r in found["requests"]] == [
            ("restriction", "completed")
        ]
        assert found["requests"][0]["id"] == restricted.json()["request_id"]
    shows = audit_since(world.runtime, seq, "subject.show")
    assert len(shows) == len(queries)
    assert {e.details["subject_ref"] for e in shows} == {person.customer_id}
    assert {e.actor for e in shows} == {world.officer.user_name}
    # The service answers the same.
    overview = show_subject(world.runtime, world.officer, SubjectQuery(number=person.number))
    assert (overview.recordings, overview.held) == (3, 1)


def test_an_unlinked_caller_is_found_by_number(world: World) -> None:
    privacy = world.as_role(P)
    number = new_number()
    customer = new_person(world, 1)  # a customer's call from the same number is not theirs
    theirs = [add_recording(world.runtime, caller_number=national(number)) for _ in range(2)]
    add_recording(world.runtime, customer_id=customer.customer_id, caller_number=number)
    response = privacy.post(f"{SUBJECTS}/find", json={"number": "00" + number[1:]})
    assert response.status_code == 200, response.text
    found = response.json()
    assert found["customer_id"] is None
    assert found["subject_ref"].startswith("number:")
    assert len(found["subject_ref"]) == len("number:") + 64
    assert number[1:] not in found["subject_ref"]
    assert found["numbers"] == [number]
    assert found["recordings"] == 2
    # The same reference for every spelling, and their export holds their calls only.
    again = privacy.post(f"{SUBJECTS}/find", json={"number": national(number)}).json()
    assert again["subject_ref"] == found["subject_ref"]
    exported = privacy.post(f"{SUBJECTS}/export", json={"number": national(number)})
    assert exported.status_code == 200, exported.text
    with zipfile.ZipFile(io.BytesIO(exported.content)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert {r["id"] for r in manifest["recordings"]} == {str(r.id) for r in theirs}
    assert manifest["subject"] == {"customer_id": None, "name": None, "numbers": [number]}
    requests = privacy.get("/api/v1/subject-requests", params={"kind": "access"}).json()["items"]
    mine = [r for r in requests if r["subject_ref"] == found["subject_ref"]]
    assert [(r["customer_id"], r["status"]) for r in mine] == [(None, "completed")]


@pytest.mark.parametrize(
    "query",
    [
        {"customer_id": "C-NOBODY"},
        {"number": "+358 50 000 0001"},
        {"identity_code": "010101-0101"},  # valid, nobody's
    ],
    ids=["customer", "number", "identity-code"],
)
def test_an_unknown_subject_is_404_and_changes_nothing(world: World, query: dict[str, str]) -> None:
    privacy = world.as_role(P)
    PERSONAL.update({"+358500000001", "0500000001", "010101-0101"})
    before = counts(world.runtime)
    for path, body in [
        ("find", query),
        ("export", query),
        ("erase", query),
        ("restrict", {"subject": query, "purpose": "dispute", "case_ref": "D-1"}),
        ("object", {"subject": query}),
    ]:
        error = assert_error(privacy.post(f"{SUBJECTS}/{path}", json=body), 404, "not_found")
        assert personal_leaks(error["message"]) == []
    # Nothing registered, restricted, deleted or audited: the refusal left no trace.
    assert counts(world.runtime) == before


def test_a_bad_number_or_identity_code_is_422_without_echoing_it(world: World) -> None:
    privacy = world.as_role(P)
    PERSONAL.update({"131052-308X", "040 12"})
    for body in ({"number": "040 12"}, {"identity_code": "131052-308X"}, {}):
        error = assert_error(privacy.post(f"{SUBJECTS}/find", json=body), 422, "invalid_request")
        assert error["field"] == "subject"
        assert personal_leaks(json.dumps(error)) == []
    two = {"customer_id": "C-1", "number": "+358401234567"}
    assert_error(privacy.post(f"{SUBJECTS}/find", json=two), 422, "invalid_request")


def test_a_shared_number_or_identity_code_is_409_naming_the_candidates(world: World) -> None:
    privacy = world.as_role(P)
    first = new_person(world, 1)
    second_id = unique("C")
    add_customer(world.runtime, second_id, "Matti Meikäläinen", [first.number],
                 identity_code=first.hetu)  # fmt: skip
    candidates = sorted([first.customer_id, second_id])
    before = counts(world.runtime)
    for query in ({"number": national(first.number)}, {"identity_code": first.hetu}):
        for path, body in [
            ("find", query),
            ("export", query),
            ("erase", query),
            ("object", {"subject": query}),
        ]:
            error = assert_error(privacy.post(f"{SUBJECTS}/{path}", json=body), 409)
            assert error["code"] == "ambiguous_subject"
            assert error["candidates"] == candidates
            assert all(c in error["message"] for c in candidates)
            assert "exact customer" in error["message"]
            assert personal_leaks(json.dumps(error)) == []
    assert counts(world.runtime) == before
    # Named exactly, each is found.
    for customer_id, expected in ((first.customer_id, 1), (second_id, 0)):
        found = privacy.post(f"{SUBJECTS}/find", json={"customer_id": customer_id})
        assert found.status_code == 200, found.text
        assert found.json()["recordings"] == expected


def test_a_blank_field_next_to_a_real_one_is_ignored(world: World) -> None:
    person = new_person(world, 1)
    body = {"customer_id": " ", "number": national(person.number)}
    response = world.as_role(P).post(f"{SUBJECTS}/find", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["customer_id"] == person.customer_id


# --- 2. access and copy ---------------------------------------------------------------------


def test_export_through_the_api(store_world: World, tmp_path: Path) -> None:
    world = store_world
    runtime, privacy = world.runtime, world.as_role(P)
    person = new_person(world, 3, reasons=["billing", "moving"])
    held, played = person.recordings[0], person.recordings[1]
    place_hold(runtime, case_ref="D-EXPORT", reason="billing dispute",
               actor=staff("dispute_handler"), recording_ids=[held.id])  # fmt: skip
    response = world.as_role(D).get(audio(played), params={"purpose": "dispute", "case": "D-9"})
    assert response.status_code == 200, response.text
    assert world.as_role(Q).get(f"{RECORDINGS}/{played.id}").status_code == 200
    seq = last_seq(runtime)

    response = privacy.post(f"{SUBJECTS}/export", json={"customer_id": person.customer_id})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["cache-control"] == "private, no-store"
    receipt = read_receipt(response.content, tmp_path / "unzipped")

    manifest = receipt.manifest
    assert receipt.recording_ids == person.ids
    assert len([n for n in receipt.names if n.startswith("recordings/")]) == 3
    assert manifest["subject"] == {
        "customer_id": person.customer_id,
        "name": "Maija Meikäläinen",
        "numbers": [person.number],
    }
    for recording in person.recordings:
        row = receipt.row(recording.id)
        assert dt.datetime.fromisoformat(row["started_at"]) == recording.started_at
        assert row["started_at_local"].endswith(("+02:00", "+03:00"))
        assert (row["caller_number"], row["called_number"]) == (person.number, "+35891234567")
        assert row["reasons"] == ["billing", "moving"]
        assert row["retention"]["retain_until"] == recording.retain_until.isoformat()
        assert row["sha256"] == row["stored_sha256"] == recording.sha256
        assert row["customer_id"] == person.customer_id
    assert [h["case_ref"] for h in receipt.row(held.id)["holds"]] == ["D-EXPORT"]
    assert receipt.row(played.id)["holds"] == []
    accesses = [(a["action"], a["role"], a["purpose"], a["case_ref"])
                for a in receipt.row(played.id)["accesses"]]  # fmt: skip
    assert accesses == [("play", "dispute_handler", "dispute", "D-9"),
                        ("view", "qa_trainer", None, None)]  # fmt: skip
    assert receipt.row(held.id)["accesses"] == []
    text = json.dumps(manifest, ensure_ascii=False)
    assert person.agent not in text  # agents are other people
    fi, en = receipt.files["LUE_MINUT.txt"].decode(), receipt.files["README.txt"].decode()
    assert "Tallenteita: 3" in fi
    assert "365 päivää" in fi
    assert "Recordings: 3" in en
    assert "365 days" in en
    assert manifest["request_id"] in fi
    assert manifest["request_id"] in en

    request = request_row(runtime, manifest["request_id"])
    assert (request.kind, request.status) == (RequestKind.ACCESS, RequestStatus.COMPLETED)
    assert request.subject_ref == person.customer_id
    assert request.handled_by == world.officer.user_name
    assert request.outcome["recordings"] == 3
    exports = audit_since(runtime, seq, "export")
    assert sorted(str(e.recording_id) for e in exports) == sorted(person.ids)
    assert {(e.purpose, e.case_ref, e.actor) for e in exports} == {
        ("data_subject_request", manifest["request_id"], world.officer.user_name)
    }
    assert [e.details["request_id"] for e in audit_since(runtime, seq, "subject.access")] == [
        manifest["request_id"]
    ]


def _gsm_wav(scratch: Path) -> bytes:
    """A GSM 06.10 WAV ("wav49"): the only GSM WAV ffmpeg writes is the Microsoft variant."""
    path = scratch / "call.wav"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi",
         "-i", "sine=frequency=440:sample_rate=8000:duration=2",
         "-c:a", "libgsm_ms", "-ar", "8000", "-ac", "1", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    assert ffprobe(path)["codec"] == "gsm_ms"
    return path.read_bytes()


def test_export_transcodes_a_gsm_wav_to_playable_wav(world: World, tmp_path: Path) -> None:
    runtime = world.runtime
    person = new_person(world, 1)
    gsm = person.recordings[0]
    data = _gsm_wav(tmp_path)
    key = f"recordings/gsm/{gsm.id}.wav"
    info = runtime.store.put(key, io.BytesIO(data), content_type="audio/wav")
    with transaction(runtime.sessions) as session:
        row = session.get_one(Recording, gsm.id)
        row.object_key, row.codec, row.sha256 = key, "gsm_ms", info.sha256 or ""
        row.size_bytes, row.duration_ms = len(data), 2000
    pcm = add_recording(runtime, customer_id=person.customer_id, seconds=1)

    buffer = io.BytesIO()
    report = export_subject(
        runtime, world.officer, SubjectQuery(customer_id=person.customer_id), buffer
    )
    assert (report.recordings, report.transcoded) == (2, 1)
    receipt = read_receipt(buffer.getvalue(), tmp_path / "unzipped")
    converted = receipt.row(gsm.id)
    assert converted["file"].endswith(".wav")
    assert converted["stored_sha256"] == gsm_sha(data) != converted["sha256"]
    (tmp_path / "gsm.wav").write_bytes(receipt.files[converted["file"]])
    assert ffprobe(tmp_path / "gsm.wav")["codec"] == "pcm_s16le"
    assert receipt.row(pcm.id)["sha256"] == pcm.sha256  # stored as is


def test_the_copy_lists_every_restriction_that_show_lists(world: World) -> None:
    privacy = world.as_role(P)
    person = new_person(world, 2)
    on_recording = privacy.post(
        f"{SUBJECTS}/restrict",
        json={"recording_ids": [str(person.recordings[0].id)], "purpose": "dispute",
              "case_ref": "D-REC"},
    )  # fmt: skip
    assert on_recording.status_code == 200, on_recording.text
    number = new_number()
    add_recording(world.runtime, caller_number=number)
    unlinked = privacy.post(
        f"{SUBJECTS}/restrict",
        json={"subject": {"number": number}, "purpose": "dispute", "case_ref": "D-NUM"},
    )
    assert unlinked.status_code == 200, unlinked.text
    for subject, case in (
        ({"customer_id": person.customer_id}, "D-REC"),
        ({"number": number}, "D-NUM"),
    ):
        shown = privacy.post(f"{SUBJECTS}/find", json=subject).json()["restrictions"]
        assert [r["case_ref"] for r in shown] == [case]
        exported = privacy.post(f"{SUBJECTS}/export", json=subject)
        with zipfile.ZipFile(io.BytesIO(exported.content)) as archive:
            manifest = json.loads(archive.read("manifest.json"))
        assert [r["case_ref"] for r in manifest["restrictions"]] == [case]


def gsm_sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Unseekable:
    """A write-only stream, like a socket: the export must not need to seek."""

    def __init__(self, target: io.BufferedWriter) -> None:
        self.target = target

    def write(self, data: bytes) -> int:
        return self.target.write(data)

    def flush(self) -> None:
        self.target.flush()


def test_an_export_of_thousands_of_recordings_runs_in_bounded_memory(tmp_path: Path) -> None:
    """2,000 recordings of 128 KiB (250 MiB of audio): the peak stays a small fraction of it.

    SQLite only, to keep it quick. The objects are hard links to one file, which the
    filesystem store serves like any other. They are not 1 KiB: the manifest keeps a
    few KiB per recording in memory by design, which would dwarf 2 MiB of audio.
    """
    runtime = build_runtime(f"sqlite:///{tmp_path / 'bulk.db'}", tmp_path / "data")
    try:
        token = add_user(runtime, "bulk-officer", P, actor=ADMIN).token
        officer = authenticate(runtime, token)
        add_customer(runtime, "C-BULK", "Bulk Customer")
        count, size = 2000, 128 * 1024
        data = (wav_bytes(8.0) * 2)[:size]
        root = runtime.settings.storage_root
        source = root / "bulk" / "source.wav"
        source.parent.mkdir(parents=True)
        source.write_bytes(data)
        now = utcnow()
        rows = []
        for index in range(count):
            recording_id = uuid.uuid4()
            key = f"bulk/{recording_id}.wav"
            os.link(source, root / key)
            rows.append({
                "id": recording_id, "source": "bulk", "source_ref": str(recording_id),
                "started_at": now - dt.timedelta(minutes=index), "duration_ms": 8000,
                "customer_id": "C-BULK", "object_key": key, "format": "wav",
                "codec": "pcm_s16le", "channels": 1, "sample_rate": 8000, "size_bytes": size,
                "sha256": hashlib.sha256(data).hexdigest(),
                "retain_until": now + dt.timedelta(days=365),
            })  # fmt: skip
        with transaction(runtime.sessions) as session:
            session.execute(insert(Recording), rows)
        out = tmp_path / "bulk.zip"
        with out.open("wb") as target:
            tracemalloc.start()
            try:
                report = export_subject(
                    runtime, officer, SubjectQuery(customer_id="C-BULK"), _Unseekable(target)
                )
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
        total = count * size
        assert report.recordings == count
        assert report.bytes_written == total
        assert peak < total / 8, f"peak {peak / 2**20:.1f} MiB for {total / 2**20:.0f} MiB"
        with zipfile.ZipFile(out) as archive:
            names = archive.namelist()
            assert len([n for n in names if n.startswith("recordings/")]) == count
            assert archive.read(names[0]) == data
            manifest = json.loads(archive.read("manifest.json"))
        assert len(manifest["recordings"]) == count
    finally:
        close_runtime(runtime)


# --- 3. rectification -----------------------------------------------------------------------


def test_rectification_relinks_a_recording_and_keeps_the_old_link(world: World) -> None:
    runtime, privacy = world.runtime, world.as_role(P)
    wrong, right = new_person(world, 2), new_person(world, 1)
    moved = wrong.recordings[0]
    seq = last_seq(runtime)
    response = privacy.post(
        f"{RECORDINGS}/{moved.id}/customer",
        json={"customer_id": right.customer_id, "reason": "caller gave another customer's number"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"id": str(moved.id), "before": wrong.customer_id,
                               "after": right.customer_id, "candidates_before": [],
                               "changed": True}  # fmt: skip
    [relink] = audit_since(runtime, seq, "recording.relink")
    assert relink.recording_id == moved.id
    assert relink.details["before"] == wrong.customer_id
    assert relink.details["after"] == right.customer_id
    assert relink.actor == world.officer.user_name
    requests = privacy.get("/api/v1/subject-requests", params={"kind": "rectification"})
    [request] = [r for r in requests.json()["items"] if r["subject_ref"] == wrong.customer_id]
    assert request["status"] == "completed"
    assert request["outcome"] == {"recording_id": str(moved.id), "before": wrong.customer_id,
                                  "after": right.customer_id}  # fmt: skip
    assert request["note"] == "caller gave another customer's number"
    # Its data now goes to the right person only.
    assert {r["id"] for r in export_via_service(world, right.customer_id)["recordings"]} == {
        str(moved.id),
        str(right.recordings[0].id),
    }
    assert {r["id"] for r in export_via_service(world, wrong.customer_id)["recordings"]} == {
        str(wrong.recordings[1].id)
    }
    # The same again changes nothing and registers nothing.
    again = privacy.post(f"{RECORDINGS}/{moved.id}/customer",
                         json={"customer_id": right.customer_id, "reason": "again"})  # fmt: skip
    assert again.json()["changed"] is False
    assert len(audit_since(runtime, seq, "recording.relink")) == 1
    # Unknown customer, unknown recording, other roles.
    unknown = privacy.post(f"{RECORDINGS}/{moved.id}/customer",
                           json={"customer_id": "C-NOBODY", "reason": "x"})  # fmt: skip
    assert_error(unknown, 422, "invalid_request")
    missing = privacy.post(f"{RECORDINGS}/{uuid.uuid4()}/customer",
                           json={"customer_id": right.customer_id, "reason": "x"})  # fmt: skip
    assert_error(missing, 404, "not_found")
    for role in NOT_PRIVACY:
        refused = world.as_role(role).post(f"{RECORDINGS}/{moved.id}/customer",
                                           json={"customer_id": None, "reason": "x"})  # fmt: skip
        assert_error(refused, 403, "forbidden")
    assert recording_row(runtime, moved.id).customer_id == right.customer_id  # type: ignore[union-attr]


def test_reason_code_corrections_keep_before_and_after(world: World) -> None:
    runtime = world.runtime
    person = new_person(world, 1, reasons=["billing"])
    recording = person.recordings[0]
    seq = last_seq(runtime)
    response = world.as_role(P).post(
        f"{RECORDINGS}/{recording.id}/reasons", json={"set": ["moving"], "add": ["outage"]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["before"] == ["billing"]
    assert sorted(response.json()["after"]) == ["moving", "outage"]
    [entry] = audit_since(runtime, seq, "reasons.correct")
    assert entry.recording_id == recording.id
    assert entry.details["before"] == ["billing"]
    assert sorted(entry.details["after"]) == ["moving", "outage"]
    assert entry.actor == world.officer.user_name
    manifest = export_via_service(world, person.customer_id)
    assert sorted(manifest["recordings"][0]["reasons"]) == ["moving", "outage"]
    bad = world.as_role(P).post(f"{RECORDINGS}/{recording.id}/reasons", json={"add": ["nope"]})
    assert_error(bad, 422, "invalid_request")
    assert_error(
        world.as_role(Q).post(f"{RECORDINGS}/{recording.id}/reasons", json={"add": ["other"]}),
        403,
        "forbidden",
    )


# --- 4. erasure --------------------------------------------------------------------------


def assert_erased(
    world: World, recording: Recording, request_id: str, by: str, runtime: Runtime | None = None
) -> None:
    runtime = runtime or world.runtime
    assert recording_row(runtime, recording.id) is None
    assert not runtime.store.exists(recording.object_key)
    stone = tombstone(runtime, recording.id)
    assert stone is not None
    assert (stone.rule, stone.deleted_by, str(stone.request_id)) == ("erasure", by, request_id)
    assert stone.sha256 == recording.sha256
    gone = world.as_role(D).get(f"{RECORDINGS}/{recording.id}")
    assert_error(gone, 410, "gone")
    assert gone.json()["error"]["tombstone"]["rule"] == "erasure"


def test_erasure_without_holds_deletes_everything(store_world: World) -> None:
    world = store_world
    runtime = world.runtime
    person, bystander = new_person(world, 3), new_person(world, 1)
    response = world.as_role(P).post(
        f"{SUBJECTS}/erase", json={"identity_code": person.hetu, "note": "asked by phone"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "completed"
    assert sorted(body["erased"]) == sorted(person.ids)
    assert body["waiting"] == {}
    assert body["failed"] == {}
    assert body["message"] == "erased 3 recording(s)"
    for recording in person.recordings:
        assert_erased(world, recording, body["request_id"], world.officer.user_name)
    request = request_row(runtime, body["request_id"])
    assert (request.kind, request.status) == (RequestKind.ERASURE, RequestStatus.COMPLETED)
    assert request.completed_at is not None
    assert sorted(request.outcome["erased_ids"]) == sorted(person.ids)
    assert request.note == "asked by phone"
    assert request.subject_ref == person.customer_id
    # Someone else's recording is untouched; the subject's are gone from searches too.
    assert runtime.store.exists(bystander.recordings[0].object_key)
    assert recording_row(runtime, bystander.recordings[0].id) is not None
    found = world.as_role(P).post(f"{SUBJECTS}/find", json={"customer_id": person.customer_id})
    assert found.json()["recordings"] == 0


def test_erasure_waits_for_a_hold_and_finishes_when_it_is_released(store_world: World) -> None:
    world = store_world
    runtime, dispute, privacy = world.runtime, world.as_role(D), world.as_role(P)
    person = new_person(world, 3)
    held = person.recordings[0]
    placed = dispute.post(
        "/api/v1/holds",
        json={"case_ref": "D-ERASE", "reason": "billing dispute", "recording_ids": [str(held.id)]},
    )
    assert placed.status_code == 201, placed.text
    hold_id = placed.json()["id"]

    response = privacy.post(f"{SUBJECTS}/erase", json={"customer_id": person.customer_id})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "pending"
    assert sorted(body["erased"]) == sorted(person.ids - {str(held.id)})
    assert body["waiting"] == {str(held.id): [{"hold_id": hold_id, "case_ref": "D-ERASE"}]}
    assert "D-ERASE" in body["message"]
    assert "1 recording(s) wait" in body["message"]
    request = request_row(runtime, body["request_id"])
    assert request.status is RequestStatus.PENDING
    assert request.completed_at is None
    assert list(request.outcome["waiting_for"]) == [str(held.id)]
    # The held recording still serves its dispute.
    played = dispute.get(audio(held), params={"purpose": "dispute", "case": "D-ERASE"})
    assert played.status_code == 200
    assert played.content == wav_bytes(1.0)
    assert runtime.store.exists(held.object_key)

    released = dispute.post(f"/api/v1/holds/{hold_id}/release", json={"reason": "case closed"})
    assert released.status_code == 200, released.text
    assert_erased(world, held, body["request_id"], "system")
    request = request_row(runtime, body["request_id"])
    assert request.status is RequestStatus.COMPLETED
    assert request.completed_at is not None
    assert sorted(request.outcome["erased_ids"]) == sorted(person.ids)
    assert request.outcome["waiting"] == 0


def test_erasure_waits_for_a_customer_hold(world: World) -> None:
    runtime = world.runtime
    person = new_person(world, 2)
    summary = place_hold(runtime, case_ref="L-7", reason="legal claim",
                         actor=staff("privacy_officer"),
                         customer_id=person.customer_id)  # fmt: skip
    report = erase_subject(runtime, world.officer, SubjectQuery(number=person.number))
    assert report.status is RequestStatus.PENDING
    assert report.erased == []
    assert {str(k) for k in report.waiting} == person.ids
    assert {h["case_ref"] for hs in report.waiting.values() for h in hs} == {"L-7"}
    release_hold(runtime, summary.hold.id, actor=staff("privacy_officer"), reason="settled")
    request = request_row(runtime, report.request_id)
    assert request.status is RequestStatus.COMPLETED
    assert sorted(request.outcome["erased_ids"]) == sorted(person.ids)
    for recording in person.recordings:
        assert_erased(world, recording, str(report.request_id), "system")


def test_the_nightly_run_finishes_an_erasure_the_release_could_not(
    fresh_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = fresh_world
    runtime = world.runtime
    person = new_person(world, 2)
    held = person.recordings[1]
    summary = place_hold(runtime, case_ref="D-NIGHT", reason="dispute",
                         actor=staff("dispute_handler"), recording_ids=[held.id])  # fmt: skip
    report = erase_subject(runtime, world.officer, SubjectQuery(customer_id=person.customer_id))
    assert report.status is RequestStatus.PENDING

    store = runtime.store
    real_delete_many = store.delete_many

    def fail_once(keys: Iterable[str]) -> DeleteResult:
        monkeypatch.setattr(store, "delete_many", real_delete_many)
        return DeleteResult(deleted=(), failed={key: "simulated outage" for key in keys})

    monkeypatch.setattr(store, "delete_many", fail_once)
    released = world.as_role(D).post(
        f"/api/v1/holds/{summary.hold.id}/release", json={"reason": "closed"}
    )
    assert released.status_code == 200, released.text
    # The store refused: the recording stays, the request waits for the nightly run.
    row = recording_row(runtime, held.id)
    assert row is not None
    assert row.status is RecordingStatus.ACTIVE
    assert store.exists(held.object_key)
    request = request_row(runtime, report.request_id)
    assert request.status is RequestStatus.PENDING
    assert request.outcome["failures"] == {str(held.id): "simulated outage"}

    seq = last_seq(runtime)
    nightly = run_nightly_if_due(runtime)
    assert nightly is not None
    assert_erased(world, held, str(report.request_id), "system")
    request = request_row(runtime, report.request_id)
    assert request.status is RequestStatus.COMPLETED
    assert sorted(request.outcome["erased_ids"]) == sorted(person.ids)
    [run] = audit_since(runtime, seq, NIGHTLY_ACTION)
    assert run.details["erasures_resumed"] == 1
    assert resume_pending_erasures(runtime) == []  # nothing left to do
    assert verify_chain(runtime.sessions).intact


def test_a_store_outage_during_erasure_is_finished_by_the_nightly_run(
    fresh_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = fresh_world
    runtime = world.runtime
    person = new_person(world, 2)
    store = runtime.store

    def unreachable(keys: Iterable[str]) -> DeleteResult:
        raise StoreUnavailable("the object store cannot be reached")

    with monkeypatch.context() as patch:
        patch.setattr(store, "delete_many", unreachable)
        response = world.as_role(P).post(
            f"{SUBJECTS}/erase", json={"customer_id": person.customer_id}
        )
    assert response.status_code in (200, 503), response.text
    [request] = [
        r for r in world.as_role(P).get("/api/v1/subject-requests").json()["items"]
        if r["subject_ref"] == person.customer_id
    ]  # fmt: skip
    assert request["status"] == "pending"  # so that the nightly run takes it up
    assert run_nightly_if_due(runtime) is not None
    for recording in person.recordings:
        assert_erased(world, recording, request["id"], "system")
    assert request_row(runtime, request["id"]).status is RequestStatus.COMPLETED


def test_a_call_ingested_while_the_erasure_runs_is_erased_too(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = world.runtime
    person = new_person(world, 2)
    real_erase_ids = erasure_module._erase_ids
    arrived: list[Recording] = []

    def erase_then_ingest(*args: Any, **kwargs: Any) -> None:
        real_erase_ids(*args, **kwargs)
        if not arrived:
            arrived.append(add_recording(runtime, customer_id=person.customer_id, seconds=1))

    monkeypatch.setattr(erasure_module, "_erase_ids", erase_then_ingest)
    report = erase_subject(runtime, world.officer, SubjectQuery(customer_id=person.customer_id))
    assert report.status is RequestStatus.COMPLETED
    assert {str(i) for i in report.erased} == person.ids | {str(arrived[0].id)}
    for recording in [*person.recordings, *arrived]:
        assert_erased(world, recording, str(report.request_id), world.officer.user_name)
    assert not request_row(runtime, report.request_id).outcome["arrived_later"]

    # A call that arrives after the erasure returned is a new recording: it stays.
    later = add_recording(runtime, customer_id=person.customer_id, seconds=1)
    assert recording_row(runtime, later.id) is not None
    assert str(later.id) not in request_row(runtime, report.request_id).outcome["erased_ids"]


def test_calls_that_keep_arriving_are_reported_as_arrived_later(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = world.runtime
    person = new_person(world, 1)
    real_erase_ids = erasure_module._erase_ids
    arrived: list[Recording] = []

    def erase_then_ingest(*args: Any, **kwargs: Any) -> None:
        real_erase_ids(*args, **kwargs)
        arrived.append(add_recording(runtime, customer_id=person.customer_id, seconds=1))

    monkeypatch.setattr(erasure_module, "_erase_ids", erase_then_ingest)
    report = erase_subject(runtime, world.officer, SubjectQuery(customer_id=person.customer_id))
    # Five rounds look again; what came in during the last one is named, not erased.
    assert len(arrived) == 5
    assert {str(i) for i in report.erased} == person.ids | {str(r.id) for r in arrived[:-1]}
    row = request_row(runtime, report.request_id)
    assert row.outcome["arrived_later"] == [str(arrived[-1].id)]
    assert row.status is RequestStatus.PENDING  # not done until the late call is erased too
    assert "arrived while the erasure ran" in report.explain()
    assert recording_row(runtime, arrived[-1].id) is not None

    monkeypatch.undo()
    resume_pending_erasures(runtime)  # what the nightly run does
    assert recording_row(runtime, arrived[-1].id) is None
    row = request_row(runtime, report.request_id)
    assert row.status is RequestStatus.COMPLETED
    assert str(arrived[-1].id) in row.outcome["erased_ids"]


# --- 5. restriction ----------------------------------------------------------------------


def test_restriction_to_one_dispute_case(world: World) -> None:
    runtime, privacy, dispute, trainer = (
        world.runtime, world.as_role(P), world.as_role(D), world.as_role(Q)
    )  # fmt: skip
    person = new_person(world, 2)
    assert trainer_finds(world, person) == person.ids
    response = privacy.post(
        f"{SUBJECTS}/restrict",
        json={"subject": {"number": national(person.number)}, "purpose": "dispute",
              "case_ref": "D-X", "note": "contests the contract"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    [restriction] = response.json()["restrictions"]
    scope = (restriction["customer_id"], restriction["allowed_purpose"], restriction["case_ref"])
    assert scope == (person.customer_id, "dispute", "D-X")
    request = request_row(runtime, response.json()["request_id"])
    assert (request.kind, request.status) == (RequestKind.RESTRICTION, RequestStatus.COMPLETED)

    assert trainer_finds(world, person) == set()
    for recording in person.recordings:
        assert_error(trainer.get(f"{RECORDINGS}/{recording.id}"), 404, "not_found")
        assert_error(trainer.get(audio(recording), params={"purpose": "training"}), 404)
    seen = dispute.get(RECORDINGS, params={"customer_id": person.customer_id}).json()["items"]
    assert {(i["id"], i["restricted"]) for i in seen} == {(i, True) for i in person.ids}
    one = person.recordings[0]
    assert dispute.get(f"{RECORDINGS}/{one.id}").json()["restricted"] is True
    ok = dispute.get(audio(one), params={"purpose": "dispute", "case": "D-X"})
    assert ok.status_code == 200, ok.text
    assert_error(dispute.get(audio(one), params={"purpose": "dispute", "case": "D-Y"}), 403,
                 "restricted")  # fmt: skip
    assert_error(privacy.get(audio(one), params={"purpose": "data_subject_request", "case": "R"}),
                 403, "restricted")  # fmt: skip
    # A call that comes in later is covered too (the restriction is on the customer).
    later = add_recording(runtime, customer_id=person.customer_id, agent=person.agent)
    assert_error(trainer.get(f"{RECORDINGS}/{later.id}"), 404, "not_found")
    listed = privacy.get("/api/v1/restrictions").json()["items"]
    assert restriction["id"] in {r["id"] for r in listed}

    lifted = privacy.post(f"/api/v1/restrictions/{restriction['id']}/lift",
                          json={"reason": "dispute settled"})  # fmt: skip
    assert lifted.status_code == 200, lifted.text
    assert lifted.json()["lifted_at"] is not None
    assert trainer_finds(world, person) == person.ids | {str(later.id)}
    assert trainer.get(audio(one), params={"purpose": "training"}).status_code == 200
    assert dispute.get(audio(one), params={"purpose": "dispute", "case": "D-Y"}).status_code == 200
    again = privacy.post(f"/api/v1/restrictions/{restriction['id']}/lift",
                         json={"reason": "again"})  # fmt: skip
    assert "already lifted" in assert_error(again, 409, "conflict")["message"]
    assert_error(privacy.post(f"/api/v1/restrictions/{uuid.uuid4()}/lift", json={"reason": "x"}),
                 404, "not_found")  # fmt: skip
    listed = privacy.get("/api/v1/restrictions").json()["items"]
    assert restriction["id"] not in {r["id"] for r in listed}
    everything = privacy.get("/api/v1/restrictions", params={"include_lifted": "true"}).json()
    assert restriction["id"] in {r["id"] for r in everything["items"]}
    lifts = [e for e in audit_since(runtime, 0, "restriction.lift")
             if e.details["restriction_id"] == restriction["id"]]  # fmt: skip
    assert [e.details["reason"] for e in lifts] == ["dispute settled"]


def test_a_restriction_to_a_dispute_needs_its_case(world: World) -> None:
    person = new_person(world, 1)
    body = {"subject": {"customer_id": person.customer_id}, "purpose": "dispute"}
    before = counts(world.runtime)
    assert_error(world.as_role(P).post(f"{SUBJECTS}/restrict", json=body), 409, "conflict")
    assert counts(world.runtime) == before


# --- 6. objection ------------------------------------------------------------------------


def test_objection_excludes_training_at_once_but_not_disputes_or_expiry(world: World) -> None:
    runtime, privacy, dispute, trainer = (
        world.runtime, world.as_role(P), world.as_role(D), world.as_role(Q)
    )  # fmt: skip
    retain_until = utcnow().replace(microsecond=0) + dt.timedelta(hours=6)
    person = new_person(world, 2, retain_until=retain_until)
    assert trainer_finds(world, person) == person.ids
    response = privacy.post(f"{SUBJECTS}/object", json={"subject": {"identity_code": person.hetu}})
    assert response.status_code == 200, response.text
    [objection] = response.json()["restrictions"]
    assert objection["kind"] == "objection"
    assert objection["customer_id"] == person.customer_id
    request = request_row(runtime, response.json()["request_id"])
    assert (request.kind, request.status) == (RequestKind.OBJECTION, RequestStatus.COMPLETED)

    assert trainer_finds(world, person) == set()
    for recording in person.recordings:
        assert_error(trainer.get(f"{RECORDINGS}/{recording.id}"), 404, "not_found")
        assert_error(trainer.get(audio(recording), params={"purpose": "training"}), 404)
        played = dispute.get(audio(recording), params={"purpose": "dispute", "case": "D-5"})
        assert played.status_code == 200, played.text
        assert dispute.get(f"{RECORDINGS}/{recording.id}").json()["objected"] is True
    # A call ingested after the objection is excluded too.
    later = add_recording(runtime, customer_id=person.customer_id, agent=person.agent,
                          retain_until=retain_until)  # fmt: skip
    assert trainer_finds(world, person) == set()
    assert_error(trainer.get(audio(later), params={"purpose": "training"}), 404, "not_found")
    # They still expire on schedule.
    report = expire_recordings(runtime, now=retain_until + dt.timedelta(seconds=1))
    assert report.failed == 0
    for recording in [*person.recordings, later]:
        assert recording_row(runtime, recording.id) is None
        assert not runtime.store.exists(recording.object_key)
        stone = tombstone(runtime, recording.id)
        assert stone is not None
        assert stone.rule == "retention:default"


def test_an_objection_by_number_covers_an_unlinked_callers_later_calls(world: World) -> None:
    runtime, privacy, trainer = world.runtime, world.as_role(P), world.as_role(Q)
    number, agent = new_number(), f"agent-{uuid.uuid4().hex[:8]}"
    first = add_recording(runtime, caller_number=number, agent=agent)

    def trainer_sees() -> set[str]:
        found = trainer.get(RECORDINGS, params={"agent": agent}).json()["items"]
        return {item["id"] for item in found}

    assert trainer_sees() == {str(first.id)}
    response = privacy.post(f"{SUBJECTS}/object", json={"subject": {"number": national(number)}})
    assert response.status_code == 200, response.text
    [objection] = response.json()["restrictions"]
    assert (objection["customer_id"], objection["number"]) == (None, number)
    later = add_recording(runtime, caller_number=number, agent=agent)
    assert trainer_sees() == set()
    assert_error(trainer.get(audio(later), params={"purpose": "training"}), 404, "not_found")
    # Someone else's call with the same agent is not touched.
    other = add_recording(runtime, caller_number=new_number(), agent=agent)
    assert trainer_sees() == {str(other.id)}
    shown = privacy.post(f"{SUBJECTS}/find", json={"number": number}).json()
    assert [r["id"] for r in shown["restrictions"]] == [objection["id"]]
    lifted = privacy.post(
        f"/api/v1/restrictions/{objection['id']}/lift", json={"reason": "withdrawn"}
    )
    assert lifted.status_code == 200, lifted.text
    assert trainer_sees() == {str(first.id), str(later.id), str(other.id)}


def test_calls_from_a_shared_number_reach_every_right_of_each_customer(world: World) -> None:
    """A number two customers share: its calls are each candidate's, as the officer decides."""
    runtime, privacy, trainer = world.runtime, world.as_role(P), world.as_role(Q)
    number, agent = new_number(), unique("agent")
    first, second = unique("C"), unique("C")
    for customer in (first, second):
        add_customer(runtime, customer, "Kotitalous Yhteinen", [national(number)])
    shared = [
        add_recording(
            runtime,
            caller_number=number,
            agent=agent,
            customer_match=CustomerMatch.AMBIGUOUS,
            candidates=[first, second],
        )
        for _ in range(2)
    ]
    ids = sorted(str(r.id) for r in shared)

    def trainer_sees() -> set[str]:
        found = trainer.get(RECORDINGS, params={"agent": agent}).json()["items"]
        return {item["id"] for item in found}

    assert trainer_sees() == set(ids)
    # The number alone names nobody; by customer, the shared calls are listed as such.
    assert_error(privacy.post(f"{SUBJECTS}/find", json={"number": number}), 409)
    shown = privacy.post(f"{SUBJECTS}/find", json={"customer_id": first}).json()
    assert sorted(call["id"] for call in shown["shared_calls"]) == ids
    assert {tuple(call["other_candidates"]) for call in shown["shared_calls"]} == {(second,)}

    # One customer objects: the calls leave training at once, for everyone.
    objected = privacy.post(f"{SUBJECTS}/object", json={"subject": {"customer_id": second}})
    assert objected.status_code == 200, objected.text
    assert trainer_sees() == set()
    assert_error(trainer.get(audio(shared[0]), params={"purpose": "training"}), 404)

    # Export: nothing shared without a decision, and the request says what waits.
    plain = privacy.post(f"{SUBJECTS}/export", json={"customer_id": first})
    assert plain.status_code == 200, plain.text
    with zipfile.ZipFile(io.BytesIO(plain.content)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["recordings"] == []
    assert manifest["shared_number_calls"] == {"included": 0, "left_out": 0, "undecided": 2}
    decided = privacy.post(
        f"{SUBJECTS}/export",
        json={"customer_id": first, "include_shared": [ids[0]], "leave_out_shared": [ids[1]]},
    )
    with zipfile.ZipFile(io.BytesIO(decided.content)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert [row["id"] for row in manifest["recordings"]] == [ids[0]]
    assert manifest["recordings"][0]["shared_number"] is True
    request = request_row(runtime, manifest["request_id"])
    assert request.outcome["shared_included"] == [ids[0]]
    assert request.outcome["shared_left_out"] == [ids[1]]
    # A decision on a call that is not a shared call of this customer is refused.
    stranger = str(add_recording(runtime, caller_number=new_number()).id)
    refused = privacy.post(
        f"{SUBJECTS}/export", json={"customer_id": first, "include_shared": [stranger]}
    )
    assert_error(refused, 422, "invalid_request")

    # Erasure takes exactly the calls the officer includes; the others stay, listed.
    erased = privacy.post(
        f"{SUBJECTS}/erase", json={"customer_id": first, "include_shared": [ids[1]]}
    )
    assert erased.status_code == 200, erased.text
    body = erased.json()
    assert body["erased"] == [ids[1]]
    assert body["shared"]["shared_undecided"] == [ids[0]]
    assert "shares with others" in body["message"]
    assert recording_row(runtime, uuid.UUID(ids[1])) is None
    assert recording_row(runtime, uuid.UUID(ids[0])) is not None


# --- 7. the register, and who may use it ------------------------------------------------------


def test_every_request_is_registered_without_personal_data(world: World) -> None:
    runtime, privacy = world.runtime, world.as_role(P)
    person = new_person(world, 3)
    unlinked_number = new_number()
    add_recording(runtime, caller_number=unlinked_number)
    by_number = {"number": national(person.number)}
    assert privacy.post(f"{SUBJECTS}/export", json=by_number).status_code == 200
    assert privacy.post(f"{SUBJECTS}/export", json={"number": unlinked_number}).status_code == 200
    assert privacy.post(f"{SUBJECTS}/object", json={"subject": by_number}).status_code == 200
    restricted = privacy.post(
        f"{SUBJECTS}/restrict",
        json={"subject": {"identity_code": person.hetu}, "purpose": "dispute", "case_ref": "D-R"},
    )
    assert restricted.status_code == 200
    other = new_person(world, 1)
    relinked = privacy.post(
        f"{RECORDINGS}/{person.recordings[0].id}/customer",
        json={"customer_id": other.customer_id, "reason": "wrong match"},
    )
    assert relinked.status_code == 200  # fmt: skip
    assert privacy.post(f"{SUBJECTS}/erase", json={"identity_code": person.hetu}).status_code == 200
    unlinked_ref = privacy.post(f"{SUBJECTS}/find", json={"number": unlinked_number}).json()[
        "subject_ref"
    ]

    expected = {
        "access": {person.customer_id, unlinked_ref},
        "objection": {person.customer_id},
        "restriction": {person.customer_id},
        "rectification": {person.customer_id},
        "erasure": {person.customer_id},
    }
    everything = privacy.get("/api/v1/subject-requests").json()["items"]
    received = [r["received_at"] for r in everything]
    assert received == sorted(received, reverse=True)  # newest first
    for kind, refs in expected.items():
        response = privacy.get("/api/v1/subject-requests", params={"kind": kind})
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert {r["kind"] for r in items} == {kind}
        mine = [r for r in items if r["subject_ref"] in refs]
        assert {r["subject_ref"] for r in mine} == refs, kind
        for item in mine:
            assert item["handled_by"] == world.officer.user_name
            assert item["status"] == "completed"
            assert dt.datetime.fromisoformat(item["received_at"]) <= utcnow()
            assert dt.datetime.fromisoformat(item["completed_at"]) >= dt.datetime.fromisoformat(
                item["received_at"]
            )
            assert isinstance(item["outcome"], dict)
    assert unlinked_ref.startswith("number:")
    assert len(unlinked_ref) == 71
    pending = privacy.get("/api/v1/subject-requests", params={"status": "pending"}).json()
    assert all(r["status"] == "pending" for r in pending["items"])
    assert_error(privacy.get("/api/v1/subject-requests", params={"kind": "nope"}), 422)
    assert personal_leaks(json.dumps(everything, ensure_ascii=False)) == []


PRIVACY_ENDPOINTS = [
    ("POST", f"{SUBJECTS}/find", {"customer_id": "C-1"}),
    ("POST", f"{SUBJECTS}/export", {"customer_id": "C-1"}),
    ("POST", f"{SUBJECTS}/erase", {"customer_id": "C-1"}),
    ("POST", f"{SUBJECTS}/restrict", {"subject": {"customer_id": "C-1"}, "purpose": "dispute",
                                       "case_ref": "D-1"}),
    ("POST", f"{SUBJECTS}/object", {"subject": {"customer_id": "C-1"}}),
    ("GET", "/api/v1/restrictions", None),
    ("POST", f"/api/v1/restrictions/{uuid.UUID(int=1)}/lift", {"reason": "x"}),
    ("POST", f"{RECORDINGS}/{uuid.UUID(int=1)}/customer", {"customer_id": None, "reason": "x"}),
    ("GET", "/api/v1/subject-requests", None),
]  # fmt: skip


@pytest.mark.parametrize("role", NOT_PRIVACY, ids=[r.value for r in NOT_PRIVACY])
def test_only_privacy_officers_handle_subject_requests(world: World, role: Role) -> None:
    person = new_person(world, 1)
    before = counts(world.runtime)
    client = world.as_role(role)
    for method, url, body in PRIVACY_ENDPOINTS:
        body = json.loads(json.dumps(body).replace("C-1", person.customer_id)) if body else None
        response = client.request(method, url, json=body)
        error = assert_error(response, 403, "forbidden")
        assert "handle data-subject requests" in error["message"], (method, url)
    assert_error(world.api.anonymous().get("/api/v1/subject-requests"), 401, "unauthenticated")
    after = counts(world.runtime)
    refusals = after.pop("audit_events") - before.pop("audit_events")
    assert after == before  # nothing changed but the record of the refusals
    # Each refusal is on record, up to the rate limit per client and reason (the
    # module's other tests refused from the same client within the minute).
    assert 0 < refusals <= len(PRIVACY_ENDPOINTS) + 1
    with world.runtime.sessions() as session:
        actions = session.scalars(
            select(AuditEvent.action).order_by(AuditEvent.seq.desc()).limit(refusals)
        ).all()
    assert set(actions) <= {"access.refused", "auth.refused", "refusals.suppressed"}
    assert recording_row(world.runtime, person.recordings[0].id) is not None


# --- 8. nothing personal in the log, and the chain holds -----------------------------------


def test_no_number_or_identity_code_reaches_the_audit_log_register_or_logs(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    privacy = world.as_role(P)
    person = new_person(world, 2)
    errors: list[str] = []
    with caplog.at_level(logging.DEBUG):
        for query in (
            {"number": national(person.number)},
            {"identity_code": person.hetu},
            {"number": person.number[1:]},
            {"identity_code": person.hetu.lower()},
        ):
            assert privacy.post(f"{SUBJECTS}/find", json=query).status_code == 200
        wrong_check = person.hetu[:-1] + ("X" if person.hetu[-1] != "X" else "Y")
        PERSONAL.update({national(person.number)[:-3], wrong_check, "+358500000001"})
        for bad in (
            {"number": national(person.number)[:-3]},
            {"identity_code": wrong_check},
            {"number": "+358 50 000 0001"},
            {"identity_code": "010101-0101"},
        ):
            errors.append(privacy.post(f"{SUBJECTS}/find", json=bad).text)
        assert privacy.post(f"{SUBJECTS}/export", json={"identity_code": person.hetu}).is_success
        assert privacy.post(f"{SUBJECTS}/erase", json={"number": person.number}).is_success
    logged = json.dumps([{k: str(v) for k, v in r.__dict__.items()} for r in caplog.records])
    assert personal_leaks(*errors, logged, register_and_log_text(world.runtime)) == []
    assert len(PERSONAL) > 12
    report = verify_chain(world.runtime.sessions)
    assert report.intact, report
    assert report.entries > 20
