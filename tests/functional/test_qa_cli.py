"""``recarchive qa`` as a QA trainer runs it: plans, a sample run twice, its check, bad periods.

One SQLite catalogue for the module; the command runs in-process (``run_cli``)
with the trainer's token in ``RECARCHIVE_USER_TOKEN``.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import update

from recarchive.access.models import Role
from recarchive.catalogue.database import transaction
from recarchive.qa.models import SampleCall
from recarchive.runtime import Runtime
from tests.api_fixtures import (
    IDENTITY_HASH_KEY,
    TOKEN_PEPPER,
    build_runtime,
    close_runtime,
    tokens,
)
from tests.functional.helpers import Result, Runner, assert_one_line_error
from tests.qa_fixtures import add_call


@dataclasses.dataclass
class World:
    runtime: Runtime
    env: dict[str, str]
    role_tokens: dict[Role, str]

    def as_role(self, role: Role) -> dict[str, str]:
        return {**self.env, "RECARCHIVE_USER_TOKEN": self.role_tokens[role]}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("qa-cli")
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
    assert "Traceback" not in result.stderr
    return result


def _plan(world: World, run_cli: Runner, *options: str) -> str:
    name = f"weekly-{uuid.uuid4().hex[:6]}"
    trainer = world.as_role(Role.QA_TRAINER)
    ok(run_cli("qa", "plan", "add", name, *options, env=trainer))
    return name


def test_a_trainer_defines_runs_reruns_and_verifies_a_sample(world: World, run_cli: Runner) -> None:
    queue = f"q-{uuid.uuid4().hex[:6]}"
    for n in range(9):
        add_call(world.runtime, agent=f"agent-{n % 3}", queue=queue, reasons=["billing"])
    trainer = world.as_role(Role.QA_TRAINER)
    name = _plan(world, run_cli, "--calls", "2", "--per", "week", "--queue", queue,
                 "--reason", "billing", "--min-duration", "10")  # fmt: skip
    listed = ok(run_cli("qa", "plan", "list", env=trainer))
    assert any(line.split()[1] == name for line in listed.stdout.splitlines())
    shown = ok(run_cli("qa", "plan", "show", name, "--json", env=trainer))
    assert json.loads(shown.stdout)["criteria"]["queues"] == [queue]

    first = ok(run_cli("qa", "sample", "run", name, "2026-W40", "--json", env=trainer))
    again = ok(run_cli("qa", "sample", "run", name, "2026-W40", env=trainer))
    data = json.loads(first.stdout)
    assert data["already_drawn"] is False
    assert len(data["recordings"]) == 6
    assert sorted(line.split()[0] for line in again.stdout.splitlines()) == sorted(
        r["id"] for r in data["recordings"]
    )
    assert "the stored sample (drawn before)" in again.stderr
    assert f"seed {data['seed']}" in again.stderr

    shown_sample = ok(run_cli("qa", "sample", "show", data["id"], "--json", env=trainer))
    assert json.loads(shown_sample.stdout)["id"] == data["id"]
    verified = ok(run_cli("qa", "sample", "verify", data["id"], env=trainer))
    assert verified.stdout.splitlines() == [
        f"agent-{n}: 2 of 3 picked, draw gives 2: ok" for n in range(3)
    ]
    assert "verified" in verified.stderr

    # A pick moved behind the archive's back: verify says so and exits 1.
    with transaction(world.runtime.sessions) as session:
        session.execute(
            update(SampleCall)
            .where(SampleCall.sample_id == uuid.UUID(data["id"]), SampleCall.agent == "agent-0")
            .values(picked=True)
        )
    tampered = run_cli("qa", "sample", "verify", data["id"], env=trainer)
    assert tampered.returncode == 1
    assert "agent-0: 3 of 3 picked, draw gives 2: MISMATCH" in tampered.stdout
    assert "not the draw's" in tampered.stderr


def test_a_revision_shows_as_a_new_version(world: World, run_cli: Runner) -> None:
    name = _plan(world, run_cli, "--calls", "1", "--per", "week")
    trainer = world.as_role(Role.QA_TRAINER)
    revised = ok(run_cli("qa", "plan", "revise", name, "--calls", "3", "--per", "month",
                         "--json", env=trainer))  # fmt: skip
    data = json.loads(revised.stdout)
    assert data["version"] == 2
    assert [v["criteria"]["period_kind"] for v in data["versions"]] == ["week", "month"]


@pytest.mark.parametrize(
    ("period", "message"),
    [
        ("2026-W54", "2026 has ISO weeks 01 to 53"),
        ("2026-13", "months are 01 to 12"),
        ("garbage", "not a period"),
    ],
)
def test_a_bad_period_is_one_clear_line(
    world: World, run_cli: Runner, period: str, message: str
) -> None:
    name = _plan(world, run_cli, "--calls", "1", "--per", "week")
    result = run_cli("qa", "sample", "run", name, period, env=world.as_role(Role.QA_TRAINER))
    assert_one_line_error(result, message)


def test_an_unknown_plan_and_a_wrong_role_are_refused(world: World, run_cli: Runner) -> None:
    trainer = world.as_role(Role.QA_TRAINER)
    assert_one_line_error(
        run_cli("qa", "sample", "run", "no-such-plan", "2026-W40", env=trainer),
        "no sampling plan named",
    )
    refused = run_cli("qa", "plan", "list", env=world.as_role(Role.DISPUTE_HANDLER))
    assert_one_line_error(refused, "may not manage QA sampling plans")
