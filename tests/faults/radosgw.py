"""Killing the test S3 server's radosgw and bringing it back (``scripts/s3-server``).

``scripts/s3-server`` keeps everything under its state directory
(``RECARCHIVE_CEPH_STATE_DIR``, default ``<repo>/var/s3-server``): the
radosgw pid file is ``run/client.rgw.a.pid`` and the settings the running
radosgw was started with are in ``run/rgw.settings``. :meth:`kill` sends
SIGKILL to that pid (after checking that it is radosgw with this cluster's
configuration, as the script itself does); :meth:`restart` runs
``scripts/s3-server start`` with the same port, lifecycle interval and keys,
which finds the mon and the OSD running and starts only radosgw (about 1-2 s).

The server is shared with every other test of the session (and with other
people's runs on the same machine): keep it down for seconds, and always
bring it back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[2]
RGW_NAME = "client.rgw.a"


class Unavailable(Exception):
    """radosgw cannot be controlled from here (the message says why)."""


def _alive(pid: int) -> bool:
    """A live process (a zombie counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    state = next((line.split()[1] for line in status.splitlines() if line.startswith("State:")), "")
    return state not in ("", "Z", "X")


class RadosGateway:
    """The radosgw of the test S3 server at ``endpoint``."""

    def __init__(self, endpoint: str, state_dir: Path | None = None) -> None:
        self.endpoint = endpoint
        self.state_dir = (
            state_dir
            or Path(os.environ.get("RECARCHIVE_CEPH_STATE_DIR") or REPO / "var" / "s3-server")
        ).resolve()
        self.conf = self.state_dir / "ceph.conf"
        self.pid_file = self.state_dir / "run" / f"{RGW_NAME}.pid"
        self.settings_file = self.state_dir / "run" / "rgw.settings"
        if not self.conf.exists():
            raise Unavailable(
                f"no scripts/s3-server state in {self.state_dir} "
                "(set RECARCHIVE_CEPH_STATE_DIR to the directory of the running server)"
            )
        port = urlsplit(endpoint).port
        if f"endpoint=127.0.0.1:{port}" not in self.conf.read_text():
            raise Unavailable(f"the S3 server in {self.state_dir} does not serve {endpoint}")
        self.settings = self._settings()

    def _settings(self) -> dict[str, str]:
        try:
            text = self.settings_file.read_text().split()
        except OSError as exc:
            raise Unavailable(f"radosgw of {self.state_dir} is not running ({exc})") from None
        return dict(item.split("=", 1) for item in text)

    def pid(self) -> int | None:
        """The pid of the running radosgw of this cluster, or None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if not _alive(pid):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            return None
        if "radosgw" not in cmdline or str(self.conf) not in cmdline:
            return None
        return pid

    def kill(self) -> None:
        """SIGKILL radosgw (as a crash would); returns once the process is gone."""
        pid = self.pid()
        if pid is None:
            raise Unavailable(f"radosgw of {self.state_dir} is not running")
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"radosgw (pid {pid}) does not die")
            time.sleep(0.02)

    def restart(self) -> float:
        """``scripts/s3-server start`` (radosgw only, when the rest runs); returns seconds taken."""
        started = time.monotonic()
        env = {
            **os.environ,
            "RECARCHIVE_CEPH_STATE_DIR": str(self.state_dir),
            "RECARCHIVE_CEPH_PORT": self.settings["port"],
            "RECARCHIVE_CEPH_LC_INTERVAL": self.settings["lc_interval"],
        }
        for variable, setting in (
            ("RECARCHIVE_CEPH_ACCESS_KEY", "RECARCHIVE_S3_ACCESS_KEY_ID"),
            ("RECARCHIVE_CEPH_SECRET_KEY", "RECARCHIVE_S3_SECRET_ACCESS_KEY"),
        ):
            if os.environ.get(setting):
                env[variable] = os.environ[setting]
        completed = subprocess.run(
            [str(REPO / "scripts" / "s3-server"), "start"],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"scripts/s3-server start failed:\n{completed.stderr}")
        return time.monotonic() - started

    def ensure_running(self) -> None:
        if self.pid() is None:
            self.restart()
