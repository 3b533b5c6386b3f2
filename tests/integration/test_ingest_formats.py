"""Every recording format Asterisk can write, through a spool pass with the real ffmpeg.

The spool holds one three-second recording per extension of
:data:`recarchive.media.formats.RECORDING_FORMATS`, made with ffmpeg where it
can encode the format and written by hand where it cannot:

- ``g729``: no encoder in Debian's ffmpeg; any sequence of 10-byte frames is a
  valid G.729 stream (noise), 300 of them are three seconds;
- ``g723``, ``g723sf``, ``ilbc``, ``siren7``, ``siren14``, ``vox``: no ffmpeg
  demuxer reads what Asterisk writes, so a few bytes stand in; they must be
  quarantined as ``unsupported_codec`` naming their codec;
- ``spx``: no Speex encoder here; an Ogg Speex file is not hand-written,
  so the extension is left out of this spool (the unit tests cover its entry).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from recarchive.catalogue.database import create_catalogue_engine
from recarchive.catalogue.intake import QuarantineEntry
from recarchive.catalogue.migrate import upgrade_schema
from recarchive.catalogue.models import Recording
from recarchive.config import load_settings
from recarchive.ingest.tasks import run_ingest
from recarchive.media.formats import FORMATS_BY_EXTENSION, format_for
from recarchive.runtime import Runtime
from tests.conftest import require_ffmpeg
from tests.integration.test_ingest_spool import cdr_line

DAY = "2026/03/14"
OLD = 1773489600.0  # 2026-03-14 12:00 UTC
SECONDS = 3
TONE = "sine=frequency=440:sample_rate={rate}:duration=3"

#: Extension → ffmpeg output options (the input is a 3 s tone at the format's rate).
ENCODE: dict[str, tuple[int, list[str]]] = {
    "wav": (8000, ["-c:a", "pcm_s16le", "-f", "wav"]),
    "wav16": (16000, ["-c:a", "pcm_s16le", "-f", "wav"]),
    "wav49": (8000, ["-c:a", "libgsm_ms", "-f", "wav"]),
    "WAV": (8000, ["-c:a", "libgsm_ms", "-f", "wav"]),
    "g722": (16000, ["-c:a", "g722", "-f", "g722"]),
    "gsm": (8000, ["-c:a", "libgsm", "-f", "gsm"]),
    "ogg": (8000, ["-c:a", "libvorbis", "-f", "ogg"]),
    "opus": (8000, ["-c:a", "libopus", "-b:a", "16k", "-f", "ogg"]),
    "mp3": (8000, ["-c:a", "libmp3lame", "-b:a", "32k", "-f", "mp3"]),
    "flac": (8000, ["-c:a", "flac", "-f", "flac"]),
}
for _ext in ("ulaw", "ul", "ulw", "pcm", "mu"):
    ENCODE[_ext] = (8000, ["-f", "mulaw"])
for _ext in ("alaw", "al", "alw"):
    ENCODE[_ext] = (8000, ["-f", "alaw"])
for _ext, _fmt in FORMATS_BY_EXTENSION.items():
    if _fmt.demuxer == "s16le":
        assert _fmt.sample_rate is not None
        ENCODE[_ext] = (_fmt.sample_rate, ["-f", "s16le"])
    if _fmt.demuxer == "g726le":
        ENCODE[_ext] = (8000, ["-c:a", "g726le", "-b:a", f"{_ext[5:]}k", "-f", "g726le"])

#: Written by hand: bytes of a three-second G.729 stream.
G729_BYTES = bytes(range(256)) * 11 + bytes(184)
#: Formats no ffmpeg demuxer reads as Asterisk writes them: (extension, codec).
UNREADABLE = {ext: fmt.codec for ext, fmt in FORMATS_BY_EXTENSION.items() if not fmt.readable}
NOT_IN_SPOOL = {"spx": "no Speex encoder in Debian's ffmpeg"}


@pytest.fixture(autouse=True)
def _ffmpeg() -> None:
    require_ffmpeg()


def recording_name(index: int, ext: str) -> str:
    return f"in-0201234000-04012345{index:02d}-20260314-1100{index:02d}-17422{index:05d}.1.{ext}"


def make_spool(root: Path) -> dict[str, str]:
    """One recording per format; returns extension → file name."""
    day = root / DAY
    day.mkdir(parents=True)
    names: dict[str, str] = {}
    for index, ext in enumerate(sorted(FORMATS_BY_EXTENSION)):
        if ext in NOT_IN_SPOOL:
            continue
        path = day / recording_name(index, ext)
        names[ext] = path.name
        if ext in ENCODE:
            rate, output = ENCODE[ext]
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
                    TONE.format(rate=rate),
                    "-ac",
                    "1",
                    *output,
                    str(path),
                ],
                check=True,
            )
        elif ext == "g729":
            path.write_bytes(G729_BYTES)
        else:
            assert ext in UNREADABLE, f"no way to make a .{ext} recording"
            path.write_bytes(os.urandom(600))
        os.utime(path, (OLD, OLD))
    return names


@pytest.fixture(params=[""])
def runtime(
    request: pytest.FixtureRequest, tmp_path: Path, empty_catalogue_url: str
) -> Iterator[Runtime]:
    """A runtime over the spool ``tmp_path/monitor``; ``request.param`` is TOML added at
    the top level, or a (top level, spool source) pair (``{tmp}`` there is ``tmp_path``)."""
    top, source = request.param if isinstance(request.param, tuple) else (request.param, "")
    engine = create_catalogue_engine(empty_catalogue_url)
    upgrade_schema(engine)
    engine.dispose()
    config = tmp_path / "recarchive.toml"
    config.write_text(
        f'[general]\ndata_dir = "{tmp_path / "var"}"\n'
        f'[catalogue]\nurl = "{empty_catalogue_url}"\n'
        '[storage]\nbackend = "filesystem"\n'
        "[ingest]\nsettle_s = 5\n"
        f"{top}"
        f'[[sources]]\nkind = "spool"\nname = "pbx"\npath = "{tmp_path / "monitor"}"\n'
        f"{source.replace('{tmp}', str(tmp_path))}",
        encoding="utf-8",
    )
    runtime = Runtime(load_settings(config, env={}))
    runtime.store.create()
    yield runtime
    runtime.close()


@pytest.mark.parametrize(
    "runtime", ["", '[audio]\nstore_format = "opus"\n'], indirect=True, ids=["as-is", "opus"]
)
def test_every_format_is_archived_with_its_true_length_or_refused_by_codec(
    runtime: Runtime, tmp_path: Path
) -> None:
    names = make_spool(tmp_path / "monitor")
    to_opus = runtime.settings.audio.store_format == "opus"

    summary = run_ingest(runtime.settings, once=True)

    with runtime.sessions() as session:
        archived = {Path(r.source_ref).name: r for r in session.scalars(select(Recording))}
        refused = {Path(e.source_ref).name: e for e in session.scalars(select(QuarantineEntry))}
    for ext, name in names.items():
        fmt = format_for(ext)
        assert fmt is not None
        if ext in UNREADABLE:
            entry = refused[name]
            assert entry.reason == "unsupported_codec", ext
            assert f"codec {UNREADABLE[ext]}," in entry.detail, entry.detail
            continue
        assert name not in refused, (ext, refused[name].reason, refused[name].detail)
        row = archived[name]
        assert abs(row.duration_ms - SECONDS * 1000) <= 500, (ext, row.duration_ms)
        if to_opus:
            assert (row.codec, row.sample_rate) == ("opus", 48000), ext
            continue
        # Opus always decodes at 48 kHz; everything else keeps the rate it was made at.
        made_at = 48000 if ext == "opus" else ENCODE.get(ext, (8000, []))[0]
        assert row.sample_rate == made_at, (ext, row.sample_rate)
        if fmt.demuxer is not None:
            assert row.codec == fmt.codec, ext
            assert row.sample_rate == fmt.sample_rate, ext
    assert summary.archived == len(names) - len(UNREADABLE)
    assert len(archived) == summary.archived  # each once


@pytest.mark.parametrize(
    ("runtime", "archived"),
    [
        ('[audio]\nallowed_codecs = ["adpcm_g722"]\n', 1),
        ('[audio]\nallowed_codecs = ["g722"]\n', 1),
        ('[audio]\nallowed_codecs = ["pcm_s16le"]\n', 0),
    ],
    indirect=["runtime"],
)
def test_allowed_codecs_compare_canonical_names(
    runtime: Runtime, tmp_path: Path, archived: int
) -> None:
    day = tmp_path / "monitor" / DAY
    day.mkdir(parents=True)
    path = day / recording_name(1, "g722")
    tone = TONE.format(rate=16000)
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            tone,
            "-c:a",
            "g722",
            "-f",
            "g722",
            str(path),
        ],
        check=True,
    )
    os.utime(path, (OLD, OLD))
    # ffprobe calls it adpcm_g722; the setting may use either name.
    summary = run_ingest(runtime.settings, once=True)
    assert summary.archived == archived
    assert summary.quarantined == ({} if archived else {"unsupported_codec": 1})
    if not archived:
        with runtime.sessions() as session:
            entry = session.scalars(select(QuarantineEntry)).one()
        assert "codec g722," in entry.detail


def put(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (OLD, OLD))


def make_cluttered_spool(root: Path) -> None:
    """A spool with files that are no recordings, besides one that is."""
    day = root / DAY
    put(day / "notes.txt", b"muistiinpanoja\n")
    put(day / ".in-0201234000-0401234567-20260314-110000-1742200000.1.wav.aB3dE", b"partial")
    put(root / ".snapshot" / "hourly.0" / "x.wav", b"RIFF")
    put(day / "README", b"no extension\n")
    put(day / "in-0201234000-0401234567-20260314-110000-1742200000.1.h264", b"\x00\x00\x01")
    put(day / "in-0201234000-0401234567-20260314-110000-1742200000.1.ul", bytes(8000))


def quarantined_details(runtime: Runtime) -> dict[str, tuple[str, str]]:
    with runtime.sessions() as session:
        return {
            e.source_ref: (e.reason, e.detail) for e in session.scalars(select(QuarantineEntry))
        }


@pytest.mark.parametrize("runtime", [("", 'ignore = [".*", "*.txt"]\n')], indirect=True)
def test_every_spool_file_is_archived_quarantined_or_ignored_by_a_rule(
    runtime: Runtime, tmp_path: Path
) -> None:
    make_cluttered_spool(tmp_path / "monitor")

    summary = run_ingest(runtime.settings, once=True)

    assert summary.archived == 1  # the .ul recording
    # notes.txt and the hidden partial file by their patterns; .snapshot once, unentered.
    assert summary.ignored == 3
    assert summary.quarantined == {"unknown_format": 2}
    details = quarantined_details(runtime)
    assert details[f"file:{DAY}/README"][0] == "unknown_format"
    assert "without an extension" in details[f"file:{DAY}/README"][1]
    h264 = f"file:{DAY}/in-0201234000-0401234567-20260314-110000-1742200000.1.h264"
    assert details[h264][0] == "unknown_format"
    assert "extension .h264 " in details[h264][1]
    assert (tmp_path / "monitor" / DAY / "README").exists(), "quarantined file not kept"

    again = run_ingest(runtime.settings, once=True)
    assert again.ignored == 3
    assert sum(again.quarantined.values()) == 0  # reported once


def test_default_rules_ignore_hidden_files_only(runtime: Runtime, tmp_path: Path) -> None:
    make_cluttered_spool(tmp_path / "monitor")

    summary = run_ingest(runtime.settings, once=True)

    assert summary.ignored == 2
    assert summary.quarantined == {"unknown_format": 3}
    assert quarantined_details(runtime)[f"file:{DAY}/notes.txt"][0] == "unknown_format"


PBX1_IN = "in-0201234000-0401234567-20260314-112653-pbx1-1742211234.117.wav"
PBX2_IN = "in-0201234000-0405556666-20260314-112653-pbx2-1742211234.117.wav"
FLAT = "pbx-hel-1-1742212862.140.wav"
FLAT_OTHER_SYSTEM = "pbx2-1742212862.140.wav"
SYSTEMNAME_SOURCE = 'cdr_path = "{tmp}/cdr/Master.csv"\n'


def make_systemname_spool(tmp_path: Path) -> None:
    """Two systems (pbx1, pbx-hel-1) sharing one CDR; the same numbers on pbx2."""
    day = tmp_path / "monitor" / DAY
    tone = TONE.format(rate=8000)
    for name in (PBX1_IN, PBX2_IN, FLAT, FLAT_OTHER_SYSTEM):
        path = day / name
        path.parent.mkdir(parents=True, exist_ok=True)
        args = ["-f", "lavfi", "-i", tone, "-c:a", "pcm_s16le", str(path)]
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", *args], check=True)
        os.utime(path, (OLD, OLD))
    common = {"channel": "PJSIP/trunk-1", "dstchannel": "PJSIP/2001-2"}
    lines = [
        cdr_line("pbx1-1742211234.117", "2026-03-14 11:26:53", src="0401234567",
                 dst="0201234000", context="from-pstn", **common),
        cdr_line("pbx-hel-1-1742212862.140", "2026-03-14 12:01:02", src="0407778888",
                 dst="0201234000", context="from-pstn", **common),
    ]  # fmt: skip
    cdr = tmp_path / "cdr" / "Master.csv"
    cdr.parent.mkdir()
    cdr.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize("runtime", [("", SYSTEMNAME_SOURCE)], indirect=True)
def test_systemname_prefixed_recordings_match_their_cdr_rows(
    runtime: Runtime, tmp_path: Path
) -> None:
    make_systemname_spool(tmp_path)

    summary = run_ingest(runtime.settings, once=True)

    with runtime.sessions() as session:
        archived = {Path(r.source_ref).name: r for r in session.scalars(select(Recording))}
    details = quarantined_details(runtime)
    # pbx1's FreePBX name and pbx-hel-1's flat MixMonitor name find their rows.
    assert archived[PBX1_IN].call_id == "pbx1-1742211234.117"
    assert archived[PBX1_IN].agent == "2001"  # from the CDR row's dstchannel
    assert archived[FLAT].call_id == "pbx-hel-1-1742212862.140"
    assert archived[FLAT].agent == "2001"
    assert archived[FLAT].started_at.isoformat() == "2026-03-14T10:01:02+00:00"
    # pbx2's call has the same numbers but no row: never matched to pbx1's.
    assert archived[PBX2_IN].call_id == "pbx2-1742211234.117"
    assert archived[PBX2_IN].agent is None  # from its name alone
    assert details[f"file:{DAY}/{FLAT_OTHER_SYSTEM}"][0] == "unrecognised_name"
    assert summary.archived == 3
