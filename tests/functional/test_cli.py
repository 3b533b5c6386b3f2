"""The ``recarchive`` command on SQLite and PostgreSQL, and its one-line errors."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.functional.helpers import Runner, assert_one_line_error
from tests.s3env import s3_environment


@pytest.mark.process
def test_help_lists_the_commands(run_cli: Runner) -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("init", "status", "config", "store"):
        assert f"  {command} " in result.stdout


def test_init_twice_then_status(run_cli: Runner, empty_catalogue_url: str, tmp_path: Path) -> None:
    env = {"RECARCHIVE_CATALOGUE_URL": empty_catalogue_url}
    first = run_cli("init", env=env)
    assert first.returncode == 0, first.stderr
    assert "schema empty -> " in first.stdout
    assert "objects: created" in first.stdout
    assert "encryption at rest: off, new recordings are stored in plaintext" in first.stdout
    second = run_cli("init", env=env)
    assert second.returncode == 0, second.stderr
    assert "schema current" in second.stdout
    assert "objects: exists" in second.stdout
    status = run_cli("status", env=env)
    assert status.returncode == 0, status.stderr
    assert "recordings   0 (0 B), customers 0" in status.stdout
    assert "encryption   off: new recordings are stored in plaintext; 0 of 0 encrypted" in (
        status.stdout
    )
    assert (tmp_path / "var" / "objects").is_dir()


def test_embedded_default_lives_in_var(run_cli: Runner, tmp_path: Path) -> None:
    assert run_cli("init").returncode == 0
    assert (tmp_path / "var" / "recarchive.db").is_file()
    selftest = run_cli("store", "selftest")
    assert selftest.returncode == 0, selftest.stderr
    assert "round trip of 256.0 KiB ok" in selftest.stdout
    assert list((tmp_path / "var" / "objects").rglob("*.bin")) == []


def test_status_before_init_says_what_to_do(run_cli: Runner) -> None:
    assert_one_line_error(run_cli("status"), "schema empty", "run `recarchive init`")


def test_config_show_hides_secrets(run_cli: Runner) -> None:
    result = run_cli("config", "show", env={"RECARCHIVE_S3_SECRET_ACCESS_KEY": "hunter2-secret"})
    assert result.returncode == 0, result.stderr
    assert "hunter2-secret" not in result.stdout
    assert '"s3_secret_access_key": true' in result.stdout


@pytest.mark.parametrize(
    ("toml", "fragments"),
    [
        ("[catalogue]\nulr = 'x'\n", ("unknown setting catalogue.ulr",)),
        ("[s3]\nmax_attempts = 'lots'\n", ("setting s3.max_attempts", "recarchive.toml")),
        ("[storage]\nbackend = 'tape'\n", ("setting storage.backend",)),
    ],
)
def test_bad_configuration_is_one_line(
    run_cli: Runner, tmp_path: Path, toml: str, fragments: tuple[str, ...]
) -> None:
    (tmp_path / "recarchive.toml").write_text(toml)
    assert_one_line_error(run_cli("--config", "recarchive.toml", "init"), *fragments)


def test_missing_config_file(run_cli: Runner) -> None:
    assert_one_line_error(run_cli("--config", "nope.toml", "status"), "nope.toml does not exist")


def test_unknown_environment_variable(run_cli: Runner) -> None:
    result = run_cli("status", env={"RECARCHIVE_CATALOG_URL": "sqlite://"})
    assert_one_line_error(result, "RECARCHIVE_CATALOG_URL names no setting")


@pytest.mark.process
def test_unreachable_database(run_cli: Runner) -> None:
    result = run_cli(
        "init",
        env={
            "RECARCHIVE_CATALOGUE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",
            "RECARCHIVE_CATALOGUE_CONNECT_TIMEOUT_S": "2",
        },
    )
    assert_one_line_error(result, "setting catalogue.url", "cannot connect", "127.0.0.1:1")


def test_unreachable_s3_endpoint(run_cli: Runner) -> None:
    result = run_cli(
        "init",
        env={
            "RECARCHIVE_STORAGE_BACKEND": "s3",
            "RECARCHIVE_S3_ENDPOINT_URL": "http://127.0.0.1:1",
            "RECARCHIVE_S3_MAX_ATTEMPTS": "1",
            "RECARCHIVE_S3_CONNECT_TIMEOUT_S": "2",
            "RECARCHIVE_S3_ACCESS_KEY_ID": "x",
            "RECARCHIVE_S3_SECRET_ACCESS_KEY": "y",
        },
    )
    assert_one_line_error(result, "http://127.0.0.1:1")


def _s3_env() -> dict[str, str]:
    return {
        **s3_environment(),
        "RECARCHIVE_S3_BUCKET": f"recarchive-cli-{uuid.uuid4().hex[:10]}",
        "RECARCHIVE_S3_MAX_ATTEMPTS": "1",
    }


@pytest.mark.process
@pytest.mark.s3
def test_init_and_selftest_on_the_s3_server(run_cli: Runner) -> None:
    env = _s3_env()
    first = run_cli("init", env=env)
    assert first.returncode == 0, first.stderr
    assert f"s3 bucket {env['RECARCHIVE_S3_BUCKET']}" in first.stdout
    assert f"{env['RECARCHIVE_S3_BUCKET']} at" in first.stdout
    assert "objects: created" not in first.stdout
    assert ": created\n" in first.stdout
    assert "lifecycle backstop: objects tagged standard after 372 days" in first.stdout
    assert ": exists\n" in run_cli("init", env=env).stdout
    selftest = run_cli("store", "selftest", "--size", str(20 * 1024 * 1024), env=env)
    assert selftest.returncode == 0, selftest.stderr
    assert "round trip of 20.0 MiB ok" in selftest.stdout


@pytest.mark.s3
def test_wrong_s3_secret_is_one_line(run_cli: Runner) -> None:
    env = {**_s3_env(), "RECARCHIVE_S3_SECRET_ACCESS_KEY": "not-the-secret-0123456789"}
    result = run_cli("init", env=env)
    assert_one_line_error(result, "s3.secret_access_key")
    assert "not-the-secret" not in result.stderr


@pytest.mark.s3
def test_missing_bucket_tells_to_run_init(run_cli: Runner) -> None:
    env = _s3_env()
    assert run_cli("init", env=env).returncode == 0  # the catalogue exists, a bucket too
    other = {**env, "RECARCHIVE_S3_BUCKET": f"recarchive-gone-{uuid.uuid4().hex[:10]}"}
    result = run_cli("status", env=other)
    assert_one_line_error(
        result, f"S3 bucket '{other['RECARCHIVE_S3_BUCKET']}' does not exist", "`recarchive init`"
    )


def test_scheduler_once_says_what_it_did_and_why_it_did_nothing(run_cli: Runner) -> None:
    assert run_cli("init").returncode == 0
    first = run_cli("scheduler", "--once")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("nightly run for "), first.stdout
    assert "deleted 0" in first.stdout
    second = run_cli("scheduler", "--once")
    assert second.returncode == 0, second.stderr
    [line] = [x for x in second.stdout.splitlines() if x.startswith("nightly run for ")]
    assert ": already done at " in line
    assert "; next run " in line
