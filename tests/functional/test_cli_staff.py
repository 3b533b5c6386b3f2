"""No staff action through the CLI without the person's own token, of a role that may do it.

Every command is classed here as a person's (it takes ``--token-file`` and
the role checks of :mod:`recarchive.access.policy`) or the system's (run by
an operator or a timer, recorded as the system with the OS user and host).
A new command that is in neither list fails :func:`test_every_command_is_classed`,
so nobody adds a staff action that skips the token by accident.

Each person's command is run in-process three ways: with no token (usage
error, exit 2), with a token that is not valid (refused), and with a valid
token of a role that may not do it (refused by the service). None of them
may change the catalogue: the audit log stays as it was.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from recarchive.access.models import AuditEvent, Role
from recarchive.access.policy import Forbidden
from recarchive.access.users import add_user
from recarchive.cli import cli
from recarchive.cli.staff import TOKEN_ENV
from recarchive.config import load_settings
from recarchive.runtime import Runtime
from tests.actors import ADMIN

ID = str(uuid.UUID(int=1))
#: A file a command reads (outside the directory a refused command must leave empty).
FORM = str(Path(__file__).resolve().parents[2] / "docs" / "examples" / "qa-form.json")
_Q, _D, _A, _P = Role.QA_TRAINER, Role.DISPUTE_HANDLER, Role.AUDITOR, Role.PRIVACY_OFFICER

#: A person's commands: arguments that parse, and a role that may not run the command.
STAFF: Mapping[str, tuple[tuple[str, ...], Role]] = {
    "audit export": ((), _Q),
    "case assign": (("D-1", "mia"), _Q),
    "case close": (("D-1", "--reason", "r"), _Q),
    "case export": (("D-1", "-o", "x.zip"), _Q),
    "case link": (("D-1", ID), _A),
    "case list": ((), _Q),
    "case note": (("D-1", "text"), _A),
    "case open": (("D-1", "--kind", "billing"), _Q),
    "case show": (("D-1",), _A),
    "case unlink": (("D-1", ID), _Q),
    "get": ((ID, "-o", "out.wav", "--purpose", "training"), _A),
    "hold add": ((ID, "--case", "D-1", "--reason", "r"), _Q),
    "hold list": ((), _Q),
    "hold release": ((ID, "--reason", "r"), _Q),
    "lookup": (("--customer", "C-1"), _A),
    "qa clip add": (
        (ID, "--start", "0:01", "--end", "0:02", "--title", "t", "--purpose", "p"),
        _D,
    ),
    "qa clip delete": ((ID,), _D),
    "qa clip keep": ((ID, "--until", "2030-01-01", "--reason", "r"), _D),
    "qa clip list": ((), _D),
    "qa acknowledge": ((ID,), _Q),
    "qa answer": ((ID, "--comment", "c"), Role.AGENT),
    "qa dispute": ((ID, "--comment", "c"), _Q),
    "qa evaluate": ((ID, "--form", "f", "--answers", FORM), _P),
    "qa evaluation attach-notes": ((ID, ID), _D),
    "qa evaluation detach-note": ((ID, ID), _P),
    "qa evaluation revise": ((ID, "--answers", FORM), _D),
    "qa evaluation show": ((ID,), _A),
    "qa form add": ((FORM,), _D),
    "qa my-evaluations": ((), _Q),
    "qa form list": ((), _P),
    "qa form revise": (("f", FORM), _D),
    "qa form show": (("f",), _D),
    "qa note add": ((ID, "--at", "0:01", "--text", "t"), _D),
    "qa note delete": ((ID,), _P),
    "qa note list": ((ID,), _D),
    "qa plan add": (("p", "--calls", "2", "--per", "week"), _D),
    "qa plan list": ((), _D),
    "qa plan revise": (("p", "--calls", "2", "--per", "week"), _D),
    "qa plan show": (("p",), _D),
    "qa report": (("--period", "week", "--from", "2026-W40", "--to", "2026-W41"), _D),
    "qa sample run": (("p", "2026-W40"), _D),
    "qa sample show": ((ID,), _D),
    "qa sample verify": ((ID,), _D),
    "quarantine retry": ((ID,), _D),
    "retention apply": (("--execute",), _Q),
    "subject erase": (("--customer", "C-1", "--yes"), _D),
    "subject export": (("--customer", "C-1", "-o", "x.zip"), _D),
    "subject lift": ((ID, "--reason", "r"), _D),
    "subject object": (("--customer", "C-1"), _D),
    "subject rectify": ((ID, "--customer", "C-2", "--reason", "r"), _D),
    "subject requests": ((), _D),
    "subject restrict": (("--customer", "C-1", "--purpose", "dispute", "--case", "D-1"), _D),
    "subject restrictions": ((), _D),
    "subject show": (("--customer", "C-1"), _D),
    "tag": ((ID, "--add", "billing"), _Q),
    "users add": (("mia", "--role", "auditor"), _Q),
    "users agent-link": (("mia", "a-1"), Role.AGENT),
    "users agent-unlink": (("mia", "a-1"), _Q),
    "users disable": (("mia",), _Q),
    "users list": ((), _Q),
    "users revoke": (("0" * 32,), _Q),
    "users show": (("mia",), _Q),
    "users token": (("mia",), _Q),
    "users tokens": (("mia",), _Q),
}

#: The system's commands: set-up, the pipeline, integrity checks and operator views.
SYSTEM = {
    "audit anchors export",
    "audit anchors publish",
    "audit verify",
    "config check",
    "config show",
    "directory import",
    "evidence key",
    "evidence verify",
    "expire",
    "ingest",
    "init",
    "keys encrypt-existing",
    "keys retire",
    "keys rotate",
    "quarantine list",
    "reconcile",
    "restore-check",
    "scheduler",
    "serve",
    "status",
    "store ls",
    "store selftest",
    "verify",
}

#: Commands whose run without a token is root's bootstrap of an admin, not a refusal.
BOOTSTRAP = {"users token"}


def leaves(
    command: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, click.Command]]:
    if isinstance(command, click.Group):
        context = click.Context(command)
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            assert sub is not None
            yield from leaves(sub, (*path, name))
    else:
        yield " ".join(path), command


@pytest.fixture(scope="module")
def installation(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[dict[str, str], Runtime]]:
    data = tmp_path_factory.mktemp("staff")
    env = {
        "RECARCHIVE_GENERAL_DATA_DIR": str(data / "var"),
        "RECARCHIVE_CATALOGUE_URL": f"sqlite:///{data / 'catalogue.db'}",
    }
    assert run(env, "init").exit_code == 0
    runtime = Runtime(load_settings(env=env))
    yield env, runtime
    runtime.close()


def run(env: Mapping[str, str], *args: str) -> Result:
    foreign: dict[str, str | None] = {
        name: None for name in os.environ if name.startswith(("RECARCHIVE_", "AWS_"))
    }
    return CliRunner().invoke(cli, list(args), env={**foreign, **env})


def audit_entries(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def test_every_command_is_classed() -> None:
    found = dict(leaves(cli))
    assert set(found) == set(STAFF) | SYSTEM, "class every new command as STAFF or SYSTEM here"
    assert not set(STAFF) & SYSTEM
    for name in STAFF:
        options = {param.name for param in found[name].params}
        assert "token_file" in options, f"{name} acts for a person: it must take --token-file"
    for name in SYSTEM:
        options = {param.name for param in found[name].params}
        assert "token_file" not in options, f"{name} is the system's: move it to STAFF"


@pytest.mark.parametrize("name", sorted(STAFF))
def test_a_persons_command_needs_a_valid_token_of_a_role_that_may(
    installation: tuple[dict[str, str], Runtime],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
) -> None:
    env, runtime = installation
    monkeypatch.chdir(tmp_path)  # where -o would write
    args, refused_role = STAFF[name]
    before = audit_entries(runtime)

    if name not in BOOTSTRAP:
        anonymous = run(env, *name.split(), *args)
        assert anonymous.exit_code == 2, anonymous.output
        assert "API token" in anonymous.output

    invalid = run({**env, TOKEN_ENV: f"rca_{'0' * 32}_{'A' * 43}"}, *name.split(), *args)
    assert invalid.exit_code == 1, invalid.output
    assert "invalid or expired token" in invalid.output

    token = add_user(runtime, f"u-{uuid.uuid4().hex[:10]}", refused_role, actor=ADMIN).token
    after_setup = audit_entries(runtime)
    forbidden = run({**env, TOKEN_ENV: token}, *name.split(), *args)
    assert isinstance(forbidden.exception, Forbidden), forbidden.output
    assert f"role {refused_role.value} may not" in str(forbidden.exception)

    assert before + 2 == after_setup == audit_entries(runtime), "a refused command changed nothing"
    assert not any(tmp_path.iterdir()), "a refused command wrote nothing"
