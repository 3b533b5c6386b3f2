"""What the key commands' tests share: an encrypted embedded archive, checks that it all plays.

``archive`` ingests a generated spool into an embedded installation (SQLite,
filesystem store); ``check_every_recording`` reads every recording back
through the store (decrypting the encrypted ones) and compares its SHA-256
and size with the catalogue's; ``run_killed`` runs ``recarchive ARGS`` as a
process and kills it (SIGKILL) after a number of progress lines.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from sqlalchemy import select

from recarchive.access.models import AuditEvent
from recarchive.catalogue.models import Recording, RecordingKey, RecordingStatus
from recarchive.config import load_settings
from recarchive.runtime import Runtime
from tests.functional.embedded import REPO, configure, generate, invoke
from tests.s3env import s3_environment


@pytest.fixture(params=["filesystem", pytest.param("s3", marks=pytest.mark.s3)])
def store_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The settings of the store under test: the filesystem's (none) or a fresh S3 bucket's."""
    if request.param == "filesystem":
        yield {}
        return
    env = {**s3_environment(), "RECARCHIVE_S3_BUCKET": f"recarchive-keys-{uuid.uuid4().hex[:12]}"}
    yield env
    runtime = Runtime(
        load_settings(None, env={**env, "RECARCHIVE_GENERAL_DATA_DIR": "/nonexistent"})
    )
    try:
        runtime.store.delete_many([info.key for info in runtime.store.list("")])
        runtime.store._client.delete_bucket(Bucket=runtime.store.bucket)  # type: ignore[attr-defined]
    finally:
        runtime.close()


def stored_keys(env: Mapping[str, str]) -> set[str]:
    """The keys of the objects under ``recordings/`` in the store."""
    runtime = open_runtime(env)
    try:
        return {info.key for info in runtime.store.list("recordings/")}
    finally:
        runtime.close()


def stored_bytes(env: Mapping[str, str], key: str) -> bytes:
    """The stored object as a copy of the bucket holds it (no decryption)."""
    runtime = open_runtime(env)
    try:
        with runtime.store.inner.get(key) as reader:  # type: ignore[attr-defined]
            data: bytes = reader.read()
            return data
    finally:
        runtime.close()


def archive(tmp_path: Path, count: int, extra: Mapping[str, str]) -> dict[str, str]:
    """An installation holding ``count`` generated calls (fewer: some are faulty); its env."""
    spool = tmp_path / "pbx"
    generate(spool, count)
    env = {**configure(tmp_path, spool), **extra}
    init = invoke(env, "init")
    assert init.exit_code == 0, init.output
    ingest = invoke(env, "ingest", "--once", "--json")
    assert ingest.exit_code == 0, ingest.output
    assert json.loads(ingest.stdout)["archived"] >= 1
    return env


def open_runtime(env: Mapping[str, str]) -> Runtime:
    return Runtime(load_settings(Path(env["RECARCHIVE_CONFIG"]), env=env))


def check_every_recording(env: Mapping[str, str]) -> dict[str, int]:
    """Read every active recording back and compare it with the catalogue; keys by KEK."""
    runtime = open_runtime(env)
    try:
        with runtime.sessions() as session:
            recordings = list(
                session.scalars(select(Recording).where(Recording.status == RecordingStatus.ACTIVE))
            )
            keys = list(session.scalars(select(RecordingKey)))
        assert recordings
        for recording in recordings:
            with runtime.store.get(recording.object_key) as reader:
                audio = reader.read()
            assert len(audio) == recording.size_bytes, recording.id
            assert hashlib.sha256(audio).hexdigest() == recording.sha256, recording.id
    finally:
        runtime.close()
    by_kek: dict[str, int] = {}
    for key in keys:
        by_kek[key.kek_id] = by_kek.get(key.kek_id, 0) + 1
    return by_kek


def audit_details(env: Mapping[str, str], action: str) -> list[dict[str, object]]:
    """The details of every audit entry of ``action``, oldest first."""
    runtime = open_runtime(env)
    try:
        with runtime.sessions() as session:
            events = session.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
            )
            return [dict(event.details) | {"actor": event.actor} for event in events]
    finally:
        runtime.close()


def run_killed(env: Mapping[str, str], *args: str, after_lines: int) -> bool:
    """Run ``recarchive ARGS`` as a process; SIGKILL it after ``after_lines`` lines on stderr.

    True when it was killed, False when it ended first.
    """
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("RECARCHIVE_", "AWS_"))}
    environment.update(env)
    environment["PYTHONPATH"] = str(REPO)
    process = subprocess.Popen(
        [sys.executable, "-m", "recarchive", *args],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for seen, _line in enumerate(process.stderr, start=1):
        if seen >= after_lines:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=120)
    process.stderr.close()
    return process.returncode == -signal.SIGKILL
