"""The CLI's output convention, checked on every kind of command with its output piped.

Results go to stdout: text for a person, or JSON lines with ``--json``.
Errors, warnings and notes go to stderr; log lines below WARNING appear
there only with ``-v`` (and from the long-running services). A script that
pipes a command's stdout into ``jq`` or ``wc -l`` gets the results and
nothing else.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from recarchive.access.models import Role
from recarchive.access.users import add_user
from recarchive.cli.common import log_level
from recarchive.cli.staff import TOKEN_ENV
from tests.actors import ADMIN
from tests.functional.conftest import clean_environment
from tests.functional.helpers import Runner
from tests.functional.test_ingest_cli import configure, generate, runtime_for

QUIET_LEVELS = {"debug", "info"}


def log_record(line: str) -> dict[str, Any] | None:
    """The log record a line holds (recarchive's JSON log format), or None."""
    try:
        value = json.loads(line)
    except ValueError:
        return None
    if isinstance(value, dict) and {"ts", "level", "event"} <= value.keys():
        return value
    return None


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The embedded default (the convention does not depend on the catalogue's kind)."""
    tmp_path = tmp_path_factory.mktemp("output")
    spool = tmp_path / "pbx"
    generate(spool, count=4, seed=31, bad="zero_byte")
    return configure(tmp_path, spool, f"sqlite:///{tmp_path / 'catalogue.db'}")


@pytest.fixture(scope="module")
def tokens(installation: dict[str, str], run_module_cli: Runner) -> dict[Role, str]:
    assert run_module_cli("init", env=installation).returncode == 0
    ingest = run_module_cli("ingest", "--once", env=installation)
    assert ingest.returncode in (0, 3), ingest.stderr
    runtime = runtime_for(installation)
    try:
        return {
            role: add_user(
                runtime, f"out-{role.value}-{uuid.uuid4().hex[:6]}", role, actor=ADMIN
            ).token
            for role in (
                Role.AUDITOR,
                Role.DISPUTE_HANDLER,
                Role.PRIVACY_OFFICER,
                Role.ADMIN,
                Role.QA_TRAINER,
            )
        }
    finally:
        runtime.close()


#: (arguments, the role whose token it takes or None, whether stdout is JSON lines)
COMMANDS: list[tuple[tuple[str, ...], Role | None, bool]] = [
    (("init",), None, False),
    (("config", "show"), None, False),
    (("config", "check"), None, False),
    (("store", "selftest"), None, False),
    (("store", "ls", ""), None, False),
    (("ingest", "--once"), None, False),
    (("ingest", "--once", "--json"), None, True),
    (("quarantine", "list"), None, False),
    (("quarantine", "list", "--json"), None, True),
    (("expire", "--dry-run"), None, False),
    (("verify", "--sample", "2"), None, False),
    (("reconcile", "--dry-run"), None, False),
    (("status",), None, False),
    (("scheduler", "--once"), None, False),
    (("audit", "verify"), None, False),
    (("audit", "anchors", "publish"), None, False),
    (("audit", "export"), Role.AUDITOR, True),
    (("lookup", "--json"), Role.DISPUTE_HANDLER, True),
    (("lookup",), Role.DISPUTE_HANDLER, False),
    (("hold", "list"), Role.DISPUTE_HANDLER, False),
    (("case", "list"), Role.DISPUTE_HANDLER, False),
    (("case", "list", "--json", "--status", "all"), Role.PRIVACY_OFFICER, True),
    (("users", "list"), Role.ADMIN, False),
    (("subject", "requests", "--json"), Role.PRIVACY_OFFICER, True),
    (("subject", "restrictions"), Role.PRIVACY_OFFICER, False),
    (("qa", "plan", "list"), Role.QA_TRAINER, False),
    (("qa", "plan", "list", "--json"), Role.QA_TRAINER, True),
    (("qa", "clip", "list"), Role.QA_TRAINER, False),
    (("qa", "clip", "list", "--json"), Role.QA_TRAINER, True),
    (("qa", "form", "list"), Role.QA_TRAINER, False),
    (("qa", "form", "list", "--json"), Role.QA_TRAINER, True),
    (("retention", "apply"), None, False),
]


@pytest.mark.parametrize(
    ("args", "role", "json_lines"), COMMANDS, ids=[" ".join(c[0]) for c in COMMANDS]
)
def test_piped_stdout_holds_results_only(
    run_module_cli: Runner,
    installation: dict[str, str],
    tokens: dict[Role, str],
    args: tuple[str, ...],
    role: Role | None,
    json_lines: bool,
) -> None:
    env = {**installation, TOKEN_ENV: tokens[role]} if role else installation
    result = run_module_cli(*args, env=env)
    assert result.returncode in (0, 3), result.stderr
    for line in result.stdout.splitlines():
        assert log_record(line) is None, f"a log line on stdout: {line}"
        if json_lines:
            assert isinstance(json.loads(line), dict), line
    for line in result.stderr.splitlines():
        record = log_record(line)
        assert record is None or record["level"] not in QUIET_LEVELS, f"stderr: {line}"


def test_verbose_shows_info_lines(run_cli: Runner, tmp_path: Path) -> None:
    env = {"RECARCHIVE_GENERAL_DATA_DIR": str(tmp_path / "fresh")}
    quiet = run_cli("init", env=env)
    assert quiet.returncode == 0, quiet.stderr
    assert not [r for r in map(log_record, quiet.stderr.splitlines()) if r]
    env = {"RECARCHIVE_GENERAL_DATA_DIR": str(tmp_path / "other")}
    verbose = run_cli("-v", "init", env=env)
    assert verbose.returncode == 0, verbose.stderr
    events = {r["event"] for r in map(log_record, verbose.stderr.splitlines()) if r}
    assert "installation_initialised" in events
    assert verbose.stdout.splitlines() == quiet.stdout.replace("fresh", "other").splitlines()


def test_quiet_and_verbose_together_are_refused(
    run_module_cli: Runner, installation: dict[str, str]
) -> None:
    both = run_module_cli.process("-v", "-q", "status", env=installation)
    assert both.returncode == 2
    assert "not both" in both.stderr


@pytest.mark.parametrize(
    ("configured", "verbosity", "service", "expected"),
    [
        ("INFO", 0, False, "WARNING"),
        ("INFO", 0, True, "INFO"),
        ("WARNING", 0, True, "WARNING"),
        ("ERROR", 0, False, "ERROR"),
        ("INFO", 1, False, "INFO"),
        ("DEBUG", 1, False, "DEBUG"),
        ("INFO", 2, False, "DEBUG"),
        ("INFO", -1, False, "ERROR"),
        ("DEBUG", -1, True, "WARNING"),
    ],
)
def test_log_level(configured: str, verbosity: int, service: bool, expected: str) -> None:
    assert log_level(configured, verbosity, service=service) == expected


def test_services_log_at_the_configured_level(
    installation: dict[str, str], tokens: dict[Role, str], tmp_path: Path
) -> None:
    """``ingest`` without --once is a service: its info lines are its progress report."""
    process = subprocess.Popen(
        [sys.executable, "-m", "recarchive", "ingest"],
        env=clean_environment(installation),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Until its first info line (however long the start takes on a loaded machine),
    # then stopped; a service that never logs one is killed after a minute.
    watchdog = threading.Timer(60, process.kill)
    watchdog.start()
    seen: list[str] = []
    try:
        assert process.stderr is not None
        for line in process.stderr:
            seen.append(line)
            record = log_record(line.rstrip("\n"))
            if record and record["level"] == "info":
                break
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=60)
    finally:
        watchdog.cancel()
    stderr = "".join(seen) + rest
    records = [r for r in map(log_record, stderr.splitlines()) if r]
    assert any(r["level"] == "info" for r in records), stderr[-2000:]
    assert process.returncode == 0, stderr[-2000:]


def test_status_answers_the_morning_question(
    run_module_cli: Runner, installation: dict[str, str], tokens: dict[Role, str]
) -> None:
    result = run_module_cli("status", "--json", env=installation)
    assert result.returncode == 3, result.stderr  # the quarantined zero-byte file waits
    status = json.loads(result.stdout)
    assert status["recordings"] > 0
    assert status["bytes_stored"] > 0
    assert status["quarantined"] == {"zero_byte": 1}
    assert status["work_remains"] is True
    assert status["store_ok"] is True
    [source] = status["sources"]
    assert source["last_archived_at"] is not None
    assert 0 <= source["lag_s"] < 3600
    assert status["nightly"]["following"] > status["nightly"]["scheduled"]
    audit = status["audit"]
    assert audit["entries"] > 0
    assert audit["anchor_seq"] is not None
    assert audit["anchor_problem"] is None
    assert 0 <= audit["unanchored"] <= audit["head_seq"]
    text = run_module_cli("status", env=installation)
    assert text.returncode == 3
    lines = text.stdout.splitlines()
    assert any(line.startswith("quarantined  1 (zero_byte 1)") for line in lines), lines
    assert any(line.startswith("source       ") and "last archived" in line for line in lines)
    assert any(line.startswith("audit        ") and "newest anchor" in line for line in lines)
