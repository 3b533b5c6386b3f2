"""``recarchive qa form|evaluate|evaluation`` as a QA trainer runs them, with the example form.

One SQLite catalogue for the module; the command runs in-process (``run_cli``)
with the trainer's token in ``RECARCHIVE_USER_TOKEN``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from recarchive.access.models import Role
from tests.functional.helpers import Result, Runner, assert_one_line_error
from tests.functional.test_qa_cli import World
from tests.functional.test_qa_cli import world as world  # the module's catalogue and tokens
from tests.qa_fixtures import add_call

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "qa-form.json"
ANSWERS = {
    "greeting": "yes",
    "identity": "yes",
    "understood": 4,
    "accurate": "yes",
    "hold": "na",
    "summary": "no",
}


def ok(result: Result) -> Result:
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result


@pytest.fixture
def form_file(tmp_path: Path) -> Iterator[Path]:
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["name"] = f"service-{uuid.uuid4().hex[:6]}"
    path = tmp_path / "form.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _answers(tmp_path: Path, answers: object, name: str = "answers.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(answers), encoding="utf-8")
    return str(path)


def test_a_trainer_adds_a_form_scores_a_call_and_changes_the_score(
    world: World, run_cli: Runner, form_file: Path, tmp_path: Path
) -> None:
    trainer = world.as_role(Role.QA_TRAINER)
    name = json.loads(form_file.read_text())["name"]
    added = json.loads(
        ok(run_cli("qa", "form", "add", str(form_file), "--json", env=trainer)).stdout
    )
    assert (added["name"], added["version"]) == (name, 1)
    listed = ok(run_cli("qa", "form", "list", env=trainer))
    assert any(line.split()[1] == name for line in listed.stdout.splitlines())
    assert "form(s)" in listed.stderr
    shown = ok(run_cli("qa", "form", "show", name, env=trainer))
    assert "3 section(s), 7 question(s)" in shown.stdout

    call = add_call(world.runtime, agent="agent-cli")
    made = ok(run_cli("qa", "evaluate", str(call), "--form", name, "--answers",
                      _answers(tmp_path, ANSWERS), "--json", env=trainer))  # fmt: skip
    data = json.loads(made.stdout)
    assert (data["score"], data["status"], data["agent"]) == (82.5, "draft", "agent-cli")
    assert data["sections"] == {"opening": 100.0, "handling": 87.5, "closing": 0.0}

    revised = ok(run_cli("qa", "evaluation", "revise", data["id"], "--answers",
                         _answers(tmp_path, {**ANSWERS, "identity": "no"}), "--submit",
                         env=trainer))  # fmt: skip
    assert revised.stdout.splitlines()[0].endswith("submitted  score 0.00  (version 2)")
    assert "critical failed: identity" in revised.stdout
    shown_eval = ok(run_cli("qa", "evaluation", "show", data["id"], "--json", env=trainer))
    versions = json.loads(shown_eval.stdout)["versions"]
    assert [(v["version"], v["superseded"]) for v in versions] == [(1, True), (2, False)]


def test_bad_files_and_answers_are_one_line_errors(
    world: World, run_cli: Runner, form_file: Path, tmp_path: Path
) -> None:
    trainer = world.as_role(Role.QA_TRAINER)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    assert run_cli("qa", "form", "add", str(broken), env=trainer).returncode == 2
    data = json.loads(form_file.read_text())
    data["sections"][0]["questions"][1]["id"] = "greeting"
    form_file.write_text(json.dumps(data), encoding="utf-8")
    assert_one_line_error(
        run_cli("qa", "form", "add", str(form_file), env=trainer), "'greeting' is used twice"
    )
    data["sections"][0]["questions"][1]["id"] = "identity"
    form_file.write_text(json.dumps(data), encoding="utf-8")
    ok(run_cli("qa", "form", "add", str(form_file), env=trainer))
    call = add_call(world.runtime, agent="agent-cli")
    bad = _answers(tmp_path, {**ANSWERS, "understood": 7})
    assert_one_line_error(
        run_cli("qa", "evaluate", str(call), "--form", data["name"], "--answers", bad, env=trainer),
        "'understood' takes a whole number 1 to 5",
    )
    unknown = str(uuid.uuid4())
    assert_one_line_error(
        run_cli(
            "qa",
            "evaluate",
            unknown,
            "--form",
            data["name"],
            "--answers",
            _answers(tmp_path, ANSWERS),
            env=trainer,
        ),
        f"no recording {unknown}",
    )
    handler = world.as_role(Role.DISPUTE_HANDLER)
    assert_one_line_error(run_cli("qa", "form", "list", env=handler), "may not")
