"""An embedded installation keeps its files to its owner; `init` and `config check` say when not.

The commands run in-process (click's CliRunner) under the common umask 0o022,
with which a plain ``mkdir``/``open`` would leave everything readable by
every local user. Modes are read from ``st_mode``: the suite may run as root,
for whom ``os.access`` says yes to everything.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result

from recarchive.catalogue.database import create_catalogue_engine
from tests.functional.embedded import configure, generate, invoke

SHARED_BITS = stat.S_IRWXG | stat.S_IRWXO


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def warnings_of(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning: ")]


def loose_paths(root: Path) -> list[str]:
    """Everything under ``root`` (and itself) that a group or other users can reach."""
    found = [root, *root.rglob("*")]
    return [f"{p} {mode(p):04o}" for p in found if mode(p) & SHARED_BITS]


def test_an_ingested_recording_leaves_nothing_readable_by_others(tmp_path: Path) -> None:
    spool = tmp_path / "pbx"
    manifest = generate(spool, 2)
    calls = manifest["calls"]
    assert isinstance(calls, list)
    archived = sum(1 for call in calls if call["expected"] == "archived")
    assert archived >= 1
    env = configure(tmp_path, spool)

    init = invoke(env, "init")
    assert init.exit_code == 0, init.output
    assert warnings_of(init) == []
    ingest = invoke(env, "ingest", "--once", "--json")
    assert ingest.exit_code == 0, ingest.output
    assert json.loads(ingest.stdout)["archived"] == archived

    install = tmp_path / "install"
    data = install / "var"
    objects = [p for p in (data / "objects").rglob("*") if p.is_file()]
    assert any(".recarchive" not in p.parts for p in objects)  # the recordings themselves
    assert any(p.suffix == ".json" for p in objects)  # their sidecars
    for internal in ("tmp", "meta"):
        assert (data / "objects" / ".recarchive" / internal).is_dir()
    assert (data / "work").is_dir()
    done = spool / "done"
    assert [p for p in done.rglob("*") if p.is_file()]  # after_archive = "move"
    engine = create_catalogue_engine(f"sqlite:///{data / 'recarchive.db'}")
    try:
        with engine.connect() as connection:  # WAL and shared memory exist while connected
            connection.exec_driver_sql("SELECT count(*) FROM recordings").scalar()
            wal, shm = data / "recarchive.db-wal", data / "recarchive.db-shm"
            assert wal.is_file()
            assert shm.is_file()
            assert loose_paths(install) == []
    finally:
        engine.dispose()
    assert mode(done) == 0o700
    assert [mode(p) for p in done.rglob("*") if p.is_dir()] == [0o700] * len(
        [p for p in done.rglob("*") if p.is_dir()]
    )


def test_init_and_config_check_warn_about_a_loosened_catalogue(tmp_path: Path) -> None:
    data = tmp_path / "var"
    env = {"RECARCHIVE_GENERAL_DATA_DIR": str(data)}
    first = invoke(env, "init")
    assert first.exit_code == 0, first.output
    assert warnings_of(first) == []
    database = data / "recarchive.db"
    assert mode(database) == 0o600
    assert mode(data) == 0o700
    database.chmod(0o644)
    data.chmod(0o755)
    expected = [
        f"warning: {data} has mode 0755, expected 0700 (fix: chmod 700 {data})",
        f"warning: {database} has mode 0644, expected 0600 (fix: chmod 600 {database})",
    ]

    check = invoke(env, "config", "check")
    assert check.exit_code == 0, check.output
    assert "reachable" in check.stdout
    assert warnings_of(check)[:2] == expected
    # SQLite gives the WAL the mode of the database file: loose as well while connected.
    assert f"warning: {database}-wal has mode 0644" in check.stderr

    again = invoke(env, "init")
    assert again.exit_code == 0, again.output
    assert "schema current" in again.stdout
    assert warnings_of(again)[:2] == expected
    assert mode(database) == 0o644  # init tightens only what it creates itself

    database.chmod(0o600)
    data.chmod(0o700)
    for name in ("-wal", "-shm"):
        path = data / f"recarchive.db{name}"
        if path.exists():
            path.chmod(0o600)
    fixed = invoke(env, "config", "check")
    assert fixed.exit_code == 0, fixed.output
    assert warnings_of(fixed) == []


def test_a_loosened_store_root_is_reported_with_its_fix(tmp_path: Path) -> None:
    env = {
        "RECARCHIVE_GENERAL_DATA_DIR": str(tmp_path / "var"),
        "RECARCHIVE_STORAGE_ROOT": str(tmp_path / "objects"),
    }
    assert invoke(env, "init").exit_code == 0
    (tmp_path / "objects").chmod(0o755)
    check = invoke(env, "config", "check")
    assert check.exit_code == 0, check.output
    assert warnings_of(check) == [
        f"warning: {tmp_path / 'objects'} has mode 0755, expected 0700 "
        f"(fix: chmod 700 {tmp_path / 'objects'})"
    ]


def test_init_creates_the_key_file_once_private_and_never_replaces_it(tmp_path: Path) -> None:
    data = tmp_path / "var"
    env = {"RECARCHIVE_GENERAL_DATA_DIR": str(data), "RECARCHIVE_ENCRYPTION_ENABLED": "true"}
    first = invoke(env, "init")
    assert first.exit_code == 0, first.output
    key_file = data / "secrets" / "key-encryption-keys"
    assert f"key-encryption keys in {key_file}: created (current file-" in first.stdout
    assert mode(key_file) == 0o600
    assert mode(key_file.parent) == 0o700
    assert "Losing this file loses every encrypted recording" in key_file.read_text()
    before = key_file.read_bytes()
    again = invoke(env, "init")
    assert again.exit_code == 0, again.output
    assert f"key-encryption keys in {key_file}: exists" in again.stdout
    assert key_file.read_bytes() == before
    key_file.chmod(0o644)
    assert f"warning: {key_file} has mode 0644" in invoke(env, "init").stderr


def test_init_without_encryption_makes_no_key_file(tmp_path: Path) -> None:
    data = tmp_path / "var"
    result = invoke({"RECARCHIVE_GENERAL_DATA_DIR": str(data)}, "init")
    assert result.exit_code == 0, result.output
    assert "key-encryption" not in result.stdout
    assert not (data / "secrets" / "key-encryption-keys").exists()
