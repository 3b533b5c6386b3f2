"""``recarchive audit verify`` and ``audit export`` as an auditor runs them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import select, update

from recarchive.access.audit import append_event
from recarchive.access.models import AuditEvent, Role
from recarchive.access.users import add_user
from recarchive.catalogue.database import transaction
from recarchive.cli.staff import TOKEN_ENV
from recarchive.config import load_settings
from recarchive.runtime import Runtime
from tests.actors import ADMIN
from tests.functional.helpers import Runner, assert_one_line_error


@pytest.mark.process
def test_verify_then_detect_an_edit_and_export(
    run_cli: Runner, tmp_path: Path, empty_catalogue_url: str
) -> None:
    env = {
        "RECARCHIVE_CATALOGUE_URL": empty_catalogue_url,
        "RECARCHIVE_GENERAL_DATA_DIR": str(tmp_path),  # one audit key for the CLI and the test
    }
    assert run_cli("init", env=env).returncode == 0
    runtime = Runtime(load_settings(env=env))
    try:
        for case in ("D-1", "D-2", "D-3"):
            with transaction(runtime.sessions) as session:
                append_event(session, actor="maija", action="hold.place", case_ref=case)
        ok = run_cli("audit", "verify", env=env)
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.splitlines()[0] == "audit log intact: 3 entries, every one sealed"

        anonymous = run_cli("audit", "export", env=env)
        assert anonymous.returncode == 2  # reading the log is the auditor's: a token
        trainer = add_user(runtime, "tiina", Role.QA_TRAINER, actor=ADMIN).token
        refused = run_cli("audit", "export", env={**env, TOKEN_ENV: trainer})
        assert_one_line_error(refused, "role qa_trainer may not read the audit log")
        auditor = add_user(runtime, "aino", Role.AUDITOR, actor=ADMIN).token
        env = {**env, TOKEN_ENV: auditor}
        exported = run_cli("audit", "export", "--from", "2000-01-01T00:00:00+00:00", env=env)
        lines = [json.loads(line) for line in exported.stdout.splitlines()]
        assert [line["case_ref"] for line in lines][:3] == ["D-1", "D-2", "D-3"]
        assert [line["action"] for line in lines][3:] == ["users.add", "tokens.issue"] * 2
        assert lines[1]["prev_hash"] == lines[0]["hash"]
        with runtime.sessions() as session:
            [read] = session.scalars(select(AuditEvent).where(AuditEvent.action == "audit.read"))
        assert (read.actor, read.actor_role) == ("aino", "auditor")
        assert read.details == {"entries": 7, "export": True}
        assert read.seq == lines[-1]["seq"] + 1  # the export stopped at the head it saw
        for line in lines:  # the export alone is enough to recompute every hash
            content = {k: v for k, v in line.items() if k not in ("seq", "hash")}
            canonical = json.dumps(content, sort_keys=True, separators=(",", ":"),
                                   ensure_ascii=False)  # fmt: skip
            assert hashlib.sha256(canonical.encode()).hexdigest() == line["hash"]
        bad_time = run_cli("audit", "export", "--from", "yesterday", env=env)
        assert bad_time.returncode == 2
        assert "not an ISO 8601 time" in bad_time.stderr

        with transaction(runtime.sessions) as session:
            session.execute(
                update(AuditEvent).where(AuditEvent.case_ref == "D-2").values(case_ref="D-9")
            )
        broken = run_cli("audit", "verify", env=env)
        assert_one_line_error(broken, f"audit log broken at entry {lines[1]['seq']}")
    finally:
        runtime.close()
