"""Run the ``recarchive`` command the way a user does: its arguments, environment,
working directory and standard input in; its output and exit status out.

``run_cli`` runs the command in this process, through the same entry point as the
console script (:func:`recarchive.cli.main`), with click's isolation of the standard
streams and of the environment: a run costs what the command costs, not a Python
start-up and the imports (about a second each). Tests of what only a process shows
(signals, exit on a killed worker, a port in use, the installed entry point) use
``run_cli.process``, which starts ``python -m recarchive``; so does ``run_cli`` in a
test marked ``@pytest.mark.process``: the smoke tests of the real entry point.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from click.testing import CliRunner

from recarchive.cli import main
from tests.functional.helpers import Result
from tests.logscan import SESSION


def clean_environment(env: Mapping[str, str] | None) -> dict[str, str]:
    """This process's environment without RECARCHIVE_*/AWS_* variables, plus ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RECARCHIVE_", "AWS_"))}
    clean.update(env or {})
    return clean


def run_process(
    cwd: Path,
    args: tuple[str, ...],
    env: Mapping[str, str] | None,
    stdin: str | None,
    timeout: float,
) -> Result:
    """``python -m recarchive ARGS`` as a child process."""
    completed = subprocess.run(
        [sys.executable, "-m", "recarchive", *args],
        cwd=cwd,
        env=clean_environment(env),
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    SESSION.scan_output(f"recarchive {' '.join(args[:2])}", completed.stderr)
    return Result(completed.returncode, completed.stdout, completed.stderr)


@contextlib.contextmanager
def _process_state(cwd: Path, args: tuple[str, ...]) -> Iterator[None]:
    """What a command may change in its process, put back afterwards: the working
    directory, argv, the signal handlers a service installs, recarchive's logging."""
    saved_cwd, saved_argv = os.getcwd(), sys.argv
    saved_signals = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    ours = logging.getLogger("recarchive")
    saved_logging = (ours.handlers[:], ours.level, ours.propagate)
    os.chdir(cwd)
    sys.argv = ["recarchive", *args]
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        for number, handler in saved_signals.items():
            signal.signal(number, handler)
        ours.handlers[:], ours.level, ours.propagate = saved_logging


def run_in_process(
    cwd: Path, args: tuple[str, ...], env: Mapping[str, str] | None, stdin: str | None
) -> Result:
    """``recarchive ARGS`` through the console script's entry point, in this process."""
    foreign: dict[str, str | None] = {
        name: None for name in os.environ if name.startswith(("RECARCHIVE_", "AWS_"))
    }
    status: int = 0
    with (
        CliRunner().isolation(input=stdin, env={**foreign, **(env or {})}) as (stdout, stderr, _),
        _process_state(cwd, args),
    ):
        try:
            main()
        except SystemExit as exc:
            if isinstance(exc.code, int) or exc.code is None:
                status = exc.code or 0
            else:  # sys.exit("message"): printed, status 1, as the interpreter does
                print(exc.code, file=sys.stderr)
                status = 1
        except BaseException:  # an uncaught exception: the traceback a process would print
            traceback.print_exc(file=sys.stderr)
            status = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        out = stdout.getvalue().decode("utf-8", "replace")
        err = stderr.getvalue().decode("utf-8", "replace")
    SESSION.scan_output(f"recarchive {' '.join(args[:2])}", err)
    return Result(status, out, err)


class CommandRunner:
    """``run(*ARGS, env=…, stdin=…)`` runs ``recarchive ARGS`` in ``cwd`` with only the
    given RECARCHIVE_* variables; in this process unless ``process`` is set."""

    def __init__(self, cwd: Path, *, process: bool = False) -> None:
        self.cwd = cwd
        self.in_process = not process

    def __call__(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        stdin: str | None = None,
        timeout: float = 120,
    ) -> Result:
        if self.in_process:
            return run_in_process(self.cwd, args, env, stdin)
        return run_process(self.cwd, args, env, stdin, timeout)

    @property
    def process(self) -> CommandRunner:
        """The same runner, starting ``python -m recarchive`` as a child process."""
        return CommandRunner(self.cwd, process=True)


def runner(cwd: Path, *, process: bool = False) -> CommandRunner:
    """Run ``recarchive ARGS`` in ``cwd`` with only the given RECARCHIVE_* variables."""
    return CommandRunner(cwd, process=process)


@pytest.fixture
def run_cli(request: pytest.FixtureRequest, tmp_path: Path) -> CommandRunner:
    """Run ``recarchive ARGS`` in ``tmp_path`` with only the given RECARCHIVE_* variables
    (as a child process in a test marked ``process``)."""
    return CommandRunner(tmp_path, process=request.node.get_closest_marker("process") is not None)


@pytest.fixture(scope="module")
def run_module_cli(tmp_path_factory: pytest.TempPathFactory) -> CommandRunner:
    """:func:`run_cli` for module-scoped fixtures: one working directory per module."""
    return CommandRunner(tmp_path_factory.mktemp("cwd"))
