"""A PostgreSQL server the fault tests own: made with ``initdb``, stopped abruptly, started again.

The shared test server (``RECARCHIVE_TEST_POSTGRES_URL``) serves every other
test at once, so it cannot be taken away. This one lives in a temporary
directory, listens on a free port of 127.0.0.1 only, trusts every local
connection, and runs with ``fsync=off``. It is stopped with ``pg_ctl stop
-m immediate``: every connection is cut and the server restarts with crash
recovery, as after a crash of PostgreSQL itself. Only the machine crashing
would lose what ``fsync=off`` did not flush; commits stay synchronous, so
nothing acknowledged to recarchive is lost by the stop.

As root, ``initdb`` and the server run as the ``postgres`` system user
(``initdb`` refuses root), with a data directory that user owns.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

#: Where Debian's ``postgresql`` package puts the server binaries, newest version last.
BINARY_GLOB = "/usr/lib/postgresql/*/bin"
SERVER_USER = "postgres"


def find_binaries() -> Path | None:
    """The newest ``/usr/lib/postgresql/N/bin`` holding initdb, pg_ctl and postgres."""
    found = [
        Path(path)
        for path in glob.glob(BINARY_GLOB)
        if all((Path(path) / name).exists() for name in ("initdb", "pg_ctl", "postgres"))
    ]
    found.sort(key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0)
    return found[-1] if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DedicatedPostgres:
    """One PostgreSQL server in ``root``: :meth:`start`, :meth:`crash`, :meth:`outage`."""

    def __init__(self, binaries: Path, root: Path, port: int) -> None:
        self.binaries = binaries
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = port
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            self._as_user = ["runuser", "-u", SERVER_USER, "--"]
        self._lock = threading.Lock()

    @classmethod
    def create(cls, binaries: Path) -> DedicatedPostgres:
        """A fresh cluster on a free port, not yet started."""
        root = Path(tempfile.mkdtemp(prefix="recarchive-faults-pg-"))
        server = cls(binaries, root, free_port())
        if server._as_user:
            entry = pwd.getpwnam(SERVER_USER)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        server._run(
            "initdb", "-D", str(server.data), "-A", "trust", "-U", "postgres",
            "--no-sync", "-E", "UTF8", "--locale", "C",
        )  # fmt: skip
        return server

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str, *, password: str | None = None) -> str:
        """A URL of a database on this server (the password is ignored: trust)."""
        user = f"postgres:{password}" if password else "postgres"
        return f"postgresql+psycopg://{user}@127.0.0.1:{self.port}/{database}"

    def _run(self, binary: str, *args: str) -> None:
        completed = subprocess.run(
            [*self._as_user, str(self.binaries / binary), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if completed.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{binary} {' '.join(args)} failed ({completed.returncode}):\n"
                f"{completed.stdout}{completed.stderr}{tail}"
            )

    def start(self) -> None:
        """Start on the same port and data directory; returns once it accepts connections."""
        # fsync=off: what is written reaches the OS, which outlives an immediate stop
        # (only the machine crashing would lose it). synchronous_commit stays on: off,
        # a commit acknowledged to recarchive could be lost by the stop.
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c shared_buffers=32MB -c max_connections=100"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                  "-w", "-t", "60", "start")  # fmt: skip

    def crash(self) -> None:
        """Stop at once, as a crash or an outage would (``-m immediate``: no checkpoint,
        every connection cut); returns once the port is closed."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "60", "stop")

    def running(self) -> bool:
        pid_file = self.data / "postmaster.pid"
        return pid_file.exists()

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        """The server is stopped (abruptly) inside the block and running again after it."""
        with self._lock:
            self.crash()
            try:
                yield
            finally:
                self.start()

    def outage(self, seconds: float, *, after: float = 0.0) -> Outage:
        """Stop the server ``after`` seconds from now for ``seconds``, in a background thread."""
        outage = Outage(self, seconds, after)
        outage.thread.start()
        return outage

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):
            if self.running():
                self.crash()
        shutil.rmtree(self.root, ignore_errors=True)


class Outage:
    """A server stopped for a while by a background thread.

    ``went_down`` and ``came_back`` are set as it happens; :meth:`wait` joins
    the thread and re-raises what went wrong in it (a server that did not
    come back fails the test that caused the outage, not the next one).
    """

    def __init__(self, server: DedicatedPostgres, seconds: float, after: float) -> None:
        self.server = server
        self.seconds = seconds
        self.after = after
        self.went_down = threading.Event()
        self.came_back = threading.Event()
        self.error: BaseException | None = None
        self.down_at = self.up_at = 0.0
        self.thread = threading.Thread(target=self._run, name="postgres-outage", daemon=True)

    def _run(self) -> None:
        try:
            time.sleep(self.after)
            with self.server.down():
                self.down_at = time.monotonic()
                self.went_down.set()
                time.sleep(self.seconds)
            self.up_at = time.monotonic()
            self.came_back.set()
        except BaseException as exc:  # reported by wait()
            self.error = exc
            self.went_down.set()
            self.came_back.set()

    def wait(self, timeout: float = 120.0) -> None:
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise RuntimeError("the PostgreSQL outage thread did not finish")
        if self.error is not None:
            raise RuntimeError("the PostgreSQL outage failed") from self.error
