"""``recarchive keys rotate`` and ``keys retire`` with the key file, on the filesystem store."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from recarchive.crypto.keyfile import key_ids
from tests.functional.embedded import invoke
from tests.functional.keyring import (
    archive,
    audit_details,
    check_every_recording,
    run_killed,
    store_env,
    stored_bytes,
    stored_keys,
)

__all__ = ["store_env"]  # the fixture, imported to be used here

ENCRYPTED = {"RECARCHIVE_ENCRYPTION_ENABLED": "true"}


def key_file(tmp_path: Path) -> Path:
    return tmp_path / "install" / "var" / "secrets" / "key-encryption-keys"


def test_rotate_rewraps_every_data_key_and_every_recording_still_plays(
    tmp_path: Path, store_env: dict[str, str]
) -> None:
    env = archive(tmp_path, 4, {**ENCRYPTED, **store_env})
    stored = {key: stored_bytes(env, key) for key in stored_keys(env)}
    [first] = key_ids(key_file(tmp_path))
    before = check_every_recording(env)
    assert set(before) == {first}

    result = invoke(env, "keys", "rotate", "--batch-size", "2", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    ids = key_ids(key_file(tmp_path))
    assert ids[0] == first
    assert len(ids) == 2
    assert report["new_kek"] == ids[1]
    assert report["current"] == f"file:{ids[1]}"
    assert report["rewrapped"] == before[first]
    assert report["complete"]
    assert stat.S_IMODE(key_file(tmp_path).stat().st_mode) == 0o600
    assert check_every_recording(env) == {ids[1]: before[first]}
    assert "re-wrapped" in result.stderr  # progress on stderr, the report alone on stdout
    verify = invoke(env, "verify", "--all")
    assert verify.exit_code == 0, verify.output
    assert {key: stored_bytes(env, key) for key in stored_keys(env)} == stored  # audio untouched

    [entry] = audit_details(env, "keys.rotate")
    assert entry["rewrapped"] == before[first]
    assert entry["actor"].startswith("system:")

    retire = invoke(env, "keys", "retire", "--json")
    assert retire.exit_code == 0, retire.output
    assert json.loads(retire.stdout)["retired"] == [first]
    assert key_ids(key_file(tmp_path)) == [ids[1]]
    assert check_every_recording(env) == {ids[1]: before[first]}
    assert len(audit_details(env, "keys.retire")) == 1


def test_retire_keeps_a_key_still_in_use(tmp_path: Path) -> None:
    env = archive(tmp_path, 2, ENCRYPTED)
    [first] = key_ids(key_file(tmp_path))
    # A new key made current by hand, nothing re-wrapped yet: the first still wraps data keys.
    from recarchive.crypto.keyfile import add_key_encryption_key

    add_key_encryption_key(key_file(tmp_path))
    retire = invoke(env, "keys", "retire")
    assert retire.exit_code == 3, retire.output
    assert f"kept, still in use: file:{first}" in retire.stdout
    assert first in key_ids(key_file(tmp_path))
    check_every_recording(env)
    # keys rotate now finishes that rotation instead of making yet another key.
    rotate = invoke(env, "keys", "rotate", "--json")
    assert rotate.exit_code == 0, rotate.output
    assert json.loads(rotate.stdout)["new_kek"] is None
    assert len(key_ids(key_file(tmp_path))) == 2


def test_a_rotation_killed_at_any_batch_is_finished_by_the_next_run(
    tmp_path: Path, store_env: dict[str, str]
) -> None:
    env = archive(tmp_path, 12, {**ENCRYPTED, **store_env})
    total = sum(check_every_recording(env).values())

    def finished() -> bool:
        """Every data key under the current (newest) key: the next run makes a new key."""
        return set(check_every_recording(env)) == {key_ids(key_file(tmp_path))[-1]}

    # A run makes a new key only when it finds no rotation unfinished; a run killed
    # after its last batch (the kill may land after the work) leaves none unfinished.
    expected_keys = len(key_ids(key_file(tmp_path)))
    killed_mid_run = 0
    for after_lines in (1, 3, 6):
        expected_keys += finished()
        killed = run_killed(env, "keys", "rotate", "--batch-size", "1", after_lines=after_lines)
        killed_mid_run += killed
        # Whatever the point of the kill, every data key opens: under the old key or the new.
        by_kek = check_every_recording(env)
        assert sum(by_kek.values()) == total
        assert set(by_kek) <= set(key_ids(key_file(tmp_path)))
    assert killed_mid_run  # at least one kill landed before the run ended
    expected_keys += finished()
    result = invoke(env, "keys", "rotate", "--batch-size", "1", "--json")
    assert result.exit_code == 0, result.output
    ids = key_ids(key_file(tmp_path))
    assert len(ids) == expected_keys  # each killed run resumed the unfinished rotation
    assert check_every_recording(env) == {ids[-1]: total}
    verify = invoke(env, "verify", "--all")
    assert verify.exit_code == 0, verify.output
