"""``recarchive audit verify`` and ``audit export`` as an auditor runs them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sqlalchemy import update

from recarchive.access.audit import append_event
from recarchive.access.models import AuditEvent
from recarchive.catalogue.database import transaction
from recarchive.config import load_settings
from recarchive.runtime import Runtime
from tests.functional.helpers import Runner, assert_one_line_error


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

        exported = run_cli("audit", "export", "--from", "2000-01-01T00:00:00+00:00", env=env)
        lines = [json.loads(line) for line in exported.stdout.splitlines()]
        assert [line["case_ref"] for line in lines] == ["D-1", "D-2", "D-3"]
        assert lines[1]["prev_hash"] == lines[0]["hash"]
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
