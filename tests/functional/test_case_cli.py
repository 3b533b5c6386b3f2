"""``recarchive case`` as a dispute handler runs it: the real command, a token, SQLite.

One catalogue for the module, filled through the services with real audio;
each test opens cases with references of its own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from sqlalchemy import select

from recarchive.access.models import AuditEvent, Role
from recarchive.catalogue.services import CLASS_TAG
from recarchive.disputes.keys import create_evidence_key, evidence_key_path
from recarchive.runtime import Runtime
from tests.api_fixtures import (
    IDENTITY_HASH_KEY,
    TOKEN_PEPPER,
    add_customer,
    add_recording,
    build_runtime,
    close_runtime,
    tokens,
)
from tests.functional.helpers import Result, Runner, assert_one_line_error

D, P, Q = Role.DISPUTE_HANDLER, Role.PRIVACY_OFFICER, Role.QA_TRAINER


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Runtime, dict[str, str], dict[Role, str]]]:
    base = tmp_path_factory.mktemp("case-cli")
    url = f"sqlite:///{base / 'recarchive.db'}"
    runtime = build_runtime(url, base / "var")
    role_tokens = tokens(runtime)
    add_customer(runtime, "C-CLI-CASE", "Cli Case Customer")
    env = {
        "RECARCHIVE_CATALOGUE_URL": url,
        "RECARCHIVE_GENERAL_DATA_DIR": str(base / "var"),
        "RECARCHIVE_TOKEN_PEPPER": TOKEN_PEPPER,
        "RECARCHIVE_IDENTITY_HASH_KEY": IDENTITY_HASH_KEY,
    }
    yield runtime, env, role_tokens
    close_runtime(runtime)


def as_role(
    world: tuple[Runtime, dict[str, str], dict[Role, str]], role: Role
) -> Mapping[str, str]:
    _runtime, env, role_tokens = world
    return {**env, "RECARCHIVE_USER_TOKEN": role_tokens[role]}


def ok(result: Result) -> Result:
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result


def test_a_case_from_the_shell(
    run_cli: Runner, world: tuple[Runtime, dict[str, str], dict[Role, str]]
) -> None:
    runtime = world[0]
    handler, officer = as_role(world, D), as_role(world, P)
    agent = f"cli-{uuid.uuid4().hex[:6]}"
    first, second = add_recording(runtime, agent=agent), add_recording(runtime, agent=agent)
    other = add_recording(runtime)
    reference = f"CLI-{uuid.uuid4().hex[:6]}"
    opened = ok(run_cli("case", "open", reference, "--kind", "billing", "--customer",
                        "C-CLI-CASE", "--document", "INV-9", env=handler))  # fmt: skip
    assert f"case {reference}: opened" in opened.stdout
    ok(run_cli("case", "link", reference, "--search", "--agent", agent, env=handler))
    ok(run_cli("case", "link", reference, str(other.id), env=officer))
    assert (
        runtime.store.get_tags(other.object_key)[CLASS_TAG] == runtime.settings.retention.held_class
    )
    ok(run_cli("case", "unlink", reference, str(other.id), env=handler))
    assert runtime.store.get_tags(other.object_key)[CLASS_TAG] == "standard"
    ok(run_cli("case", "note", reference, "Customer called back.", env=handler))
    ok(run_cli("case", "assign", reference, "privacy_officer", env=handler))
    shown = json.loads(ok(run_cli("case", "show", reference, "--json", env=officer)).stdout)
    assert {r["id"] for r in shown["recordings"]} == {str(first.id), str(second.id)}
    assert shown["handler"] == "privacy_officer"
    assert [n["text"] for n in shown["notes"]] == ["Customer called back."]
    text = ok(run_cli("case", "show", reference, env=officer)).stdout
    assert f"case {reference} (billing, open)" in text
    assert str(first.id) in text
    listed = ok(run_cli("case", "list", "--json", env=handler))
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["recordings"] for r in rows if r["reference"] == reference] == [2]
    plain = ok(run_cli("case", "list", env=handler))
    assert reference in plain.stdout
    assert "case(s)" in plain.stderr
    assert "case(s)" not in plain.stdout
    hold_id = shown["hold"]["id"]
    refused = run_cli("hold", "release", hold_id, "--reason", "tidy", env=officer)
    assert_one_line_error(refused, f"belongs to dispute case {reference}", "close the case")
    holds = ok(run_cli("hold", "list", env=officer)).stdout.splitlines()
    (line,) = [h for h in holds if h.startswith(hold_id)]
    assert f"{reference}" in line
    assert "dispute case's recordings (2)" in line
    closed = ok(run_cli("case", "close", reference, "--reason", "credited", env=officer))
    assert "closed; record kept until" in closed.stdout
    again = run_cli("case", "close", reference, "--reason", "again", env=officer)
    assert_one_line_error(again, f"case {reference} was closed")
    late = run_cli("case", "link", reference, str(other.id), env=handler)
    assert_one_line_error(late, "no longer changes")
    with runtime.sessions() as session:
        done = list(
            session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.case_ref == reference)
                .order_by(AuditEvent.seq)
            )
        )
    assert done[0] == "case.open"
    for action in ("case.link", "case.unlink", "case.note", "case.assign", "case.view"):
        assert action in done
    assert done[-2:] == ["hold.release", "case.close"]


def test_bad_input_is_one_line_and_changes_nothing(
    run_cli: Runner, world: tuple[Runtime, dict[str, str], dict[Role, str]]
) -> None:
    handler = as_role(world, D)
    unknown = run_cli("case", "open", "CLI-X", "--kind", "billing", "--customer", "C-NOPE",
                      env=handler)  # fmt: skip
    assert_one_line_error(unknown, "customer_id: no customer has that id")
    assert "C-NOPE" not in unknown.stderr
    control = run_cli("case", "open", "CLI\x1bX", "--kind", "billing", env=handler)
    assert_one_line_error(control, "reference: control characters")
    missing = run_cli("case", "show", "NO-SUCH-CASE", env=handler)
    assert_one_line_error(missing, "no dispute case NO-SUCH-CASE")
    both = run_cli("case", "link", "CLI-X", str(uuid.uuid4()), "--search", env=handler)
    assert both.returncode == 2
    reference = f"CLI-{uuid.uuid4().hex[:6]}"
    ok(run_cli("case", "open", reference, "--kind", "other", env=handler))
    taken = run_cli("case", "open", reference, "--kind", "other", env=handler)
    assert_one_line_error(taken, f"reference {reference} is taken")
    trainer = run_cli("case", "list", env=as_role(world, Q))
    assert_one_line_error(trainer, "role qa_trainer may not see dispute cases")


def test_help_lists_the_case_commands(run_cli: Runner, tmp_path: Path) -> None:
    result = ok(run_cli("case", "--help"))
    for name in ("open", "list", "show", "link", "unlink", "note", "assign", "close"):
        assert name in result.stdout


def test_a_case_exported_from_the_shell_verifies_without_configuration(
    run_cli: Runner, world: tuple[Runtime, dict[str, str], dict[Role, str]], tmp_path: Path
) -> None:
    runtime = world[0]
    handler = as_role(world, D)
    create_evidence_key(evidence_key_path(runtime.settings))
    runtime.anchors.sink.create()
    recording = add_recording(runtime)
    reference = f"CLI-EXP-{uuid.uuid4().hex[:6]}"
    ok(run_cli("case", "open", reference, "--kind", "contract", env=handler))
    ok(run_cli("case", "link", reference, str(recording.id), env=handler))
    package = tmp_path / "evidence.zip"

    exported = ok(run_cli("case", "export", reference, "-o", str(package), "--json", env=handler))

    facts = json.loads(exported.stdout)
    assert (facts["case"], facts["recordings"], facts["timestamped_at"]) == (reference, 1, None)
    assert "no timestamp (no TSA configured)" in exported.stderr
    checked = run_cli("evidence", "verify", str(package), env={})
    assert checked.returncode == 0, (checked.stdout, checked.stderr)
    again = run_cli("case", "export", reference, "-o", str(package), env=handler)
    assert again.returncode == 2
    assert "never overwritten" in again.stderr
    shown = json.loads(ok(run_cli("case", "show", reference, "--json", env=handler)).stdout)
    assert [e["manifest_sha256"] for e in shown["exports"]] == [facts["manifest_sha256"]]
    refused = run_cli("case", "export", reference, "-o", str(tmp_path / "qa.zip"),
                      env=as_role(world, Q))  # fmt: skip
    assert_one_line_error(refused, "may not export evidence packages")
    assert not (tmp_path / "qa.zip").exists()
