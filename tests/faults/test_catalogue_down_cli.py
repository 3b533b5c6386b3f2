"""Every command run while the catalogue is down says so in one line and exits 1.

Issue 19: a command that cannot reach the catalogue prints ONE line on
stderr naming the catalogue and why, exits with status 1, and never shows a
traceback, an SQL statement or its parameters. The catalogue's URL carries a
password here (the dedicated server trusts every local connection, so any
password works): it must not appear either.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest

from tests.conftest import PostgresDatabases
from tests.faults.installation import installation_env
from tests.faults.postgres import DedicatedPostgres
from tests.faults.processes import Recarchive
from tests.functional.helpers import Result, error_lines

PASSWORD = "s3cret-faults-pw"

COMMANDS = {
    "expire": ["expire"],
    "reconcile": ["reconcile"],
    "verify --all": ["verify", "--all"],
    "hold list": ["hold", "list"],
    "quarantine list": ["quarantine", "list"],
    "audit verify": ["audit", "verify"],
    "scheduler --once": ["scheduler", "--once"],
    "ingest --once": ["ingest", "--once"],
    "lookup": ["lookup", "--customer", "C-1"],
    "status": ["status"],
}

#: What an SQL statement or its parameters look like in an error message.
SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE FROM|FROM \w+ WHERE)\b|\[SQL:|\[parameters", re.I)


@pytest.fixture(scope="module")
def down_installation(
    fault_databases: PostgresDatabases,
    dedicated_postgres: DedicatedPostgres,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Recarchive, dict[str, str]]]:
    """An initialised installation with a user, then its catalogue server stopped."""
    tmp_path = tmp_path_factory.mktemp("catalogue-down")
    name = fault_databases.create(migrated=True).rsplit("/", 1)[1]
    url = dedicated_postgres.url_for(name, password=PASSWORD)
    env = installation_env(tmp_path, url)
    runner = Recarchive(tmp_path)
    assert runner.run(env, "init").returncode == 0
    admin = runner.run(env, "users", "add", "setup", "--role", "admin")  # the first admin
    assert admin.returncode == 0, admin.stderr
    added = runner.run({**env, "RECARCHIVE_USER_TOKEN": admin.stdout.strip()},
                       "users", "add", "trainer", "--role", "qa_trainer")  # fmt: skip
    assert added.returncode == 0, added.stderr
    [token] = [word for word in added.stdout.split() if word.startswith("rca_")]
    env["RECARCHIVE_USER_TOKEN"] = token
    try:
        with dedicated_postgres.down():
            yield runner, env
    finally:
        runner.close()


def assert_catalogue_unavailable(result: Result, port: int) -> None:
    lines = error_lines(result)
    last = "\n".join(result.stderr.strip().splitlines()[-3:])
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, f"a traceback on stderr, ending:\n{last}"
    assert len(lines) == 1, f"{len(lines)} lines on stderr, ending:\n{last}"
    [line] = lines
    assert line.startswith("Error: "), line
    assert "catalogue" in line.lower(), line
    assert f"127.0.0.1:{port}" in line, f"the line does not name the catalogue: {line}"
    assert "refused" in line.lower(), f"the line does not say why: {line}"
    assert PASSWORD not in result.stderr + result.stdout
    assert not SQL.search(result.stderr), result.stderr


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_command_with_the_catalogue_down_says_so_in_one_line(
    command: str,
    down_installation: tuple[Recarchive, dict[str, str]],
    dedicated_postgres: DedicatedPostgres,
) -> None:
    runner, env = down_installation
    result = runner.run(env, *COMMANDS[command], timeout=60)
    assert_catalogue_unavailable(result, dedicated_postgres.port)


def test_the_fixture_really_stopped_the_catalogue(
    down_installation: tuple[Recarchive, dict[str, str]],
) -> None:
    """A check of the test itself: the server is down, not merely unreachable by name."""
    _runner, env = down_installation
    port = int(env["RECARCHIVE_CATALOGUE_URL"].rsplit(":", 1)[1].split("/")[0])
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
        sock.connect(("127.0.0.1", port))
