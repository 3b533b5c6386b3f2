"""``recarchive qa report`` as a QA trainer runs it: a table, JSON, CSV to a file and to stdout.

The module's SQLite catalogue of test_qa_cli.py; calls of week 2026-W45 with
agents of this module's own, so the other modules' calls do not count.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import stat
from pathlib import Path

from recarchive.access.models import Role
from recarchive.qa.evaluations import create_evaluation
from recarchive.qa.scorecards import create_form
from tests.actors import staff
from tests.functional.helpers import Result, Runner, assert_one_line_error
from tests.functional.test_qa_cli import World
from tests.functional.test_qa_cli import world as world  # the module's catalogue and tokens
from tests.qa_fixtures import IN_WEEK_40, add_call

TRAINER = staff("report-cli-trainer", Role.QA_TRAINER)
W45 = IN_WEEK_40 + dt.timedelta(weeks=5)
RANGE = ("--period", "week", "--from", "2026-W44", "--to", "2026-W45", "--agent")


def ok(result: Result) -> Result:
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result


def test_a_trainer_reads_a_report_as_a_table_json_and_csv(
    world: World, run_cli: Runner, tmp_path: Path
) -> None:
    form = create_form(world.runtime, name="report-cli-form", actor=TRAINER, definition={
        "sections": [{"id": "tone", "title": "Tone", "questions": [
            {"id": "calm", "text": "Calm?", "kind": "yes_no_na"},
            {"id": "kind", "text": "Kind?", "kind": "yes_no_na"}]}]})  # fmt: skip
    for answers in ({"calm": "yes", "kind": "no"}, {"calm": "yes", "kind": "yes"}):
        call = add_call(world.runtime, agent="=agent-r", started_at=W45)
        create_evaluation(world.runtime, recording_id=call, form_version_id=form.versions[0].id,
                          answers=answers, submit=True, actor=TRAINER)  # fmt: skip
    trainer = world.as_role(Role.QA_TRAINER)

    table = ok(run_cli("qa", "report", *RANGE, "=agent-r", env=trainer))
    lines = table.stdout.splitlines()
    assert lines[0] == "agent =agent-r"
    assert lines[1].split()[:3] == ["2026-W44", "picked", "0"]
    assert "evaluations 2  avg 75.00  min 50.00  max 100.00  critical 0  delta -" in lines[2]
    assert lines[3].strip() == "report-cli-form / Tone: 75.00"
    assert "1 agent(s), 2 period(s) 2026-W44 to 2026-W45" in table.stderr

    data = json.loads(ok(run_cli("qa", "report", *RANGE, "=agent-r", "--json", env=trainer)).stdout)
    assert [p["average"] for p in data["agents"][0]["periods"]] == [None, 75.0]

    stdout_csv = ok(run_cli("qa", "report", *RANGE, "=agent-r", "--csv", "-", env=trainer))
    rows = list(csv.reader(io.StringIO(stdout_csv.stdout)))
    assert [(r[0], r[1], r[8]) for r in rows[1:]] == [
        ("'=agent-r", "2026-W44", ""),
        ("'=agent-r", "2026-W45", "75.0"),
    ]

    target = tmp_path / "sections.csv"
    ok(run_cli("qa", "report", *RANGE, "=agent-r", "--csv", str(target), "--table", "sections",
               env=trainer))  # fmt: skip
    written = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert written[1][3:] == ["report-cli-form", "tone", "Tone", "2", "75.0"]
    assert stat.S_IMODE(os.stat(target).st_mode) & 0o077 == 0
    again = run_cli("qa", "report", *RANGE, "=agent-r", "--csv", str(target), env=trainer)
    assert again.returncode == 2
    assert "exists" in again.stderr


def test_a_range_too_long_is_one_clear_line(world: World, run_cli: Runner) -> None:
    result = run_cli("qa", "report", "--from", "2020-W01", "--to", "2026-W01",
                     env=world.as_role(Role.QA_TRAINER))  # fmt: skip
    assert_one_line_error(result, "at most 104 periods")
