"""``recarchive subject`` as a privacy officer runs it: the real command, a token, SQLite.

One catalogue and data directory for the module (:func:`world`), filled through
the services with real audio; each test makes its own customers, numbers and
identity codes, so tests do not depend on each other. The command is run as a
process (``run_cli``) with the token in ``RECARCHIVE_USER_TOKEN`` or a
``--token-file``, exactly as a user would.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import re
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from recarchive.access.audit import entry_content, verify_chain
from recarchive.access.models import AuditEvent, Role
from recarchive.access.services import Principal, authenticate
from recarchive.catalogue.database import utcnow
from recarchive.catalogue.models import CustomerMatch, Recording
from recarchive.catalogue.restrictions import ProcessingRestriction
from recarchive.privacy.export import export_subject
from recarchive.privacy.models import RequestKind, SubjectRequest
from recarchive.privacy.restrictions import object_to_training
from recarchive.privacy.subjects import SubjectQuery, find_subject, request_dict
from recarchive.privacy.visibility import restrictions_for
from recarchive.retention.holds import place_hold, release_hold
from recarchive.retention.models import Tombstone
from recarchive.runtime import Runtime
from tests.actors import staff
from tests.api_fixtures import (
    IDENTITY_HASH_KEY,
    PERSONAL,
    TOKEN_PEPPER,
    add_customer,
    add_recording,
    build_runtime,
    close_runtime,
    ffprobe,
    leaks,
    national,
    new_hetu,
    new_number,
    tokens,
)
from tests.functional.helpers import Result, Runner, assert_one_line_error, error_lines

Q, D, P, A, ADM = (
    Role.QA_TRAINER,
    Role.DISPUTE_HANDLER,
    Role.PRIVACY_OFFICER,
    Role.AUDITOR,
    Role.ADMIN,
)
FORBIDDEN = "may not handle data-subject requests"


@dataclasses.dataclass
class Person:
    customer_id: str
    number: str
    hetu: str
    recordings: list[Recording]

    @property
    def ids(self) -> set[str]:
        return {str(r.id) for r in self.recordings}


@dataclasses.dataclass
class World:
    runtime: Runtime
    env: dict[str, str]
    role_tokens: dict[Role, str]
    officer: Principal
    token_dir: Path

    def as_role(self, role: Role) -> dict[str, str]:
        """The environment of a member of staff in ``role`` (token in RECARCHIVE_USER_TOKEN)."""
        return {**self.env, "RECARCHIVE_USER_TOKEN": self.role_tokens[role]}

    def token_file(self, role: Role) -> str:
        path = self.token_dir / f"{role.value}.token"
        if not path.exists():
            path.write_text(self.role_tokens[role] + "\n", encoding="utf-8")
            path.chmod(0o600)
        return str(path)

    def person(self, recordings: int = 2) -> Person:
        customer_id = f"C-{uuid.uuid4().hex[:10]}"
        number, hetu = new_number(), new_hetu()
        add_customer(self.runtime, customer_id, "Maija Meikäläinen", [national(number)],
                     identity_code=hetu)  # fmt: skip
        base = utcnow().replace(microsecond=0) - dt.timedelta(days=10)
        made = [
            add_recording(
                self.runtime,
                started_at=base + dt.timedelta(hours=index),
                seconds=1,
                customer_id=customer_id,
                caller_number=national(number),
                reasons=["billing"],
                agent="agent-cli",
            )
            for index in range(recordings)
        ]
        return Person(customer_id, number, hetu, made)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("subject-cli")
    url = f"sqlite:///{base / 'recarchive.db'}"
    runtime = build_runtime(url, base / "var")
    role_tokens = tokens(runtime)
    env = {
        "RECARCHIVE_CATALOGUE_URL": url,
        "RECARCHIVE_GENERAL_DATA_DIR": str(base / "var"),
        "RECARCHIVE_TOKEN_PEPPER": TOKEN_PEPPER,
        "RECARCHIVE_IDENTITY_HASH_KEY": IDENTITY_HASH_KEY,
    }
    token_dir = base / "tokens"
    token_dir.mkdir()
    yield World(runtime, env, role_tokens, authenticate(runtime, role_tokens[P]), token_dir)
    close_runtime(runtime)


def ok(result: Result) -> Result:
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result


def counts(runtime: Runtime) -> dict[str, int]:
    with runtime.sessions() as session:
        return {
            model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (SubjectRequest, ProcessingRestriction, Recording, Tombstone, AuditEvent)
        }


def requests_json(run_cli: Runner, world: World, *options: str) -> list[dict[str, Any]]:
    result = ok(run_cli("subject", "requests", "--json", *options, env=world.as_role(P)))
    return [json.loads(line) for line in result.stdout.splitlines()]


def request_of(world: World, request_id: str) -> SubjectRequest:
    with world.runtime.sessions() as session:
        return session.get_one(SubjectRequest, uuid.UUID(request_id))


def manifest_ids(world: World, customer_id: str) -> set[str]:
    buffer = io.BytesIO()
    export_subject(world.runtime, world.officer, SubjectQuery(customer_id=customer_id), buffer)
    with zipfile.ZipFile(buffer) as archive:
        return {row["id"] for row in json.loads(archive.read("manifest.json"))["recordings"]}


# --- show ------------------------------------------------------------------------------------


def test_show_finds_the_subject_by_customer_number_and_identity_code(
    run_cli: Runner, world: World, tmp_path: Path
) -> None:
    person = world.person(3)
    place_hold(world.runtime, case_ref="D-SHOW", reason="dispute", actor=staff("dispute_handler"),
               recording_ids=[person.recordings[0].id])  # fmt: skip
    env = world.as_role(P)
    text = ok(run_cli("subject", "show", "--customer", person.customer_id, env=env)).stdout
    assert f"subject: customer {person.customer_id} (reference {person.customer_id})" in text
    assert "name: Maija Meikäläinen" in text
    assert f"numbers: {person.number}" in text
    assert "recordings: 3 (first " in text
    assert "1 under a hold" in text

    shown = [
        run_cli("subject", "show", "--json", "--number", "00" + person.number[1:],
                "--token-file", world.token_file(P), env=world.env),
        run_cli("subject", "show", "--json", "--identity-code", "-", env=env,
                stdin=person.hetu.lower() + "\n"),
    ]  # fmt: skip
    for result in shown:
        overview = json.loads(ok(result).stdout)
        assert overview["customer_id"] == person.customer_id
        assert (overview["recordings"], overview["held"]) == (3, 1)
        assert overview["numbers"] == [person.number]
        assert overview["restrictions"] == []
        assert overview["requests"] == []
        assert leaks(result.stderr) == []


def test_an_unknown_or_shared_subject_is_a_one_line_error(
    run_cli: Runner, world: World, tmp_path: Path
) -> None:
    env = world.as_role(P)
    first = world.person(1)
    second = f"C-{uuid.uuid4().hex[:10]}"
    add_customer(world.runtime, second, "Matti Meikäläinen", [first.number])
    PERSONAL.update({"+358500000002", "0500000002", "010101-0101"})
    before = counts(world.runtime)
    unknown = run_cli("subject", "show", "--customer", "C-NOBODY", env=env)
    assert_one_line_error(unknown, "no customer 'C-NOBODY' and no recordings linked to it")
    unknown = run_cli("subject", "erase", "--number", "+358 50 000 0002", "--yes", env=env)
    assert_one_line_error(unknown, "no customer has this number and no recording comes from it")
    assert leaks(unknown.stderr) == []
    out = tmp_path / "nobody.zip"
    unknown = run_cli("subject", "export", "--identity-code", "010101-0101", "-o", str(out),
                      env=env)  # fmt: skip
    assert_one_line_error(unknown, "no customer has this identity code")
    assert leaks(unknown.stderr) == []
    assert list(tmp_path.iterdir()) == []  # no zip, no temporary file
    shared = run_cli("subject", "show", "--number", national(first.number), env=env)
    candidates = ", ".join(sorted([first.customer_id, second]))
    assert_one_line_error(shared, f"the number matches 2 customers ({candidates})",
                          "give the exact customer id")  # fmt: skip
    assert leaks(shared.stderr) == []
    assert counts(world.runtime) == before  # nothing registered, changed or audited


# --- export ----------------------------------------------------------------------------------


def test_export_writes_a_zip_of_everything(run_cli: Runner, world: World, tmp_path: Path) -> None:
    person = world.person(2)
    env = world.as_role(P)
    out = tmp_path / "receipts" / "subject.zip"
    before = counts(world.runtime)
    missing = run_cli("subject", "export", "--identity-code", person.hetu, "-o", str(out),
                      env=env)  # fmt: skip
    assert_one_line_error(missing, f"{out.parent}: no such directory; create it first")
    assert not out.parent.exists()  # nothing created where nobody looks for it
    assert counts(world.runtime) == before  # refused before anything is registered or audited
    out.parent.mkdir(mode=0o700)
    result = ok(run_cli("subject", "export", "--identity-code", person.hetu, "-o", str(out),
                        env=env))  # fmt: skip
    match = re.fullmatch(
        rf"wrote {re.escape(str(out))}: 2 recording\(s\), [\d.]+ KiB; request ([0-9a-f-]{{36}})",
        result.stdout.strip(),
    )
    assert match, result.stdout
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
        sums = dict(
            reversed(line.split("  ", 1))
            for line in archive.read("SHA256SUMS").decode().splitlines()
        )
        assert {"manifest.json", "SHA256SUMS", "LUE_MINUT.txt", "README.txt"} <= names
        for name, digest in sums.items():
            assert hashlib.sha256(archive.read(name)).hexdigest() == digest, name
        archive.extractall(tmp_path / "unzipped")
    assert {row["id"] for row in manifest["recordings"]} == person.ids
    assert manifest["request_id"] == match.group(1)
    for row in manifest["recordings"]:
        assert row["file"] in sums
        assert ffprobe(tmp_path / "unzipped" / row["file"])["codec"] == "pcm_s16le"
        assert row["caller_number"] == person.number
        assert row["reasons"] == ["billing"]
    request = request_of(world, match.group(1))
    assert (request.kind.value, request.status.value) == ("access", "completed")
    assert request.subject_ref == person.customer_id
    assert request.outcome["recordings"] == 2
    with world.runtime.sessions() as session:
        exported = session.scalars(
            select(AuditEvent.recording_id).where(
                AuditEvent.action == "export", AuditEvent.case_ref == match.group(1)
            )
        )
        assert {str(i) for i in exported} == person.ids

    again = run_cli("subject", "export", "--customer", person.customer_id, "-o", str(out), env=env)
    assert_one_line_error(again, "exists; not overwriting it")
    assert sorted(p.name for p in out.parent.iterdir()) == ["subject.zip"]  # no temporary left


# --- rectification ---------------------------------------------------------------------------


def test_rectify_relinks_a_recording_to_the_right_customer(run_cli: Runner, world: World) -> None:
    wrong, right = world.person(2), world.person(1)
    moved = wrong.recordings[0]
    env = world.as_role(P)
    result = ok(run_cli("subject", "rectify", str(moved.id), "--customer", right.customer_id,
                        "--reason", "matched on a shared number", env=env))  # fmt: skip
    assert result.stdout.strip() == (
        f"recording {moved.id}: {wrong.customer_id} -> {right.customer_id}"
    )
    with world.runtime.sessions() as session:
        [entry] = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "recording.relink", AuditEvent.recording_id == moved.id
            )
        )
        [request] = [
            r for r in session.scalars(select(SubjectRequest).where(
                SubjectRequest.kind == RequestKind.RECTIFICATION))
            if r.outcome["recording_id"] == str(moved.id)
        ]  # fmt: skip
    assert entry.details == {"before": wrong.customer_id, "after": right.customer_id,
                             "reason": "matched on a shared number"}  # fmt: skip
    assert (request.subject_ref, request.status.value) == (wrong.customer_id, "completed")
    assert (request.outcome["before"], request.outcome["after"]) == (
        wrong.customer_id, right.customer_id
    )  # fmt: skip
    assert manifest_ids(world, right.customer_id) == right.ids | {str(moved.id)}
    assert manifest_ids(world, wrong.customer_id) == wrong.ids - {str(moved.id)}

    unknown = run_cli("subject", "rectify", str(moved.id), "--customer", "C-NOBODY",
                      "--reason", "x", env=env)  # fmt: skip
    assert_one_line_error(unknown, "no customer 'C-NOBODY' in the directory")


def test_rectify_settles_a_call_from_a_shared_number(run_cli: Runner, world: World) -> None:
    first, second = world.person(0), world.person(0)
    shared = add_recording(world.runtime, seconds=1, customer_match=CustomerMatch.AMBIGUOUS,
                           candidates=[first.customer_id, second.customer_id])  # fmt: skip
    ok(run_cli("subject", "restrict", "--customer", second.customer_id, "--purpose", "dispute",
               "--case", "D-8", env=world.as_role(P)))  # fmt: skip
    result = ok(run_cli("subject", "rectify", str(shared.id), "--customer", first.customer_id,
                        "--reason", "named the contract", env=world.as_role(P)))  # fmt: skip
    ids = ", ".join(sorted([first.customer_id, second.customer_id]))
    assert result.stdout.strip() == (
        f"recording {shared.id}: ambiguous ({ids}) -> {first.customer_id}"
    )
    with world.runtime.sessions() as session:
        recording = session.get_one(Recording, shared.id)
        assert (recording.customer_id, recording.candidates) == (first.customer_id, [])
        # The other candidate's restriction no longer reaches a call that is not theirs.
        assert restrictions_for(session, recording) == []
        [entry] = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "recording.relink", AuditEvent.recording_id == shared.id
            )
        )
    assert entry.details["candidates"] == sorted([first.customer_id, second.customer_id])
    assert manifest_ids(world, first.customer_id) == {str(shared.id)}
    again = ok(run_cli("subject", "rectify", str(shared.id), "--customer", first.customer_id,
                       "--reason", "twice", env=world.as_role(P)))  # fmt: skip
    assert again.stdout.strip() == f"recording {shared.id} is already linked to {first.customer_id}"


# --- erasure ---------------------------------------------------------------------------------


def test_erase_waits_for_a_hold_and_finishes_when_it_is_released(
    run_cli: Runner, world: World
) -> None:
    person = world.person(2)
    held, free = person.recordings
    hold = place_hold(world.runtime, case_ref="D-CLI", reason="billing dispute",
                      actor=staff("dispute_handler"), recording_ids=[held.id])  # fmt: skip
    env = world.as_role(P)
    asked = run_cli("subject", "erase", "--customer", person.customer_id, env=env)
    assert asked.returncode == 1
    assert "Aborted." in asked.stderr  # no one said yes
    assert world.runtime.store.exists(free.object_key)

    result = run_cli("subject", "erase", "--customer", person.customer_id, "--yes",
                     "--note", "asked in writing", env=env)  # fmt: skip
    assert result.returncode == 3, result.stderr  # done, but work remains
    assert "is pending: the rest waits" in error_lines(result)[-1]
    first, waiting = result.stdout.splitlines()
    match = re.fullmatch(r"request ([0-9a-f-]{36}): pending: erased 1 recording\(s\); "
                         r"1 recording\(s\) wait for the release of hold\(s\) on case\(s\) D-CLI; "
                         r"they are erased automatically when released", first)  # fmt: skip
    assert match, first
    request_id = match.group(1)
    assert waiting == f"  waiting {held.id}: held for D-CLI (hold {hold.hold.id})"
    assert not world.runtime.store.exists(free.object_key)
    assert world.runtime.store.exists(held.object_key)
    assert request_of(world, request_id).status.value == "pending"

    release_hold(world.runtime, hold.hold.id, actor=staff("dispute_handler"), reason="case closed")
    assert not world.runtime.store.exists(held.object_key)
    done = request_of(world, request_id)
    assert done.status.value == "completed"
    assert sorted(done.outcome["erased_ids"]) == sorted(person.ids)
    assert done.note == "asked in writing"
    with world.runtime.sessions() as session:
        stones = session.scalars(
            select(Tombstone).where(Tombstone.request_id == uuid.UUID(request_id))
        )
        assert {(s.recording_id, s.rule, s.deleted_by) for s in stones} == {
            (free.id, "erasure", world.officer.user_name),
            (held.id, "erasure", "system"),
        }


# --- restriction and objection ---------------------------------------------------------------


def test_restrict_list_lift_and_object(run_cli: Runner, world: World) -> None:
    person = world.person(2)
    env = world.as_role(P)
    placed = ok(run_cli("subject", "restrict", "--number", national(person.number),
                        "--purpose", "dispute", "--case", "D-7", env=env))  # fmt: skip
    line, recorded = placed.stdout.splitlines()
    match = re.fullmatch(
        rf"restriction ([0-9a-f-]{{36}}) on customer {person.customer_id}: only for dispute", line
    )
    assert match, line
    restriction_id = match.group(1)
    assert re.fullmatch(r"request [0-9a-f-]{36} recorded", recorded)
    listed = ok(run_cli("subject", "restrictions", env=env)).stdout.splitlines()
    [mine] = [r for r in map(json.loads, listed) if r["id"] == restriction_id]
    assert (mine["kind"], mine["customer_id"], mine["allowed_purpose"], mine["case_ref"]) == (
        "restriction", person.customer_id, "dispute", "D-7"
    )  # fmt: skip
    assert mine["lifted_at"] is None

    lifted = ok(run_cli("subject", "lift", restriction_id, "--reason", "settled", env=env))
    assert lifted.stdout.strip() == f"restriction {restriction_id} lifted"
    twice = run_cli("subject", "lift", restriction_id, "--reason", "settled", env=env)
    assert_one_line_error(twice, f"restriction {restriction_id} was already lifted at")

    objected = ok(run_cli("subject", "object", "--identity-code", person.hetu, env=env))
    line = objected.stdout.splitlines()[0]
    assert re.fullmatch(
        rf"objection [0-9a-f-]{{36}} on customer {person.customer_id}: excluded from training",
        line,
    ), line
    with world.runtime.sessions() as session:
        rows = list(session.scalars(
            select(ProcessingRestriction).where(
                ProcessingRestriction.customer_id == person.customer_id)
        ))  # fmt: skip
        kinds = set(session.scalars(
            select(SubjectRequest.kind).where(SubjectRequest.subject_ref == person.customer_id)
        ))  # fmt: skip
    assert {(r.kind.value, r.lifted_at is None) for r in rows} == {
        ("restriction", False), ("objection", True)
    }  # fmt: skip
    assert {k.value for k in kinds} == {"restriction", "objection"}


# --- the register, and who may use it ----------------------------------------------------------


def test_requests_lists_every_request_without_personal_data(run_cli: Runner, world: World) -> None:
    person = world.person(1)
    number = new_number()
    add_recording(world.runtime, caller_number=number)
    export_subject(world.runtime, world.officer, SubjectQuery(number=national(number)),
                   io.BytesIO())  # fmt: skip
    object_to_training(world.runtime, world.officer,
                       query=SubjectQuery(customer_id=person.customer_id))  # fmt: skip
    unlinked_ref = find_subject(world.runtime, SubjectQuery(number=number)).ref
    assert re.fullmatch(r"number:[0-9a-f]{64}", unlinked_ref)
    env = world.as_role(P)

    text = ok(run_cli("subject", "requests", env=env))
    rows = text.stdout.splitlines()
    assert error_lines(text) == [f"{len(rows)} request(s)"]
    row_re = re.compile(
        r"(?P<id>[0-9a-f-]{36})  \d{4}-\d\d-\d\d \d\d:\d\d  (?P<kind>\w+) +(?P<status>\w+) +"
        r"(?P<ref>\S+) +(?P<by>\S+)"
    )
    parsed = [row_re.fullmatch(row) for row in rows]
    assert all(parsed), rows
    by_ref = {m["ref"]: m for m in parsed if m}
    assert by_ref[person.customer_id]["kind"] == "objection"
    assert (by_ref[unlinked_ref[:24]]["kind"], by_ref[unlinked_ref[:24]]["status"]) == (
        "access", "completed"
    )  # fmt: skip
    assert {m["by"] for m in parsed if m} == {world.officer.user_name}

    listed = requests_json(run_cli, world)
    assert [r["id"] for r in listed] == [m["id"] for m in parsed if m]  # newest first, both ways
    assert [r["received_at"] for r in listed] == sorted(
        (r["received_at"] for r in listed), reverse=True
    )
    [access] = [r for r in listed if r["subject_ref"] == unlinked_ref]
    assert (access["kind"], access["customer_id"], access["status"]) == (
        "access", None, "completed"
    )  # fmt: skip
    assert access["handled_by"] == world.officer.user_name
    assert access["completed_at"] >= access["received_at"]
    [objection] = [r for r in listed if r["subject_ref"] == person.customer_id]
    assert (objection["kind"], objection["status"]) == ("objection", "completed")
    assert objection["outcome"] == {"scope": f"customer {person.customer_id}"}
    assert leaks(text.stdout, json.dumps(listed)) == []


def test_only_privacy_officers_may_use_subject_commands(
    run_cli: Runner, world: World, tmp_path: Path
) -> None:
    person = world.person(1)
    before = counts(world.runtime)
    refused = [
        (Q, ["requests"]),
        (D, ["requests", "--json"]),
        (A, ["restrictions"]),
        (ADM, ["erase", "--customer", person.customer_id, "--yes"]),
    ]
    for role, command in refused:
        result = run_cli("subject", *command, env=world.as_role(role))
        assert_one_line_error(result, f"role {role.value} {FORBIDDEN}")
    assert counts(world.runtime) == before
    missing = run_cli("subject", "requests", env=world.env)
    assert missing.returncode == 2
    assert "give your API token with --token-file FILE or RECARCHIVE_USER_TOKEN" in missing.stderr


def test_the_audit_log_and_register_hold_no_personal_data_and_the_chain_holds(
    run_cli: Runner, world: World
) -> None:
    person = world.person(1)
    env = world.as_role(P)
    erased = ok(run_cli("subject", "erase", "--number", national(person.number), "--yes", env=env))
    assert ": completed: erased 1 recording(s)" in erased.stdout
    with world.runtime.sessions() as session:
        entries = [entry_content(e) for e in session.scalars(select(AuditEvent))]
        requests = [request_dict(r) for r in session.scalars(select(SubjectRequest))]
    assert leaks(json.dumps([entries, requests], ensure_ascii=False, default=str)) == []
    assert {e["action"] for e in entries} >= {"subject.erasure", "subject.erasure.progress"}
    report = verify_chain(world.runtime.sessions)
    assert report.intact, report
