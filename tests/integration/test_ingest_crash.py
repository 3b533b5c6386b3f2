"""Crash safety: SIGKILL the ingest worker again and again, then let a run finish.

Afterwards there must be exactly one catalogue row and one object per
recording, no object without a row, every object's SHA-256 as catalogued,
and every source file either archived (and gone from the spool) or still in
place.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from recarchive.catalogue.database import create_catalogue_engine
from recarchive.catalogue.migrate import upgrade_schema
from recarchive.catalogue.models import Recording
from recarchive.config import load_settings
from recarchive.runtime import Runtime

pytestmark = pytest.mark.slow

RECORDINGS = 800
KILLS = 12


def make_spool(root: Path, count: int) -> list[str]:
    template = root / "template.wav"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=300:sample_rate=8000:duration=1.5",
            "-ac",
            "1",
            str(template),
        ],
        check=True,
    )
    day = root / "monitor" / "2026" / "03" / "14"
    day.mkdir(parents=True)
    names = []
    base = template.read_bytes()
    old = time.time() - 3600
    for number in range(count):
        clock = f"1{number // 60 % 10}{number % 60:02d}00"
        name = f"in-0201234000-04012{number:05d}-20260314-{clock}-17422{number:05d}.1.wav"
        path = day / name
        # Make every file distinct: a different sample in the audio data.
        data = bytearray(base)
        data[-2:] = number.to_bytes(2, "little")
        path.write_bytes(bytes(data))
        os.utime(path, (old, old))
        names.append(f"2026/03/14/{name}")
    return names


def test_sigkill_at_many_points_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, empty_catalogue_url: str
) -> None:
    refs = make_spool(tmp_path, RECORDINGS)
    engine = create_catalogue_engine(empty_catalogue_url)
    upgrade_schema(engine)
    engine.dispose()
    config = tmp_path / "recarchive.toml"
    config.write_text(
        f'[general]\ndata_dir = "{tmp_path / "var"}"\nlog_format = "json"\n'
        f'[catalogue]\nurl = "{empty_catalogue_url}"\n'
        "[ingest]\nsettle_s = 1\n"
        f'[[sources]]\nkind = "spool"\nname = "pbx"\npath = "{tmp_path / "monitor"}"\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECARCHIVE_")}
    command = [sys.executable, "-m", "recarchive", "--config", str(config), "ingest", "--once"]
    subprocess.run(
        [sys.executable, "-m", "recarchive", "--config", str(config), "init"],
        env=env,
        check=True,
        capture_output=True,
    )
    rng = random.Random(20261128)
    kills = 0
    for _ in range(3 * KILLS):  # until KILLS runs were killed, or one finished the work
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(0.5, 1.6))  # startup ~0.8 s, then ~100 short recordings/s
        if process.poll() is not None:
            process.wait()
            break
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
        if kills == KILLS:
            break
    assert kills >= 3, "the runs finished before they could be killed: make more work"
    final = subprocess.run(
        [*command, "--json"], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert final.returncode == 0, final.stderr

    runtime = Runtime(load_settings(config, env={}))
    try:
        with runtime.sessions() as session:
            rows = session.scalars(select(Recording)).all()
        assert sorted(row.source_ref for row in rows) == sorted(refs)
        keys = sorted(info.key for info in runtime.store.list("recordings/"))
        assert keys == sorted(row.object_key for row in rows), "orphan or missing objects"
        for row in rows:
            with runtime.store.get(row.object_key) as reader:
                assert hashlib.sha256(reader.read()).hexdigest() == row.sha256
        left = sorted(
            p.relative_to(tmp_path / "monitor").as_posix()
            for p in (tmp_path / "monitor").rglob("*.wav")
        )
        assert left == [], "archived source files must be acknowledged (deleted)"
        work = runtime.settings.work_dir
        assert not any(work.iterdir()) if work.exists() else True
    finally:
        runtime.close()
    shutil.rmtree(tmp_path / "var", ignore_errors=True)
