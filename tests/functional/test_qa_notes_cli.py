"""``recarchive qa note`` as a QA trainer runs it: add at a moment, list, delete; refusals.

One SQLite catalogue for the module; the command runs in-process (``run_cli``)
with the trainer's token in ``RECARCHIVE_USER_TOKEN``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest

from recarchive.access.models import Role
from recarchive.access.users import add_user
from recarchive.catalogue.restrictions import RestrictionKind
from recarchive.cli.qa_notes_cmd import clock, parse_moment
from recarchive.runtime import Runtime
from tests.actors import ADMIN
from tests.api_fixtures import (
    IDENTITY_HASH_KEY,
    TOKEN_PEPPER,
    build_runtime,
    close_runtime,
    tokens,
)
from tests.functional.helpers import Result, Runner, assert_one_line_error
from tests.qa_fixtures import add_call, exclude

TOKEN_ENV = "RECARCHIVE_USER_TOKEN"


@dataclasses.dataclass
class World:
    runtime: Runtime
    env: dict[str, str]
    role_tokens: dict[Role, str]
    second_trainer: str

    def as_role(self, role: Role) -> dict[str, str]:
        return {**self.env, TOKEN_ENV: self.role_tokens[role]}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("qa-notes-cli")
    url = f"sqlite:///{base / 'recarchive.db'}"
    runtime = build_runtime(url, base / "var")
    env = {
        "RECARCHIVE_CATALOGUE_URL": url,
        "RECARCHIVE_GENERAL_DATA_DIR": str(base / "var"),
        "RECARCHIVE_TOKEN_PEPPER": TOKEN_PEPPER,
        "RECARCHIVE_IDENTITY_HASH_KEY": IDENTITY_HASH_KEY,
    }
    second = add_user(runtime, "second-trainer", Role.QA_TRAINER, actor=ADMIN).token
    yield World(runtime, env, tokens(runtime), second)
    close_runtime(runtime)


def ok(result: Result) -> Result:
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result


def test_a_trainer_adds_lists_and_deletes_notes(world: World, run_cli: Runner) -> None:
    recording = str(add_call(world.runtime, agent="agent-1", seconds=120))
    trainer = world.as_role(Role.QA_TRAINER)
    note = ("qa", "note", "add", recording)
    added = ok(run_cli(*note, "--at", "1:23", "--text", "hold music too long", env=trainer))
    note_id = added.stdout.strip()
    assert "1:23" in added.stderr
    ok(run_cli(*note, "--at", "5", "--text", "greeting", "--shared", env=trainer))
    listed = ok(run_cli("qa", "note", "list", recording, env=trainer))
    rows = listed.stdout.splitlines()
    assert [row.split()[1] for row in rows] == ["0:05", "1:23"]
    assert rows[1].startswith(note_id)
    assert "2 note(s)" in listed.stderr
    as_json = ok(run_cli("qa", "note", "list", recording, "--json", env=trainer))
    notes = [json.loads(line) for line in as_json.stdout.splitlines()]
    shown = [(n["offset_ms"], n["visibility"]) for n in notes]
    assert shown == [(5000, "shared"), (83000, "private")]
    other = {**world.env, TOKEN_ENV: world.second_trainer}
    theirs = ok(run_cli("qa", "note", "list", recording, "--json", env=other))
    assert [json.loads(line)["text"] for line in theirs.stdout.splitlines()] == ["greeting"]
    assert_one_line_error(run_cli("qa", "note", "delete", note_id, env=other), "no note")
    deleted = ok(run_cli("qa", "note", "delete", note_id, env=trainer))
    assert deleted.stdout == ""
    left = ok(run_cli("qa", "note", "list", recording, "--json", env=trainer))
    assert len(left.stdout.splitlines()) == 1


def test_refusals_are_one_clear_line(world: World, run_cli: Runner) -> None:
    recording = str(add_call(world.runtime, agent="agent-2", seconds=60))
    trainer = world.as_role(Role.QA_TRAINER)
    past = run_cli("qa", "note", "add", recording, "--at", "1:01", "--text", "x", env=trainer)
    assert_one_line_error(past, "offset_ms", "60000 ms")
    bad = run_cli("qa", "note", "add", recording, "--at", "1:99", "--text", "x", env=trainer)
    assert bad.returncode == 2
    assert "--at" in bad.stderr
    handler = world.as_role(Role.DISPUTE_HANDLER)
    refused = run_cli("qa", "note", "list", recording, env=handler)
    assert_one_line_error(refused, "dispute_handler")
    objected = add_call(world.runtime, agent="agent-2", customer_id="C-OBJECTS", seconds=60)
    exclude(world.runtime, RestrictionKind.OBJECTION, customer_id="C-OBJECTS")
    hidden = run_cli("qa", "note", "add", str(objected), "--at", "0:01", "--text", "x", env=trainer)
    assert_one_line_error(hidden, f"no recording {objected}")


@pytest.mark.parametrize(
    ("text", "ms"),
    [("0", 0), ("83", 83_000), ("83.5", 83_500), ("1:23", 83_000), ("1:02:03.25", 3_723_250)],
)
def test_moments_are_read_as_a_trainer_writes_them(text: str, ms: int) -> None:
    assert parse_moment(text) == ms


@pytest.mark.parametrize("text", ["", "1:60", "1:60:00", "-1", "1:2:3:4", "٣", "1.2345", "a"])
def test_nonsense_moments_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a moment"):
        parse_moment(text)


def test_offsets_are_shown_as_clock_times() -> None:
    assert [clock(ms) for ms in (0, 83_999, 3_723_000)] == ["0:00", "1:23", "1:02:03"]
