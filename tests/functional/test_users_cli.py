"""``recarchive users`` as an administrator runs it: tokens shown once, listing, errors."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from recarchive.access.models import Role
from recarchive.access.services import InvalidToken, authenticate
from recarchive.config import load_settings
from recarchive.runtime import Runtime
from tests.functional.helpers import Runner, assert_one_line_error

PEPPER = "functional-test-token-pepper-0123456789abcdef"
TOKEN = re.compile(r"^rca_([0-9a-f]{32})_[A-Za-z0-9_-]{43}$")


@pytest.fixture
def env(catalogue_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "RECARCHIVE_CATALOGUE_URL": catalogue_url,
        "RECARCHIVE_GENERAL_DATA_DIR": str(tmp_path / "var"),
        "RECARCHIVE_TOKEN_PEPPER": PEPPER,
    }


@pytest.fixture
def runtime(env: dict[str, str]) -> Iterator[Runtime]:
    runtime = Runtime(load_settings(env=env))
    yield runtime
    runtime.close()


def unique(prefix: str) -> str:
    """A user name not used by other tests sharing the module's catalogue."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_add_prints_a_token_that_authenticates(
    run_cli: Runner, env: dict[str, str], runtime: Runtime
) -> None:
    name = unique("kim")
    result = run_cli("users", "add", name, "--role", "dispute_handler", "--by", "boss", env=env)
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
