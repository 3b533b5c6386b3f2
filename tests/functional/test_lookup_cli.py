"""``recarchive lookup`` and ``recarchive get`` through the real command: roles, purposes, audit."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from recarchive.access.audit import verify_chain
from recarchive.access.models import AuditEvent, Role
from recarchive.catalogue.database import utcnow
from recarchive.catalogue.models import Recording
from recarchive.runtime import Runtime
from tests.api_fixtures import (
    IDENTITY_HASH_KEY,
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
from tests.functional.helpers import Runner, assert_one_line_error


@dataclasses.dataclass
class World:
    runtime: Runtime
    env: dict[str, str]
    role_tokens: dict[Role, str]
    number: str
    hetu: str
    recordings: list[Recording]

    def as_role(self, role: Role) -> dict[str, str]:
        return {**self.env, "RECARCHIVE_USER_TOKEN": self.role_tokens[role]}

    def events(self, action: str) -> list[AuditEvent]:
        with self.runtime.sessions() as session:
            return list(
                session.scalars(
                    select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
                )
            )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("lookup-cli")
    url = f"sqlite:///{base / 'recarchive.db'}"
    runtime = build_runtime(url, base / "var")
    number, hetu = new_number(), new_hetu()
    add_customer(runtime, "C-LOOK", "Liisa Lukija", [national(number)], identity_code=hetu)
    start = utcnow().replace(microsecond=0) - dt.timedelta(days=3)
    made = [
        add_recording(
            runtime,
            started_at=start + dt.timedelta(hours=hour),
            customer_id="C-LOOK",
            caller_number=national(number),
            agent="agent-look",
            queue="billing-q",
            reasons=["billing"] if hour % 2 == 0 else ["moving"],
        )
        for hour in range(3)
    ]
    env = {
        "RECARCHIVE_CATALOGUE_URL": url,
        "RECARCHIVE_GENERAL_DATA_DIR": str(base / "var"),
        "RECARCHIVE_TOKEN_PEPPER": TOKEN_PEPPER,
        "RECARCHIVE_IDENTITY_HASH_KEY": IDENTITY_HASH_KEY,
    }
    yield World(runtime, env, tokens(runtime), number, hetu, made)
    close_runtime(runtime)


def test_lookup_by_number_in_any_spelling_newest_first(run_cli: Runner, world: World) -> None:
    env = world.as_role(Role.DISPUTE_HANDLER)
    for spelling in (national(world.number), world.number, "00" + world.number[1:]):
        result = run_cli("lookup", "--number", spelling, "--json", env=env)
        assert result.returncode == 0, result.stderr
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        assert [row["id"] for row in rows] == [str(r.id) for r in reversed(world.recordings)]
        assert rows[0]["customer"]["customer_id"] == "C-LOOK"
        assert leaks(result.stderr) == []
    table = run_cli("lookup", "--customer", "C-LOOK", "--reason", "billing", env=env)
    assert table.returncode == 0, table.stderr
    assert len(table.stdout.splitlines()) == 2
    assert "C-LOOK" in table.stdout
    assert "billing" in table.stdout
    assert "2 recording(s)" in table.stderr
    searches = world.events("search")
    assert searches[-1].actor_role == "dispute_handler"
    assert searches[-1].client_addr is not None
    assert searches[-1].client_addr.startswith("shell:")
    assert leaks(json.dumps([e.details for e in searches])) == []


def test_lookup_by_identity_code_from_stdin(run_cli: Runner, world: World) -> None:
    env = world.as_role(Role.DISPUTE_HANDLER)
    result = run_cli("lookup", "--identity-code", "-", "--json", env=env, stdin=world.hetu + "\n")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 3


def test_a_qa_trainer_sees_no_identity_and_may_not_search_by_it(
    run_cli: Runner, world: World
) -> None:
    env = world.as_role(Role.QA_TRAINER)
    result = run_cli("lookup", "--agent", "agent-look", "--json", env=env)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 3
    assert all(row["customer"] is None for row in rows)
    assert world.number not in result.stdout
    refused = run_cli("lookup", "--number", world.number, env=env)
    assert_one_line_error(refused, "may not search by customer identity")
    assert leaks(refused.stderr) == []


def test_get_writes_the_stored_audio_and_audits_a_download(
    run_cli: Runner, world: World, tmp_path: Path
) -> None:
    recording = world.recordings[0]
    out = tmp_path / "call.wav"
    env = world.as_role(Role.DISPUTE_HANDLER)
    result = run_cli(
        "get", str(recording.id), "-o", str(out), "--purpose", "dispute", "--case", "D-9", env=env
    )
    assert result.returncode == 0, result.stderr
    assert hashlib.sha256(out.read_bytes()).hexdigest() == recording.sha256
    download = world.events("download")[-1]
    assert (download.recording_id, download.purpose, download.case_ref) == (
        recording.id,
        "dispute",
        "D-9",
    )
    again = run_cli(
        "get", str(recording.id), "-o", str(out), "--purpose", "dispute", "--case", "D-9", env=env
    )
    assert_one_line_error(again, "exists")

    opus = tmp_path / "call.ogg"
    transcoded = run_cli(
        "get", str(recording.id), "-o", str(opus), "--purpose", "dispute", "--case", "D-9",
        "--format", "opus", env=env,
    )  # fmt: skip
    assert transcoded.returncode == 0, transcoded.stderr
    assert ffprobe(opus)["codec"] == "opus"


@pytest.mark.parametrize(
    ("role", "purpose", "case", "message"),
    [
        (Role.QA_TRAINER, "training", None, "may not download"),
        (Role.DISPUTE_HANDLER, "dispute", None, "needs a case reference"),
        (Role.DISPUTE_HANDLER, "training", None, "may not access recordings for training"),
        (Role.AUDITOR, "dispute", "D-1", "may not download"),
    ],
)
def test_get_refuses_what_the_role_or_purpose_does_not_allow(
    run_cli: Runner,
    world: World,
    tmp_path: Path,
    role: Role,
    purpose: str,
    case: str | None,
    message: str,
) -> None:
    out = tmp_path / "refused.wav"
    args = ["get", str(world.recordings[1].id), "-o", str(out), "--purpose", purpose]
    if case:
        args += ["--case", case]
    result = run_cli(*args, env=world.as_role(role))
    assert_one_line_error(result, message)
    assert not out.exists()


def test_without_a_valid_token_nothing_is_shown(run_cli: Runner, world: World) -> None:
    missing = run_cli("lookup", env=world.env)
    assert missing.returncode != 0
    assert "RECARCHIVE_USER_TOKEN" in missing.stderr
    bad = run_cli("lookup", env={**world.env, "RECARCHIVE_USER_TOKEN": f"rca_{uuid.uuid4().hex}_x"})
    assert_one_line_error(bad, "invalid or expired token")
    assert verify_chain(world.runtime.sessions).intact


def test_holds_from_the_shell_are_a_person_s_with_their_token(
    run_cli: Runner, world: World
) -> None:
    recording = str(world.recordings[0].id)
    anonymous = run_cli("hold", "add", recording, "--case", "D-SHELL", "--reason", "x",
                        env=world.env)  # fmt: skip
    assert anonymous.returncode == 2
    assert "give your API token" in anonymous.stderr
    by_name = run_cli("hold", "add", recording, "--case", "D-SHELL", "--reason", "x",
                      "--by", "someone-else", env=world.as_role(Role.DISPUTE_HANDLER))  # fmt: skip
    assert by_name.returncode == 2  # no --by: nobody acts under another's name
    trainer = run_cli("hold", "add", recording, "--case", "D-SHELL", "--reason", "x",
                      env=world.as_role(Role.QA_TRAINER))  # fmt: skip
    assert_one_line_error(trainer, "role qa_trainer may not place holds")
    placed = run_cli("hold", "add", recording, "--case", "D-SHELL", "--reason", "billing dispute",
                     env=world.as_role(Role.DISPUTE_HANDLER))  # fmt: skip
    assert placed.returncode == 0, placed.stderr
    hold_id = placed.stdout.split()[1]
    [event] = [e for e in world.events("hold.place") if e.case_ref == "D-SHELL"]
    assert event.actor_role == "dispute_handler"
    assert event.actor != "someone-else"
    assert (event.client_addr or "").startswith("shell:")
    listed = run_cli("hold", "list", env=world.as_role(Role.DISPUTE_HANDLER))
    assert hold_id in listed.stdout
    assert run_cli("hold", "list", env=world.as_role(Role.QA_TRAINER)).returncode == 1
    released = run_cli("hold", "release", hold_id, env=world.as_role(Role.DISPUTE_HANDLER))
    assert released.returncode == 0, released.stderr


def test_a_retention_policy_change_from_the_shell_is_a_privacy_officers(
    run_cli: Runner, world: World
) -> None:
    assert run_cli("retention", "apply", env=world.env).returncode == 0  # a dry run: anyone
    anonymous = run_cli("retention", "apply", "--execute", env=world.env)
    assert anonymous.returncode == 2
    assert "give your API token" in anonymous.stderr
    handler = run_cli("retention", "apply", "--execute", env=world.as_role(Role.DISPUTE_HANDLER))
    assert_one_line_error(handler, "role dispute_handler may not apply a retention policy change")
    officer = run_cli("retention", "apply", "--execute", env=world.as_role(Role.PRIVACY_OFFICER))
    assert officer.returncode == 0, officer.stderr
    [event] = world.events("retention.apply")[-1:]
    assert event.actor_role == "privacy_officer"
