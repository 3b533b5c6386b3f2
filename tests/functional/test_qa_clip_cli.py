"""``recarchive qa clip`` as a QA trainer runs it: cut (times as m:ss), list, keep, delete.

One SQLite catalogue for the module; the command runs in-process (``run_cli``)
with the trainer's token in ``RECARCHIVE_USER_TOKEN``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from recarchive.access.models import Role
from recarchive.cli.qa_clip_cmd import parse_offset
from recarchive.qa.models import Clip
from tests.api_fixtures import (
    IDENTITY_HASH_KEY,
    TOKEN_PEPPER,
    add_recording,
    build_runtime,
    close_runtime,
    tokens,
)
from tests.functional.helpers import Result, Runner, assert_one_line_error
from tests.functional.test_qa_cli import World
from tests.integration.test_qa_clips import SECONDS, two_voices


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("qa-clip-cli")
    url = f"sqlite:///{base / 'recarchive.db'}"
    runtime = build_runtime(url, base / "var")
    env = {
        "RECARCHIVE_CATALOGUE_URL": url,
        "RECARCHIVE_GENERAL_DATA_DIR": str(base / "var"),
        "RECARCHIVE_TOKEN_PEPPER": TOKEN_PEPPER,
        "RECARCHIVE_IDENTITY_HASH_KEY": IDENTITY_HASH_KEY,
    }
    yield World(runtime, env, tokens(runtime))
    close_runtime(runtime)


def ok(result: Result) -> Result:
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result


def test_times_in_the_call() -> None:
    assert parse_offset("1:02", "--start") == 62_000
    assert parse_offset("1:02.5", "--start") == 62_500
    assert parse_offset("0:01:02", "--start") == 62_000
    assert parse_offset("62", "--start") == 62_000


def test_a_trainer_cuts_lists_keeps_and_deletes(world: World, run_cli: Runner) -> None:
    recording = add_recording(
        world.runtime, seconds=SECONDS, channels=2, audio=two_voices(), split_legs=True
    )
    trainer = world.as_role(Role.QA_TRAINER)
    cut = ["qa", "clip", "add", str(recording.id), "--start", "0:01", "--end", "0:03.5",
           "--title", "Opening", "--purpose", "greeting"]  # fmt: skip
    mixed = json.loads(ok(run_cli(*cut, "--json", env=trainer)).stdout)
    agent_only = json.loads(ok(run_cli(*cut, "--agent-only", "--json", env=trainer)).stdout)
    assert (mixed["start_ms"], mixed["end_ms"], agent_only["agent_only"]) == (1000, 3500, True)
    listed = ok(run_cli("qa", "clip", "list", env=trainer))
    assert {mixed["id"], agent_only["id"]} <= {
        line.split()[0] for line in listed.stdout.splitlines()
    }
    assert "2 clip(s)" in listed.stderr
    keep = ["--until", "2031-06-30", "--reason", "a model opening"]
    refused = run_cli("qa", "clip", "keep", mixed["id"], *keep, env=trainer)
    assert_one_line_error(refused, "customer's voice")
    kept = json.loads(ok(run_cli("qa", "clip", "keep", agent_only["id"], *keep, "--json",
                                 env=trainer)).stdout)  # fmt: skip
    assert kept["kept_until"].startswith("2031-06-30T")
    deleted = ok(run_cli("qa", "clip", "delete", mixed["id"], env=trainer))
    assert deleted.stdout == ""
    with world.runtime.sessions() as session:
        assert session.get(Clip, uuid.UUID(mixed["id"])) is None
    refused = run_cli("qa", "clip", "list", env=world.as_role(Role.DISPUTE_HANDLER))
    assert refused.returncode != 0
