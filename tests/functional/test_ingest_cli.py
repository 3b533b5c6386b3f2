"""A generated day of calls through ``recarchive ingest``, ``quarantine`` and ``tag``.

The calls come from ``scripts/gen_calls.py``, whose manifest says what the
archive should do with each one (customer, reason codes, quarantine reason);
the configuration is the demo's (``docs/examples/demo.toml.in``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from recarchive.access.audit import verify_chain
from recarchive.access.models import AuditEvent, Role
from recarchive.access.users import add_user
from recarchive.catalogue.intake import WorkItem, WorkState
from recarchive.catalogue.models import CustomerMatch, Recording
from recarchive.config import load_settings
from recarchive.runtime import Runtime
from tests.actors import ADMIN
from tests.functional.helpers import Runner, backdate, error_lines
from tests.logscan import SESSION

REPO = Path(__file__).resolve().parents[2]


def generate(out: Path, *, count: int, seed: int, bad: str = "all") -> dict[str, Any]:
    day = (dt.date.today() - dt.timedelta(days=2)).isoformat()
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_calls.py"), "--out", str(out),
         "--layout", "spool", "--count", str(count), "--day", day, "--engine", "tones",
         "--min-seconds", "2", "--max-seconds", "5", "--bad", bad, "--seed", str(seed),
         "--customers", "40", "--jobs", "2"],
        check=True, capture_output=True,
    )  # fmt: skip
    backdate(out)
    manifest: dict[str, Any] = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return manifest


def configure(tmp_path: Path, spool: Path, catalogue_url: str, **cdr: str) -> dict[str, str]:
    template = (REPO / "docs" / "examples" / "demo.toml.in").read_text(encoding="utf-8")
    text = template.replace("@DATA_DIR@", str(tmp_path / "var")).replace("@SPOOL@", str(spool))
    for key, value in cdr.items():
        text = text.replace(f'{key} = "asterisk_master"', f'{key} = "{value}"')
    config = tmp_path / "recarchive.toml"
    config.write_text(text, encoding="utf-8")
    return {
        "RECARCHIVE_CONFIG": str(config),
        "RECARCHIVE_CATALOGUE_URL": catalogue_url,
        "RECARCHIVE_REASONS_DEFAULT_CODE": "",
    }


def runtime_for(env: dict[str, str]) -> Runtime:
    return Runtime(load_settings(env=env))


def quarantine(run_cli: Runner, env: dict[str, str]) -> list[dict[str, Any]]:
    listed = run_cli("quarantine", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    return [json.loads(line) for line in listed.stdout.splitlines()]


@pytest.mark.process
def test_a_generated_day_is_archived_as_its_manifest_says(
    run_cli: Runner, tmp_path: Path, empty_catalogue_url: str
) -> None:
    spool = tmp_path / "pbx"
    manifest = generate(spool, count=14, seed=11)
    env = configure(tmp_path, spool, empty_catalogue_url)
    assert run_cli("init", env=env).returncode == 0
    imported = run_cli("directory", "import", str(spool / "customers.csv"), env=env)
    assert imported.returncode == 3, imported.stderr  # the planted invalid rows remain

    result = run_cli("ingest", "--once", "--json", env=env)
    assert result.returncode == 3, result.stderr  # done, but the deferred one still waits
    summary = json.loads(result.stdout)
    expected = [c for c in manifest["calls"] if c["expected"] == "archived"]
    assert summary["archived"] == len(expected)
    assert summary["deferred"] == 1  # the recording still being written
    assert summary["waiting"] == 1

    runtime = runtime_for(env)
    try:
        with runtime.sessions() as session:
            rows = {r.source_ref: (r, r.reason_codes) for r in session.scalars(select(Recording))}
        assert set(rows) == {c["source_ref"] for c in expected}
        for call in expected:
            row, codes = rows[call["source_ref"]]
            assert sorted(codes) == sorted(call["expected_reason_codes"]), call["call_id"]
            customer = call["expected_customer_id"]
            if customer == "ambiguous":
                assert row.customer_match is CustomerMatch.AMBIGUOUS
            else:
                assert row.customer_id == customer, call["call_id"]
            assert abs(row.duration_ms / 1000 - call["duration_s"]) < 0.06
            assert not (spool / call["recording"]).exists()
            assert (spool / "done" / call["source_ref"]).exists()
    finally:
        runtime.close()

    reasons = sorted(entry["reason"] for entry in quarantine(run_cli, env))
    wanted = sorted(
        case["reason"] if case["case"] != "malformed_csv" else "malformed_cdr"
        for case in manifest["bad_cases"]
        if case["expected"] in ("quarantined", "missing_recording")
        or (case["case"] == "malformed_csv" and case["file"] == "cdr/Master.csv")
    )
    assert reasons == wanted
    for case in manifest["bad_cases"]:
        if case["expected"] == "quarantined":
            assert (spool / case["path"]).exists(), "quarantined original must stay"

    again = run_cli("ingest", "--once", "--json", env=env)
    assert json.loads(again.stdout)["archived"] == 0
    assert len(quarantine(run_cli, env)) == len(wanted)


def test_freepbx_export_refuses_a_traversal_name(
    run_cli: Runner, tmp_path: Path, empty_catalogue_url: str
) -> None:
    spool = tmp_path / "pbx"
    manifest = generate(spool, count=6, seed=12, bad="traversal_name")
    env = configure(tmp_path, spool, empty_catalogue_url, cdr_format="freepbx_export")
    env["RECARCHIVE_CONFIG"] = env["RECARCHIVE_CONFIG"]
    config = Path(env["RECARCHIVE_CONFIG"])
    config.write_text(
        config.read_text(encoding="utf-8").replace("cdr/Master.csv", "cdr/cdr-export.csv"),
        encoding="utf-8",
    )
    assert run_cli("init", env=env).returncode == 0
    result = run_cli("ingest", "--once", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["quarantined"] == {"invalid_name": 1}
    [entry] = quarantine(run_cli, env)
    assert "recordingfile is not a plain file name" in entry["detail"]
    assert "passwd" not in entry["detail"]
    archived = [c for c in manifest["calls"] if c["expected"] == "archived"]
    assert json.loads(result.stdout)["archived"] == len(archived)


def test_quarantine_retry_after_the_file_is_fixed(
    run_cli: Runner, tmp_path: Path, empty_catalogue_url: str
) -> None:
    spool = tmp_path / "pbx"
    manifest = generate(spool, count=3, seed=13, bad="zero_byte")
    env = configure(tmp_path, spool, empty_catalogue_url)
    assert run_cli("init", env=env).returncode == 0
    assert run_cli("ingest", "--once", env=env).returncode == 0
    [entry] = quarantine(run_cli, env)
    assert entry["reason"] == "zero_byte"
    listed = run_cli("quarantine", "list", env=env)
    [row] = listed.stdout.splitlines()  # the results only: nothing else on stdout
    assert row.startswith(entry["id"])
    assert " zero_byte " in row
    # The summary on stderr, after a blank line: never run into the last row.
    assert ("\n" + listed.stderr).endswith("\n\nopen entries by reason: zero_byte 1\n")
    broken = spool / "monitor" / entry["source_ref"]
    good = next(c for c in manifest["calls"] if c["expected"] == "archived")
    shutil.copyfile(spool / "done" / good["source_ref"], broken)
    old = time.time() - 600
    os.utime(broken, (old, old))

    anonymous = run_cli("quarantine", "retry", entry["id"], env=env)
    assert anonymous.returncode == 2  # a retry is an admin's: no token, no change
    assert "give your API token" in anonymous.stderr
    runtime = runtime_for(env)
    try:
        trainer = add_user(runtime, "tuuli", Role.QA_TRAINER, actor=ADMIN).token
        admin = add_user(runtime, "ops", Role.ADMIN, actor=ADMIN).token
    finally:
        runtime.close()
    refused = run_cli(
        "quarantine", "retry", entry["id"], env={**env, "RECARCHIVE_USER_TOKEN": trainer}
    )
    assert "role qa_trainer may not retry quarantined input" in error_lines(refused)[0]
    env = {**env, "RECARCHIVE_USER_TOKEN": admin}
    retried = run_cli("quarantine", "retry", entry["id"], env=env)
    assert retried.returncode == 0, retried.stderr
    assert "queued again" in retried.stdout
    audit = run_cli("audit", "verify", env=env)
    assert audit.returncode == 0, audit.stderr
    runtime = runtime_for(env)
    try:
        with runtime.sessions() as session:
            [event] = session.scalars(
                select(AuditEvent).where(AuditEvent.action == "quarantine.retry")
            )
    finally:
        runtime.close()
    assert (event.actor, event.actor_role) == ("ops", "admin")
    assert event.details == {
        "entry_id": entry["id"],
        "reason": "zero_byte",
        "source": entry["source"],
        "requeued": True,
    }
    assert quarantine(run_cli, env) == []
    result = run_cli("ingest", "--once", "--json", env=env)
    assert json.loads(result.stdout)["archived"] == 1
    unknown = run_cli("quarantine", "retry", entry["id"], env=env)
    assert unknown.returncode == 1
    assert f"no open quarantine entry {entry['id']}" in error_lines(unknown)[0]


def test_tag_corrects_reason_codes_and_is_audited(
    run_cli: Runner, tmp_path: Path, empty_catalogue_url: str
) -> None:
    spool = tmp_path / "pbx"
    generate(spool, count=3, seed=14, bad="")
    env = configure(tmp_path, spool, empty_catalogue_url)
    assert run_cli("init", env=env).returncode == 0
    assert run_cli("ingest", "--once", env=env).returncode == 0
    runtime = runtime_for(env)
    try:
        with runtime.sessions() as session:
            recording_id = session.scalars(select(Recording.id)).first()
        anonymous = run_cli("tag", str(recording_id), "--reason", "moving", env=env)
        assert anonymous.returncode == 2  # a correction is a person's: no token, no change
        trainer = add_user(runtime, "tiina", Role.QA_TRAINER, actor=ADMIN).token
        refused = run_cli("tag", str(recording_id), "--reason", "moving",
                          env={**env, "RECARCHIVE_USER_TOKEN": trainer})  # fmt: skip
        assert "role qa_trainer may not correct reason codes" in error_lines(refused)[0]
        token = add_user(runtime, "maija", Role.DISPUTE_HANDLER, actor=ADMIN).token
        env = {**env, "RECARCHIVE_USER_TOKEN": token}
        first = run_cli("tag", str(recording_id), "--reason", "moving", env=env)
        assert first.returncode == 0, first.stderr
        assert first.stdout.strip().endswith("-> moving")
        second = run_cli("tag", str(recording_id), "--add", "billing", env=env)
        assert second.stdout.strip().endswith("-> billing, moving")
        bad = run_cli("tag", str(recording_id), "--add", "gossip", env=env)
        assert bad.returncode == 1
        assert "unknown reason code(s) gossip" in error_lines(bad)[0]
        missing = run_cli("tag", "00000000-0000-0000-0000-000000000000", "--add", "billing",
                          env=env)  # fmt: skip
        assert "no recording 00000000-0000-0000-0000-000000000000" in error_lines(missing)[0]

        with runtime.sessions() as session:
            events = session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "reasons.correct")
                .order_by(AuditEvent.seq)
            ).all()
            assert len(events) == 2
            assert events[0].actor == "maija"
            assert events[0].actor_role == "dispute_handler"
            assert events[0].recording_id == recording_id
            assert events[1].details == {"before": ["moving"], "after": ["billing", "moving"]}
        assert verify_chain(runtime.sessions).intact
    finally:
        runtime.close()


@pytest.mark.postgres
def test_two_processes_with_two_workers_each_archive_every_call_once(
    run_cli: Runner, tmp_path: Path, postgres_databases: Any
) -> None:
    url = postgres_databases.create(migrated=True)
    spool = tmp_path / "pbx"
    manifest = generate(spool, count=30, seed=15, bad="")
    env = configure(tmp_path, spool, url)
    assert run_cli("init", env=env).returncode == 0
    command = [sys.executable, "-m", "recarchive", "ingest", "--once", "--json", "--workers", "2"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RECARCHIVE_")}
    processes = [
        subprocess.Popen(
            command,
            cwd=tmp_path,
            env={**clean, **env},
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    for _, stderr in outputs:
        SESSION.scan_output("recarchive ingest", stderr)
    # 3: a run that ended while the other still held claims ("claimed elsewhere" waits).
    assert {p.returncode for p in processes} <= {0, 3}, outputs
    archived = sum(json.loads(out)["archived"] for out, _ in outputs)
    expected = len([c for c in manifest["calls"] if c["expected"] == "archived"])
    assert archived == expected
    runtime = runtime_for(env)
    try:
        with runtime.sessions() as session:
            assert session.scalar(select(func.count(Recording.id))) == expected
        assert len(list(runtime.store.list("recordings/"))) == expected
    finally:
        runtime.close()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_finishes_the_recording_in_hand_and_exits(
    tmp_path: Path, empty_catalogue_url: str, run_cli: Runner, workers: str
) -> None:
    """One worker, or two worker processes each finishing what it stored (its group)."""
    spool = tmp_path / "pbx"
    generate(spool, count=40, seed=16, bad="")
    env = configure(tmp_path, spool, empty_catalogue_url)
    assert run_cli("init", env=env).returncode == 0
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RECARCHIVE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "recarchive", "ingest", "--json", "--workers", workers],
        cwd=tmp_path, env={**clean, **env}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    for line in process.stderr:  # wait until it is archiving
        SESSION.scan_output("recarchive ingest", line)
        if '"event": "archived"' in line:
            break
    process.send_signal(signal.SIGTERM)
    out, rest = process.communicate(timeout=60)
    SESSION.scan_output("recarchive ingest", rest)
    assert process.returncode == 0
    summary = json.loads(out)
    assert summary["archived"] >= 1
    runtime = runtime_for(env)
    try:
        with runtime.sessions() as session:
            claimed = session.scalar(
                select(func.count(WorkItem.id)).where(WorkItem.state == WorkState.CLAIMED)
            )
            rows = session.scalar(select(func.count(Recording.id)))
        assert claimed == 0, "the recording in hand must be finished, not left claimed"
        assert rows == summary["archived"]
        assert len(list(runtime.store.list("recordings/"))) == rows
    finally:
        runtime.close()


@pytest.mark.process
def test_once_with_items_still_waiting_exits_3_and_says_how_many(
    run_cli: Runner, tmp_path: Path, empty_catalogue_url: str
) -> None:
    spool = tmp_path / "pbx"
    # Quiet for longer than the settle time (see generate), so that only the header
    # (sizes still 0) tells that Asterisk has not closed the file.
    generate(spool, count=2, seed=16, bad="still_writing")
    env = configure(tmp_path, spool, empty_catalogue_url)
    assert run_cli("init", env=env).returncode == 0
    result = run_cli("ingest", "--once", env=env)
    assert result.returncode == 3, result.stderr
    assert "waiting      1 " in result.stdout
    assert "1 item(s) still waiting: the next run takes them" in error_lines(result)
    assert "Traceback" not in result.stderr


def test_once_with_a_recording_waiting_for_its_cdr_row_exits_3_and_says_so(
    run_cli: Runner, tmp_path: Path, empty_catalogue_url: str
) -> None:
    spool = tmp_path / "pbx"
    manifest = generate(spool, count=2, seed=17, bad="recording_without_cdr")
    [orphan] = [c for c in manifest["calls"] if c["bad_case"] == "recording_without_cdr"]
    written = time.time() - 60  # settled, but within cdr_wait_s (300 s by default)
    os.utime(spool / orphan["recording"], (written, written))
    env = configure(tmp_path, spool, empty_catalogue_url)
    assert run_cli("init", env=env).returncode == 0
    result = run_cli("ingest", "--once", env=env)
    assert result.returncode == 3, result.stderr
    assert "awaiting cdr 1 " in result.stdout
    assert "enriched     0 " in result.stdout
    lines = error_lines(result)
    waiting = "1 recording(s) waiting for their CDR row or contact record"
    assert f"{waiting}: the next run takes them" in lines
    assert (spool / orphan["recording"]).exists()

    old = time.time() - 600  # the wait is over: archived from its name
    os.utime(spool / orphan["recording"], (old, old))
    again = run_cli("ingest", "--once", "--json", env=env)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert (summary["awaiting_cdr"], summary["archived"]) == (0, 1)
