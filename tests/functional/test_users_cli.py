"""``recarchive users`` as an administrator runs it: tokens shown once, listing, errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from recarchive.access.models import AuditEvent, Role
from recarchive.access.services import InvalidToken, authenticate
from recarchive.access.users import add_user
from recarchive.cli.staff import TOKEN_ENV
from recarchive.cli.users_cmd import may_bootstrap
from recarchive.config import load_settings
from recarchive.runtime import Runtime
from tests.actors import ADMIN
from tests.functional.helpers import Runner, assert_one_line_error, error_lines

PEPPER = "functional-test-token-pepper-0123456789abcdef"
TOKEN = re.compile(r"^rca_([0-9a-f]{32})_[A-Za-z0-9_-]{43}$")


@pytest.fixture
def base_env(catalogue_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "RECARCHIVE_CATALOGUE_URL": catalogue_url,
        "RECARCHIVE_GENERAL_DATA_DIR": str(tmp_path / "var"),
        "RECARCHIVE_TOKEN_PEPPER": PEPPER,
    }


@pytest.fixture
def runtime(base_env: dict[str, str]) -> Iterator[Runtime]:
    runtime = Runtime(load_settings(env=base_env))
    yield runtime
    runtime.close()


@pytest.fixture
def env(base_env: dict[str, str], runtime: Runtime) -> dict[str, str]:
    """The environment of an admin acting with their own token."""
    token = add_user(runtime, unique("admin"), Role.ADMIN, actor=ADMIN).token
    return {**base_env, TOKEN_ENV: token}


def unique(prefix: str) -> str:
    """A user name not used by other tests sharing the module's catalogue."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.mark.process
def test_add_prints_a_token_that_authenticates(
    run_cli: Runner, env: dict[str, str], runtime: Runtime
) -> None:
    name = unique("kim")
    result = run_cli("users", "add", name, "--role", "dispute_handler", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout  # only the token: `TOKEN=$(recarchive users add …)`
    match = TOKEN.match(lines[0])
    assert match, lines[0]
    assert f"Give this token to {name} now: it cannot be shown again." in result.stderr
    assert lines[0] not in result.stderr

    principal = authenticate(runtime, lines[0])
    assert (principal.user_name, principal.role) == (name, Role.DISPUTE_HANDLER)
    assert principal.token_id.hex == match.group(1)

    listed = run_cli("users", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith(name))
    assert row.split()[1:2] == ["dispute_handler"]
    assert row.split()[-3:-2] == ["1"]  # active tokens, before the last-used time
    assert lines[0] not in listed.stdout

    revoked = run_cli("users", "revoke", match.group(1), env=env)
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.strip().endswith(f"of {name} revoked")
    with pytest.raises(InvalidToken):
        authenticate(runtime, lines[0])


def test_token_then_disable(run_cli: Runner, env: dict[str, str], runtime: Runtime) -> None:
    name = unique("lee")
    assert run_cli("users", "add", name, "--role", "auditor", env=env).returncode == 0
    second = run_cli("users", "token", name, "--days", "7", env=env)
    assert second.returncode == 0, second.stderr
    token = second.stdout.strip()
    assert authenticate(runtime, token).user_name == name

    disabled = run_cli("users", "disable", name, env=env)
    assert disabled.returncode == 0, disabled.stderr
    assert disabled.stdout.strip() == f"user {name} disabled; 2 token(s) revoked"
    with pytest.raises(InvalidToken):
        authenticate(runtime, token)
    listed = run_cli("users", "list", env=env)
    row = next(line for line in listed.stdout.splitlines() if line.startswith(name))
    assert row.split()[4] == "0"  # name, role, created, disabled, tokens


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("add", "mia", "--role", "boss"), ("unknown role 'boss'", "qa_trainer")),
        (("add", "Mia", "--role", "auditor"), ("user name 'Mia' is not valid",)),
        (("add", "mia", "--role", "auditor", "--days", "0"), ("token lifetime 0 days",)),
        (("token", "nobody"), ("no user 'nobody'",)),
        (("disable", "nobody"), ("no user 'nobody'",)),
        (("revoke", "0" * 32), ("no token 00000000-0000-0000-0000-000000000000",)),
    ],
)
def test_errors_are_one_line(
    run_cli: Runner, env: dict[str, str], args: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    assert_one_line_error(run_cli("users", *args, env=env), *fragments)


def test_duplicate_user_is_one_line(run_cli: Runner, env: dict[str, str]) -> None:
    name = unique("noa")
    assert run_cli("users", "add", name, "--role", "auditor", env=env).returncode == 0
    again = run_cli("users", "add", name, "--role", "admin", env=env)
    assert_one_line_error(again, f"user '{name}' already exists")
    assert again.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ("add", "mia", "--role", "auditor"),
        ("token", "mia"),
        ("revoke", "0" * 32),
        ("disable", "mia"),
        ("list",),
        ("tokens", "mia"),
    ],
)
def test_every_users_command_is_an_admins(
    run_cli: Runner, base_env: dict[str, str], runtime: Runtime, args: tuple[str, ...]
) -> None:
    trainer = add_user(runtime, unique("tia"), Role.QA_TRAINER, actor=ADMIN).token
    refused = run_cli("users", *args, env={**base_env, TOKEN_ENV: trainer})
    assert_one_line_error(refused, "role qa_trainer may not manage users")
    if args[0] != "token":  # without a token, root's `users token` is the bootstrap
        anonymous = run_cli("users", *args, env=base_env)
        assert anonymous.returncode == 2, anonymous.stderr
        assert "give your API token" in anonymous.stderr or "admin's API token" in anonymous.stderr


def test_tokens_lists_a_users_tokens_without_secrets(
    run_cli: Runner, env: dict[str, str], runtime: Runtime
) -> None:
    name = unique("uma")
    first = run_cli("users", "add", name, "--role", "auditor", "--description", "desk", env=env)
    second = run_cli("users", "token", name, "--days", "3", "--description", "laptop", env=env)
    first_id = TOKEN.match(first.stdout.strip()).group(1)  # type: ignore[union-attr]
    assert run_cli("users", "revoke", first_id, env=env).returncode == 0
    listed = run_cli("users", "tokens", name, env=env)
    assert listed.returncode == 0, listed.stderr
    rows = listed.stdout.splitlines()[1:]
    assert [row.split()[1] for row in rows] == ["active", "revoked"]  # newest first
    assert rows[0].endswith("laptop")
    assert rows[1].endswith("desk")
    assert second.stdout.strip() not in listed.stdout
    assert first.stdout.strip() not in listed.stdout


def test_the_last_admin_cannot_be_disabled(run_cli: Runner, catalogue_url: str, tmp_path: Path,
                                           empty_catalogue_url: str) -> None:  # fmt: skip
    env = {
        "RECARCHIVE_CATALOGUE_URL": empty_catalogue_url,
        "RECARCHIVE_GENERAL_DATA_DIR": str(tmp_path / "lone"),
        "RECARCHIVE_TOKEN_PEPPER": PEPPER,
    }
    assert run_cli("init", env=env).returncode == 0
    runtime = Runtime(load_settings(env=env))
    try:
        token = add_user(runtime, "only-admin", Role.ADMIN, actor=ADMIN).token
    finally:
        runtime.close()
    refused = run_cli("users", "disable", "only-admin", env={**env, TOKEN_ENV: token})
    assert_one_line_error(refused, "last enabled admin")


def _as_nobody() -> list[str]:
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.mark.skipif(os.geteuid() != 0, reason="the bootstrap is root's: run as root to test it")
def test_root_bootstraps_an_admin_only_while_no_admin_can_act(
    run_cli: Runner, tmp_path: Path, empty_catalogue_url: str
) -> None:
    env = {
        "RECARCHIVE_CATALOGUE_URL": empty_catalogue_url,
        "RECARCHIVE_GENERAL_DATA_DIR": str(tmp_path / "boot"),
        "RECARCHIVE_TOKEN_PEPPER": PEPPER,
    }
    assert run_cli("init", env=env).returncode == 0
    # Another OS user gets nowhere without a token.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RECARCHIVE_")}
    nobody = subprocess.run(
        [*_as_nobody(), sys.executable, "-m", "recarchive", "users", "add", "eve", "--role",
         "admin"],
        cwd="/", env={**clean, **env}, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert nobody.returncode == 2, nobody.stderr
    assert "only root on the archive's host, or the account that owns" in nobody.stderr

    first = run_cli("users", "add", "first", "--role", "admin", env=env)
    assert first.returncode == 0, first.stderr
    assert "bootstrap: first is an admin" in first.stderr
    token = first.stdout.strip()
    # An admin can act now: no second bootstrap, of a new admin or a token.
    again = run_cli("users", "add", "second", "--role", "admin", env=env)
    assert_one_line_error(again, "admin 'first' can already manage users")
    rekey = run_cli("users", "token", "first", env=env)
    assert_one_line_error(rekey, "admin 'first' can already manage users")
    # The admin's only token revoked (or expired): root may issue that admin a new one.
    token_id = TOKEN.match(token).group(1)  # type: ignore[union-attr]
    assert run_cli("users", "revoke", token_id, env={**env, TOKEN_ENV: token}).returncode == 0
    assert_one_line_error(run_cli("users", "token", "nosuch", env=env), "no user 'nosuch'")
    renewed = run_cli("users", "token", "first", env=env)
    assert renewed.returncode == 0, renewed.stderr
    listed = run_cli("users", "list", env={**env, TOKEN_ENV: renewed.stdout.strip()})
    assert listed.returncode == 0, listed.stderr
    assert error_lines(listed) == []

    runtime = Runtime(load_settings(env=env))
    try:
        with runtime.sessions() as session:
            events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
    finally:
        runtime.close()
    changes = [(e.action, e.actor.split("@")[0], e.details.get("bootstrap")) for e in events]
    assert changes == [
        ("users.add", "system:root", True),
        ("tokens.issue", "system:root", True),
        ("tokens.revoke", "first", None),
        ("tokens.issue", "system:root", True),
        ("users.list", "first", None),
    ]


def test_the_bootstrap_is_roots_or_the_secrets_owners(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    owner = secrets.stat().st_uid
    assert may_bootstrap(0, tmp_path / "missing")  # root, always
    assert may_bootstrap(owner, secrets)
    assert not may_bootstrap(owner + 4242, secrets)
    assert not may_bootstrap(owner + 4242, tmp_path / "missing")
