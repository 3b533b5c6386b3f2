"""MixMonitor's split legs in a spool, end to end with real ffmpeg: each pair becomes one stereo
recording (caller left, agent right), a lone leg is archived alone after its wait, a broken leg
has its pair quarantined naming the leg."""

from __future__ import annotations

import array
import hashlib
import itertools
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from recarchive.catalogue.database import create_catalogue_engine
from recarchive.catalogue.intake import QuarantineEntry
from recarchive.catalogue.migrate import upgrade_schema
from recarchive.catalogue.models import Recording
from recarchive.config import Settings, load_settings
from recarchive.ingest.services import Pipeline
from recarchive.ingest.sources import build_sources
from recarchive.ingest.tasks import run_ingest
from recarchive.runtime import Runtime
from tests.integration.test_ingest_spool import DAY, cdr_line, ffmpeg, make_settings, put

FILESYSTEM = '[storage]\nbackend = "filesystem"\n'
CALLER_HZ, AGENT_HZ = 300, 1000

#: FreePBX-style names with MixMonitor's r()/t() legs: caller 3 s at 8 kHz, agent 5 s at 16 kHz.
PAIR = "q-601-0401234567-20260314-112653-1742211234.117"
#: Flat names with a system name and -rx/-tx legs, headerless mu-law.
RAW = "pbx1-1742212862.140"
#: A pair whose caller leg is empty.
BROKEN = "q-601-0405556666-20260314-140000-1742220000.160"
#: An agent leg whose caller leg never came (written long ago), and one written a minute ago.
LONE = "q-601-0509998888-20260314-120102-1742212999.141"
YOUNG = "q-601-0441112233-20260314-130000-1742216400.150"


def tone(path: Path, hz: int, seconds: float, rate: int, *codec: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    source = f"sine=frequency={hz}:sample_rate={rate}:duration={seconds}"
    ffmpeg("-f", "lavfi", "-i", source, "-ac", "1", *codec, str(path))
    return path


@pytest.fixture
def world(tmp_path: Path) -> Path:
    made = tmp_path / "made"
    caller = tone(made / "caller.wav", CALLER_HZ, 3, 8000, "-c:a", "pcm_s16le")
    agent = tone(made / "agent.wav", AGENT_HZ, 5, 16000, "-c:a", "pcm_mulaw")
    raw_caller = tone(made / "caller.ulaw", CALLER_HZ, 2, 8000, "-f", "mulaw")
    raw_agent = tone(made / "agent.ulaw", AGENT_HZ, 4, 8000, "-f", "mulaw")
    day = tmp_path / "monitor" / DAY
    put(day / f"{PAIR}-in.wav", caller)
    put(day / f"{PAIR}-out.wav", agent)
    put(day / f"{RAW}-rx.ulaw", raw_caller)
    put(day / f"{RAW}-tx.ulaw", raw_agent)
    put(day / f"{BROKEN}-in.wav", b"")
    put(day / f"{BROKEN}-out.wav", agent)
    put(day / f"{LONE}-out.wav", agent)
    young = put(day / f"{YOUNG}-in.wav", caller)
    written = time.time() - 60  # settled, within legs_wait_s (300 s by default)
    os.utime(young, (written, written))
    rows = [
        ("1742211234.117", "2026-03-14 11:26:53"),
        ("pbx1-1742212862.140", "2026-03-14 12:01:02"),
        ("1742220000.160", "2026-03-14 14:00:00"),
        ("1742212999.141", "2026-03-14 12:01:02"),
        ("1742216400.150", "2026-03-14 13:00:00"),
    ]
    lines = [
        cdr_line(
            uniqueid,
            start,
            src="0401234567",
            dst="601",
            context="ext-queues",
            channel="PJSIP/trunk-1",
            dstchannel="PJSIP/2001-2",
        )
        for uniqueid, start in rows
    ]
    (tmp_path / "cdr").mkdir()
    (tmp_path / "cdr" / "Master.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path


def settings_for(world: Path, catalogue_url: str, extra: str = "", spool: str = "") -> Settings:
    make_settings(world, catalogue_url, FILESYSTEM, extra)
    with (world / "recarchive.toml").open("a", encoding="utf-8") as handle:
        handle.write(spool)  # the last table is the spool source
    return load_settings(world / "recarchive.toml", env={})


@pytest.fixture
def runtime(world: Path, empty_catalogue_url: str) -> Iterator[Runtime]:
    engine = create_catalogue_engine(empty_catalogue_url)
    upgrade_schema(engine)
    engine.dispose()
    runtime = Runtime(settings_for(world, empty_catalogue_url))
    runtime.store.create()
    yield runtime
    runtime.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def archived(runtime: Runtime) -> dict[str, Recording]:
    with runtime.sessions() as session:
        return {row.source_ref: row for row in session.scalars(select(Recording))}


def fetch_object(runtime: Runtime, row: Recording, into: Path) -> Path:
    path = into / f"{row.id}.{row.format}"
    with runtime.store.get(row.object_key) as reader:
        path.write_bytes(reader.read())
    return path


def channel(path: Path, number: int, rate: int = 16000) -> array.array[int]:
    """One channel of a recording, decoded to 16-bit samples at ``rate``."""
    decoded = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-af", f"pan=mono|c0=c{number}",
         "-ar", str(rate), "-f", "s16le", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    samples = array.array("h")
    samples.frombytes(decoded)
    return samples


def pitch_hz(samples: array.array[int], start_s: float, end_s: float, rate: int = 16000) -> float:
    """The frequency of a pure tone between two moments, from its zero crossings."""
    part = samples[int(start_s * rate) : int(end_s * rate)]
    crossings = sum(1 for a, b in itertools.pairwise(part) if (a < 0) != (b < 0))
    return crossings / 2 / (end_s - start_s)


def loudness(samples: array.array[int], start_s: float, end_s: float, rate: int = 16000) -> float:
    part = samples[int(start_s * rate) : int(end_s * rate)]
    return (sum(s * s for s in part) / max(1, len(part))) ** 0.5


def test_split_legs_become_one_stereo_recording_each(
    runtime: Runtime, world: Path, tmp_path: Path
) -> None:
    day = world / "monitor" / DAY
    legs_sha = {name: sha256(day / name) for name in (f"{PAIR}-in.wav", f"{PAIR}-out.wav")}
    lone_sha = sha256(day / f"{LONE}-out.wav")

    summary = run_ingest(runtime.settings, once=True)

    assert (summary.archived, summary.lone_legs, summary.awaiting_leg) == (3, 1, 1)
    assert summary.quarantined == {"zero_byte": 1}
    rows = archived(runtime)
    assert set(rows) == {
        f"{DAY}/{PAIR}-{{in,out}}.wav",
        f"{DAY}/{RAW}-{{rx,tx}}.ulaw",
        f"{DAY}/{LONE}-out.wav",
    }
    pair = rows[f"{DAY}/{PAIR}-{{in,out}}.wav"]
    assert (pair.channels, pair.format, pair.codec, pair.sample_rate) == (
        2,
        "wav",
        "pcm_s16le",
        16000,
    )
    assert abs(pair.duration_ms - 5000) <= 500  # the longer leg's
    assert pair.call_id == "1742211234.117"
    assert not pair.facts_from_name
    assert pair.caller_leg_sha256 == legs_sha[f"{PAIR}-in.wav"]
    assert pair.agent_leg_sha256 == legs_sha[f"{PAIR}-out.wav"]
    stored = fetch_object(runtime, pair, tmp_path)
    left, right = channel(stored, 0), channel(stored, 1)
    assert abs(pitch_hz(left, 0.5, 2.5) - CALLER_HZ) < 15, "the caller is not on the left"
    assert abs(pitch_hz(right, 0.5, 2.5) - AGENT_HZ) < 15, "the agent is not on the right"
    assert loudness(left, 3.2, 4.8) < 50, "the shorter leg is not padded with silence"
    assert loudness(right, 3.2, 4.8) > 1000
    assert not (day / f"{PAIR}-in.wav").exists()
    assert not (day / f"{PAIR}-out.wav").exists()

    raw = rows[f"{DAY}/{RAW}-{{rx,tx}}.ulaw"]
    assert (raw.channels, raw.call_id) == (2, "pbx1-1742212862.140")
    assert abs(raw.duration_ms - 4000) <= 500
    raw_stored = fetch_object(runtime, raw, tmp_path)
    assert abs(pitch_hz(channel(raw_stored, 0), 0.5, 1.5) - CALLER_HZ) < 15
    assert abs(pitch_hz(channel(raw_stored, 1), 0.5, 1.5) - AGENT_HZ) < 15

    lone = rows[f"{DAY}/{LONE}-out.wav"]
    assert (lone.channels, lone.call_id) == (1, "1742212999.141")
    assert (lone.caller_leg_sha256, lone.agent_leg_sha256) == (None, lone_sha)

    with runtime.sessions() as session:
        (entry,) = session.scalars(select(QuarantineEntry)).all()
    assert (entry.source_ref, entry.reason) == (f"{DAY}/{BROKEN}-{{in,out}}.wav", "zero_byte")
    assert "caller leg (-in)" in entry.detail
    assert "0405556666" not in entry.detail
    assert (day / f"{BROKEN}-in.wav").exists()
    assert (day / f"{BROKEN}-out.wav").exists()
    assert (day / f"{YOUNG}-in.wav").exists()


def test_a_pair_delivered_again_is_a_duplicate_of_the_same_bytes(
    runtime: Runtime, world: Path
) -> None:
    day = world / "monitor" / DAY
    kept = world / "kept"
    kept.mkdir()
    for name in (f"{PAIR}-in.wav", f"{PAIR}-out.wav"):
        shutil.copy2(day / name, kept / name)
    run_ingest(runtime.settings, once=True)
    for name in (f"{PAIR}-in.wav", f"{PAIR}-out.wav"):
        put(day / name, kept / name)

    again = run_ingest(runtime.settings, once=True)

    assert (again.archived, again.duplicates) == (0, 1)
    assert not (day / f"{PAIR}-in.wav").exists()
    assert not (day / f"{PAIR}-out.wav").exists()
    assert len(archived(runtime)) == 3


def test_the_young_lone_leg_is_archived_alone_once_its_wait_is_over(
    world: Path, empty_catalogue_url: str
) -> None:
    engine = create_catalogue_engine(empty_catalogue_url)
    upgrade_schema(engine)
    engine.dispose()
    opus = '[audio]\nstore_format = "opus"\n'
    settings = settings_for(world, empty_catalogue_url, opus, "legs_wait_s = 0\n")
    runtime = Runtime(settings)
    runtime.store.create()
    try:
        summary = run_ingest(runtime.settings, once=True)
        rows = archived(runtime)
    finally:
        runtime.close()
    assert (summary.archived, summary.lone_legs, summary.awaiting_leg) == (4, 2, 0)
    young = rows[f"{DAY}/{YOUNG}-in.wav"]
    assert (young.channels, young.format, young.agent_leg_sha256) == (1, "ogg", None)
    assert young.caller_leg_sha256 is not None
    pair = rows[f"{DAY}/{PAIR}-{{in,out}}.wav"]
    assert (pair.channels, pair.format) == (2, "ogg")
    assert abs(pair.duration_ms - 5000) <= 500


def test_a_partner_that_comes_after_its_leg_was_taken_alone_goes_alone_too(
    runtime: Runtime, world: Path
) -> None:
    """The lone leg is queued (its wait is over) but not yet archived when its partner
    comes: both are archived alone, mono, and no leg twice."""
    day = world / "monitor" / DAY
    Pipeline(runtime, build_sources(runtime.settings)).discover()  # queues, archives nothing
    assert archived(runtime) == {}
    put(day / f"{LONE}-in.wav", world / "made" / "caller.wav")

    summary = run_ingest(runtime.settings, once=True)

    rows = archived(runtime)
    assert f"{DAY}/{LONE}-{{in,out}}.wav" not in rows
    alone = [rows[f"{DAY}/{LONE}-out.wav"], rows[f"{DAY}/{LONE}-in.wav"]]
    assert [row.channels for row in alone] == [1, 1]
    assert alone[0].agent_leg_sha256 is not None
    assert alone[1].caller_leg_sha256 is not None
    assert summary.lone_legs == 2
    with runtime.sessions() as session:
        reasons = {entry.reason for entry in session.scalars(select(QuarantineEntry))}
    assert "recording_gone" not in reasons


OUTBOUND = "out-0509998888-2001-20260314-150000-1742223600.170"


def test_an_outbound_call_recorded_on_the_agents_channel_keeps_the_customer_on_the_left(
    runtime: Runtime, world: Path, tmp_path: Path
) -> None:
    """The agent dialled: MixMonitor ran on the agent's channel, so ``-in`` is the agent."""
    day = world / "monitor" / DAY
    made = world / "made"
    agent_leg = put(day / f"{OUTBOUND}-in.wav", made / "agent.wav")
    customer_leg = put(day / f"{OUTBOUND}-out.wav", made / "caller.wav")
    shas = (sha256(customer_leg), sha256(agent_leg))
    line = cdr_line(
        "1742223600.170",
        "2026-03-14 15:00:00",
        src="2001",
        dst="0509998888",
        context="from-internal",
        channel="PJSIP/2001-7",
        dstchannel="PJSIP/trunk-8",
        app="Dial",
        data="PJSIP/0509998888@trunk,300",
    )
    with (world / "cdr" / "Master.csv").open("a", encoding="utf-8") as master:
        master.write(line + "\n")

    run_ingest(runtime.settings, once=True)

    row = archived(runtime)[f"{DAY}/{OUTBOUND}-{{in,out}}.wav"]
    assert (row.direction.value, row.channels) == ("outbound", 2)
    assert (row.caller_leg_sha256, row.agent_leg_sha256) == shas
    stored = fetch_object(runtime, row, tmp_path)
    left, right = channel(stored, 0), channel(stored, 1)
    assert abs(pitch_hz(left, 0.5, 2.5) - CALLER_HZ) < 15, "the customer is not on the left"
    assert abs(pitch_hz(right, 0.5, 2.5) - AGENT_HZ) < 15, "the agent is not on the right"
