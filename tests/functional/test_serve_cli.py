"""``recarchive serve`` as run in production: one process or several, stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from recarchive.access.models import Role
from tests.api_fixtures import (
    IDENTITY_HASH_KEY,
    TOKEN_PEPPER,
    add_recording,
    build_runtime,
    close_runtime,
    tokens,
)
from tests.logscan import SESSION


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_answers_counts_every_process_and_stops_on_sigterm(
    tmp_path: Path, workers: int
) -> None:
    url = f"sqlite:///{tmp_path / 'recarchive.db'}"
    runtime = build_runtime(url, tmp_path / "var")
    recording = add_recording(runtime, reasons=["billing"])
    token = tokens(runtime)[Role.QA_TRAINER]
    close_runtime(runtime)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECARCHIVE_", "AWS_"))}
    env.update(
        RECARCHIVE_CATALOGUE_URL=url,
        RECARCHIVE_GENERAL_DATA_DIR=str(tmp_path / "var"),
        RECARCHIVE_TOKEN_PEPPER=TOKEN_PEPPER,
        RECARCHIVE_IDENTITY_HASH_KEY=IDENTITY_HASH_KEY,
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "recarchive", "serve", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers)],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.communicate()
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.3)
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
            for _ in range(10):
                found = client.get("/api/v1/recordings").json()["items"]
                assert [item["id"] for item in found] == [str(recording.id)]
            audio = client.get(
                f"/api/v1/recordings/{recording.id}/audio",
                params={"purpose": "training"},
                headers={"Range": "bytes=0-99"},
            )
            assert (audio.status_code, len(audio.content)) == (206, 100)
            metrics = client.get("/metrics").text
            # Personal data in a query string and a body that is refused: in no log line.
            by_number = client.get("/api/v1/recordings", params={"number": "040 123 4567"})
            assert by_number.status_code == 403
            hold = {"case_ref": "D-1", "reason": "Maija Meikäläinen 131052-308T",
                    "customer_id": "C-1", "until": "9999-12-31T23:59:59-14:00"}  # fmt: skip
            assert client.post("/api/v1/holds", json=hold).status_code == 422
        searches = [
            line
            for line in metrics.splitlines()
            if line.startswith("recarchive_http_requests_total{")
            and 'route="/api/v1/recordings"' in line
        ]
        assert len(searches) == 1, metrics
        assert float(searches[0].rsplit(" ", 1)[1]) == 10.0  # every process counted
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=60)
    # uvicorn finishes the requests in hand, then re-raises SIGTERM (a clean stop for systemd).
    assert server.returncode in (0, -signal.SIGTERM), stderr
    assert "Traceback" not in stderr
    SESSION.scan_output("recarchive serve", stderr)
    assert not list((tmp_path / "var" / "work").glob("metrics-*"))


def _serve(tmp_path: Path, port: int, workers: int = 1) -> subprocess.Popen[str]:
    url = f"sqlite:///{tmp_path / 'recarchive.db'}"
    close_runtime(build_runtime(url, tmp_path / "var"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECARCHIVE_", "AWS_"))}
    env.update(
        RECARCHIVE_CATALOGUE_URL=url,
        RECARCHIVE_GENERAL_DATA_DIR=str(tmp_path / "var"),
        RECARCHIVE_TOKEN_PEPPER=TOKEN_PEPPER,
        RECARCHIVE_IDENTITY_HASH_KEY=IDENTITY_HASH_KEY,
    )
    return subprocess.Popen(
        [sys.executable, "-m", "recarchive", "serve", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers)],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_a_port_in_use_is_one_line_before_anything_says_serving(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = _serve(tmp_path, port)
        _, stderr = server.communicate(timeout=60)
    assert server.returncode == 1, stderr
    lines = [line for line in stderr.splitlines() if not line.startswith("{")]
    assert lines == [
        f"Error: cannot listen on 127.0.0.1:{port}: address already in use "
        "(is another server running there?)"
    ]


@pytest.mark.serial
@pytest.mark.parametrize(("workers", "limit_s"), [(1, 1.0), (2, 1.5)])
def test_an_idle_server_stops_at_once_on_sigterm(
    tmp_path: Path, workers: int, limit_s: float
) -> None:
    port = free_port()
    server = _serve(tmp_path, port, workers)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.communicate()
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.1)
        with httpx.Client() as browser:  # a keep-alive connection left open, as a browser does
            assert browser.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
            sent = time.monotonic()
            server.send_signal(signal.SIGTERM)
            server.communicate(timeout=30)
            took = time.monotonic() - sent
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    # Measured on 2 cores: 0.15 s for one process, 0.7-0.8 s for two (was up to 10 s).
    assert took < limit_s
    assert server.returncode in (0, -signal.SIGTERM)


@pytest.mark.serial
def test_a_paused_audio_stream_does_not_hold_the_stop(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'recarchive.db'}"
    runtime = build_runtime(url, tmp_path / "var")
    recording = add_recording(runtime, seconds=600)  # ~9.6 MB: more than the socket buffers
    token = tokens(runtime)[Role.QA_TRAINER]
    close_runtime(runtime)
    port = free_port()
    server = _serve(tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.communicate()
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.1)
        headers = {"Authorization": f"Bearer {token}"}
        with (
            httpx.Client(base_url=base, headers=headers, timeout=10) as player,
            player.stream(
                "GET", f"/api/v1/recordings/{recording.id}/audio", params={"purpose": "training"}
            ) as audio,
        ):
            assert audio.status_code == 200
            next(audio.iter_bytes())  # a little is played, then the player pauses
            sent = time.monotonic()
            server.send_signal(signal.SIGTERM)
            server.communicate(timeout=30)
            took = time.monotonic() - sent
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert took < 3.0  # one second of grace (it was uvicorn's 10 s)
