"""``recarchive keys encrypt-existing`` on the filesystem store, with the key file."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import select, update

from recarchive.catalogue.models import Recording, RecordingStatus
from recarchive.retention.encrypt_existing import sealed_object_key
from recarchive.retention.holds import place_hold
from tests.actors import staff
from tests.functional.embedded import invoke
from tests.functional.keyring import (
    archive,
    audit_details,
    check_every_recording,
    open_runtime,
    run_killed,
    store_env,
    stored_bytes,
    stored_keys,
)

__all__ = ["store_env"]  # the fixture, imported to be used here

ENCRYPTED = {"RECARCHIVE_ENCRYPTION_ENABLED": "true"}


def catalogue(env: Mapping[str, str]) -> dict[str, tuple[str, str, bool]]:
    """Every recording: id -> (object key, sha256, encrypted)."""
    runtime = open_runtime(env)
    try:
        with runtime.sessions() as session:
            rows = session.scalars(select(Recording))
            return {str(r.id): (r.object_key, r.sha256, r.encrypted) for r in rows}
    finally:
        runtime.close()


def plaintext_archive(
    tmp_path: Path, count: int, store: Mapping[str, str] | None = None
) -> dict[str, str]:
    """An archive ingested without encryption; its env, now with encryption enabled."""
    env = archive(tmp_path, count, {**(store or {}), "RECARCHIVE_ENCRYPTION_ENABLED": "false"})
    assert not any(encrypted for _, _, encrypted in catalogue(env).values())
    env = {**env, **ENCRYPTED}
    assert invoke(env, "init").exit_code == 0  # makes the key file
    return env


def test_encrypt_existing_keeps_the_sha256_and_leaves_no_plaintext(
    tmp_path: Path, store_env: dict[str, str]
) -> None:
    env = plaintext_archive(tmp_path, 4, store_env)
    before = catalogue(env)
    n = len(before)
    assert (
        f"encryption   on (file key provider); 0 of {n} encrypted "
        f"(`recarchive keys encrypt-existing` encrypts the other {n})"
    ) in invoke(env, "status").stdout
    result = invoke(env, "keys", "encrypt-existing", "--batch-size", "2", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["encrypted"] == report["plaintext_deleted"] == len(before)
    after = catalogue(env)
    assert {rid: sha for rid, (_, sha, _) in after.items()} == {
        rid: sha for rid, (_, sha, _) in before.items()
    }
    assert all(encrypted for _, _, encrypted in after.values())
    assert f"; {n} of {n} encrypted\n" in invoke(env, "status").stdout
    stored = stored_keys(env)
    assert stored == {key for key, _, _ in after.values()}  # no plaintext, no stray copy
    assert all(stored_bytes(env, key)[:4] == b"RCAE" for key in stored)
    check_every_recording(env)
    verify = invoke(env, "verify", "--all")
    assert verify.exit_code == 0, verify.output
    [entry] = audit_details(env, "keys.encrypt_existing")
    assert entry["encrypted"] == len(before)
    again = invoke(env, "keys", "encrypt-existing", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["encrypted"] == 0


def test_recordings_held_due_or_being_deleted_are_skipped(tmp_path: Path) -> None:
    env = plaintext_archive(tmp_path, 5)
    ids = sorted(catalogue(env))
    due, deleting, held = ids[0], ids[1], ids[2]
    runtime = open_runtime(env)
    try:
        place_hold(
            runtime,
            case_ref="D-KEYS",
            reason="billing dispute",
            actor=staff("dispute_handler"),
            recording_ids=[uuid.UUID(held)],
        )
        with runtime.sessions() as session, session.begin():
            past = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
            session.execute(
                update(Recording).where(Recording.id == uuid.UUID(due)).values(retain_until=past)
            )
            session.execute(
                update(Recording)
                .where(Recording.id == uuid.UUID(deleting))
                .values(status=RecordingStatus.DELETING, deleting_by="expiry-run")
            )
    finally:
        runtime.close()
    before = catalogue(env)
    result = invoke(env, "keys", "encrypt-existing", "--json")
    assert result.exit_code == 3, result.output  # the due one is still active and plaintext
    report = json.loads(result.stdout)
    assert report["skipped"] == {"due": 1, "deleting": 1, "held": 1}
    assert report["remaining"] == 2  # the held one and the due one
    after = catalogue(env)
    assert after[due] == before[due]
    assert after[held] == before[held]
    assert after[deleting] == before[deleting]
    assert before[deleting][0] in stored_keys(env)
    assert {key for key, _, _ in after.values()} == stored_keys(env)  # no copy left behind


def test_encrypt_existing_killed_at_any_batch_is_finished_by_the_next_run(
    tmp_path: Path, store_env: dict[str, str]
) -> None:
    env = plaintext_archive(tmp_path, 12, store_env)
    before = catalogue(env)
    killed_mid_run = 0
    for after_lines in (1, 3, 6):
        killed = run_killed(
            env, "keys", "encrypt-existing", "--batch-size", "1", after_lines=after_lines
        )
        killed_mid_run += killed
        check_every_recording(env)  # a mix of both kinds, every one plays
    assert killed_mid_run
    result = invoke(env, "keys", "encrypt-existing", "--batch-size", "1", "--json")
    assert result.exit_code == 0, result.output
    after = catalogue(env)
    assert {rid: sha for rid, (_, sha, _) in after.items()} == {
        rid: sha for rid, (_, sha, _) in before.items()
    }
    assert all(encrypted for _, _, encrypted in after.values())
    assert stored_keys(env) == {key for key, _, _ in after.values()}
    check_every_recording(env)
    verify = invoke(env, "verify", "--all")
    assert verify.exit_code == 0, verify.output


def test_the_leftovers_of_a_kill_on_either_side_of_the_switch_are_cleared(tmp_path: Path) -> None:
    env = plaintext_archive(tmp_path, 3)
    before = catalogue(env)
    first, second = sorted(before)[:2]
    root = tmp_path / "install" / "var" / "objects"
    # Killed after writing the encrypted copy, before the switch: a stray copy, no data key.
    stray = root / sealed_object_key(before[first][0])
    stray.write_bytes(b"RCAE half an object")
    result = invoke(env, "keys", "encrypt-existing", "--json")
    assert result.exit_code == 0, result.output
    # Killed after the switch, before the plaintext was deleted: the plaintext is back.
    runtime = open_runtime(env)
    try:
        with (
            open(tmp_path / "audio", "wb") as out,
            runtime.store.get(catalogue(env)[second][0]) as reader,
        ):
            out.write(reader.read())
        with open(tmp_path / "audio", "rb") as audio:
            runtime.store.inner.put(before[second][0], audio)
    finally:
        runtime.close()
    assert before[second][0] in stored_keys(env)
    again = invoke(env, "keys", "encrypt-existing", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["plaintext_deleted"] == 1
    after = catalogue(env)
    assert stored_keys(env) == {key for key, _, _ in after.values()}
    check_every_recording(env)
    assert invoke(env, "verify", "--all").exit_code == 0
