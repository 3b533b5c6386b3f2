"""``recarchive evidence``: the key an installation publishes, and checking a package anywhere.

``evidence verify`` runs as a court expert would run it: no configuration,
no catalogue, nothing but the package (a configuration file that does not
exist and a catalogue that cannot be reached change nothing).
"""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import zipfile
from pathlib import Path

from recarchive.access.audit import append_event
from recarchive.access.models import Role
from recarchive.catalogue.database import transaction
from recarchive.config import load_settings
from recarchive.disputes.evidence import write_evidence_package
from recarchive.runtime import Runtime
from tests.actors import staff
from tests.api_fixtures import add_recording
from tests.functional.embedded import invoke
from tests.functional.helpers import Runner


def installation(tmp_path: Path) -> dict[str, str]:
    data = tmp_path / "var"
    return {"RECARCHIVE_GENERAL_DATA_DIR": str(data)}


def test_init_makes_the_evidence_key_once_and_evidence_key_prints_it(tmp_path: Path) -> None:
    env = installation(tmp_path)
    first = invoke(env, "init")
    assert first.exit_code == 0, first.output
    key_file = tmp_path / "var" / "secrets" / "evidence-key"
    assert f"evidence key in {key_file}: created" in first.stdout
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    before = key_file.read_bytes()
    again = invoke(env, "init")
    assert f"evidence key in {key_file}: exists" in again.stdout
    assert key_file.read_bytes() == before
    shown = invoke(env, "evidence", "key")
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.startswith("-----BEGIN PUBLIC KEY-----\n")
    published = tmp_path / "published.pem"
    published.write_text(shown.stdout)  # the fingerprint line after the PEM is ignored by openssl
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-in", str(published), "-outform", "DER"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    fingerprint = (
        subprocess.run(["sha256sum"], input=der, capture_output=True, check=True, timeout=60)
        .stdout.split()[0]
        .decode()
    )
    assert shown.stdout.splitlines()[-1] == f"SHA-256 fingerprint: {fingerprint}"
    as_json = json.loads(invoke(env, "evidence", "key", "--json").stdout)
    assert as_json["sha256"] == fingerprint
    assert "PRIVATE" not in shown.stdout + as_json["public_key_pem"]


def test_evidence_key_before_init_says_to_run_it(tmp_path: Path, run_cli: Runner) -> None:
    result = run_cli("evidence", "key", env=installation(tmp_path))
    assert result.returncode == 1
    assert result.stdout == ""
    assert "run `recarchive init`" in result.stderr


def package(tmp_path: Path) -> Path:
    """A package of one recording, from an embedded installation made by ``init``."""
    env = installation(tmp_path)
    assert invoke(env, "init").exit_code == 0
    runtime = Runtime(load_settings(env=env))
    try:
        recording = add_recording(runtime, seconds=0.5)
        with transaction(runtime.sessions) as session:
            append_event(session, actor="handler-1", action="case.open", case_ref="RIITA-9")
        target = tmp_path / "evidence.zip"
        write_evidence_package(
            runtime,
            target,
            recording_ids=[recording.id],
            case={"reference": "RIITA-9", "kind": "contract"},
            actor=staff("handler-1", Role.PRIVACY_OFFICER),
        )
    finally:
        runtime.close()
    return target


def test_evidence_verify_needs_no_configuration_and_no_catalogue(
    tmp_path: Path, run_cli: Runner
) -> None:
    made = package(tmp_path / "archive")
    expert = {
        "RECARCHIVE_CONFIG": str(tmp_path / "no-such-config.toml"),
        "RECARCHIVE_CATALOGUE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/none",
    }
    before = sorted(tmp_path.iterdir())
    result = run_cli("evidence", "verify", str(made), env=expert)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines
    assert all(line.startswith("ok ") for line in lines)
    assert "carries no timestamp" in result.stdout
    assert "every check holds" in result.stderr
    assert sorted(tmp_path.iterdir()) == before  # nothing made: no catalogue, no data directory
    report = json.loads(run_cli("evidence", "verify", str(made), "--json", env=expert).stdout)
    assert report["ok"] is True
    assert {"files", "signature", "timestamp", "custody", "anchor"} <= {
        c["name"] for c in report["checks"]
    }


def test_evidence_verify_exits_1_naming_what_fails(tmp_path: Path, run_cli: Runner) -> None:
    made = package(tmp_path / "archive")
    changed = tmp_path / "changed.zip"
    with zipfile.ZipFile(made) as source, zipfile.ZipFile(changed, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.startswith("audio/"):
                data = data[:-1] + bytes([data[-1] ^ 1])
                audio = info.filename
            target.writestr(info, data)
    result = run_cli("evidence", "verify", str(changed))
    assert result.returncode == 1
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert any(audio in line and "files" in line for line in failed), result.stdout
    assert "does NOT verify" in result.stderr
    pinned = tmp_path / "other.pem"
    pinned.write_bytes(
        subprocess.run(
            ["openssl", "pkey", "-pubout"],
            input=subprocess.run(
                ["openssl", "genpkey", "-algorithm", "ed25519"],
                capture_output=True,
                check=True,
                timeout=60,
            ).stdout,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    )
    wrong_key = run_cli("evidence", "verify", str(made), "--public-key", str(pinned), "--json")
    assert wrong_key.returncode == 1
    report = json.loads(io.StringIO(wrong_key.stdout).read())
    assert {c["name"] for c in report["checks"] if not c["ok"]} == {"signature", "public key"}
