"""``python -m recarchive`` as operators run it: processes, their output, waiting on them."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from tests.functional.helpers import Result
from tests.logscan import SESSION

#: Seconds a recarchive process waits for a new catalogue connection: a stopped
#: server refuses at once, so this only bounds a server that hangs.
CONNECT_TIMEOUT_S = "2"


def clean_environment(env: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without RECARCHIVE_*/AWS_* variables, plus ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RECARCHIVE_", "AWS_"))}
    clean["RECARCHIVE_CATALOGUE_CONNECT_TIMEOUT_S"] = CONNECT_TIMEOUT_S
    clean.update(env)
    return clean


@dataclasses.dataclass
class Started:
    """A running ``recarchive`` process and the files its output goes to."""

    name: str
    process: subprocess.Popen[str]
    out: Path
    err: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.stderr().splitlines()[-lines:])

    def stop(self, timeout: float = 60) -> Result:
        """SIGTERM, wait for the exit; the process's status and output."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        return self.finish(timeout)

    def finish(self, timeout: float = 60) -> Result:
        """Wait for the process to end by itself; its status and output."""
        self.process.wait(timeout=timeout)
        stderr = self.stderr()
        SESSION.scan_output(f"recarchive {self.name}", stderr)
        return Result(self.process.returncode, self.out.read_text(errors="replace"), stderr)


class Recarchive:
    """``python -m recarchive`` processes run in ``cwd``; :meth:`close` kills the leftovers."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.processes: list[subprocess.Popen[str]] = []
        self.started = 0

    def start(self, env: Mapping[str, str], *args: str) -> Started:
        """Start ``recarchive ARGS``; its stdout and stderr go to files (never a full pipe)."""
        self.started += 1
        out = self.cwd / f"process-{self.started}.out"
        err = self.cwd / f"process-{self.started}.err"
        with out.open("w") as stdout, err.open("w") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "recarchive", *args],
                cwd=self.cwd,
                env=clean_environment(env),
                stdout=stdout,
                stderr=stderr,
                text=True,
                start_new_session=True,  # close() ends worker processes with their parent
            )
        self.processes.append(process)
        return Started(" ".join(args[:2]), process, out, err)

    def run(self, env: Mapping[str, str], *args: str, timeout: float = 120) -> Result:
        completed = subprocess.run(
            [sys.executable, "-m", "recarchive", *args],
            cwd=self.cwd,
            env=clean_environment(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        SESSION.scan_output(f"recarchive {' '.join(args[:2])}", completed.stderr)
        return Result(completed.returncode, completed.stdout, completed.stderr)

    def close(self) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)


def wait_for(condition: Callable[[], bool], process: Started, *, timeout: float, what: str) -> None:
    """Poll ``condition`` while ``process`` runs; fail if it exits or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.alive(), (
            f"{process.name} exited ({process.process.returncode}) while waiting for {what}:\n"
            f"{process.tail()}"
        )
        assert time.monotonic() < deadline, f"no {what} after {timeout:g} s:\n{process.tail()}"
        time.sleep(0.2)
