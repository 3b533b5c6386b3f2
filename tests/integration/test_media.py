"""The media domain against the real ffmpeg/ffprobe: probing, validation, transcoding.

Fixtures are made once per session with ffmpeg's lavfi sources (six seconds of
tone, or tone and noise in stereo), then broken the ways telephony systems and
transfers break them. File names carry a phone number, as spool names do, so
every error message can be checked for it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from recarchive.errors import RecArchiveError
from recarchive.media.formats import input_options_for
from recarchive.media.interfaces import (
    AudioInfo,
    EmptyRecording,
    HeaderLengthMismatch,
    MediaError,
    MediaToolFailed,
    NoAudioFrames,
    NotAudio,
    StillBeingWritten,
    TruncatedAudio,
    UnsupportedCodec,
)
from recarchive.media.probe import probe_recording
from recarchive.media.transcode import (
    sanitise_tool_message,
    transcode_for_playback,
    transcode_to_opus,
)
from tests.conftest import require_ffmpeg


@pytest.fixture(autouse=True)
def _ffmpeg() -> None:
    require_ffmpeg()


PHONE = "0401234567"
SECONDS = 6
MONO = f"sine=f=440:r=8000:d={SECONDS}"
LABEL = "work-item-42"


def spool_name(kind: str, extension: str) -> str:
    return f"q-601-{PHONE}-20260314-092653-1742211234.{kind}.{extension}"


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def wav_data_size_offset(path: Path) -> int:
    """Offset of the data chunk's size field."""
    data = path.read_bytes()[:4096]
    return data.index(b"data") + 4


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Good and broken recordings, made once."""
    root = tmp_path_factory.mktemp("media")
    files: dict[str, Path] = {}

    def make(key: str, extension: str, *args: str) -> Path:
        path = root / spool_name(key, extension)
        ffmpeg(*args, str(path))
        files[key] = path
        return path

    mono = ("-f", "lavfi", "-i", MONO)
    stereo = (
        "-f", "lavfi", "-i", MONO,
        "-f", "lavfi", "-i", f"anoisesrc=c=pink:a=0.3:r=8000:d={SECONDS}",
        "-filter_complex", "[0][1]join=inputs=2:channel_layout=stereo",
    )  # fmt: skip
    make("wav", "wav", *mono, "-c:a", "pcm_s16le")
    make("stereo", "wav", *stereo, "-c:a", "pcm_s16le")
    make("ulaw", "wav", *mono, "-c:a", "pcm_mulaw")
    make("gsm", "WAV", *mono, "-c:a", "libgsm_ms")
    make("mp3", "mp3", *mono, "-c:a", "libmp3lame", "-b:a", "32k")
    make("opus", "opus", *stereo, "-c:a", "libopus", "-b:a", "16k")
    make("rawulaw", "ulaw", *mono, "-f", "mulaw")
    make("rawalaw", "alaw", *mono, "-f", "alaw")
    make("sln", "sln", *mono, "-f", "s16le")
    make("rawgsm", "gsm", *mono, "-c:a", "libgsm", "-f", "gsm")
    make("adpcm", "wav", *mono, "-c:a", "adpcm_ms")
    streamed = root / spool_name("streamed", "wav")  # written to a pipe: sizes unknown
    with streamed.open("wb") as handle:
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", *mono, "-c:a", "pcm_s16le", "-f", "wav", "-"],
            stdout=handle,
            check=True,
        )
    files["streamed"] = streamed

    def derive(key: str, source: str, extension: str, change: Callable[[bytes], bytes]) -> None:
        path = root / spool_name(key, extension)
        path.write_bytes(change(files[source].read_bytes()))
        files[key] = path

    def sizes(riff: int | None, data: int | None, factor: int = 1) -> Callable[[bytes], bytes]:
        def change(content: bytes) -> bytes:
            buffer = bytearray(content)
            offset = bytes(buffer[:4096]).index(b"data") + 4
            real = struct.unpack("<I", buffer[offset : offset + 4])[0]
            if riff is not None:
                buffer[4:8] = struct.pack("<I", riff)
            buffer[offset : offset + 4] = struct.pack("<I", real * factor if data is None else data)
            return bytes(buffer)

        return change

    header = files["wav"].read_bytes()
    derive("zero", "wav", "wav", lambda _: b"")
    derive("header_only", "wav", "wav", lambda _: header[:36] + b"data" + bytes(4))
    derive("text", "wav", "wav", lambda _: b"<html><body>502 Bad Gateway</body></html>\n")
    derive("still_writing", "wav", "wav", sizes(0, 0))
    derive("header_lie", "wav", "wav", sizes(None, None, factor=10))
    # an interrupted copy: half the data gone, header unchanged
    derive("cut_half", "wav", "wav", lambda b: b[: len(b) // 2])
    derive("cut_gsm", "gsm", "WAV", lambda b: b[: len(b) // 2 + 7])
    # cut mid-sample less than a second before the end
    derive("cut_sample", "wav", "wav", lambda b: b[: len(b) - 4001])
    derive("mp3_cut", "mp3", "mp3", lambda b: b[: len(b) // 2])
    derive("mp3_zero_tail", "mp3", "mp3", lambda b: b[: len(b) // 2] + bytes(len(b) - len(b) // 2))

    def scramble(content: bytes) -> bytes:
        buffer = bytearray(content)
        middle = len(buffer) // 2
        buffer[middle : middle + 300] = bytes((i * 37) % 256 for i in range(300))
        return bytes(buffer)

    derive("opus_corrupt", "opus", "opus", scramble)
    # more PCM and G.711 layouts for the native check
    make("alaw_wav", "wav", *mono, "-c:a", "pcm_alaw")
    make("u8", "wav", *mono, "-c:a", "pcm_u8")
    make("s24", "wav", *stereo, "-c:a", "pcm_s24le")
    make("f32", "wav", *mono, "-c:a", "pcm_f32le")
    make("extensible", "wav", *stereo, "-c:a", "pcm_s16le", "-write_bext", "1")  # fmt: skip
    derive("cut_boundary", "wav", "wav", lambda b: b[: len(b) - 4000])
    derive("cut_stereo_sample", "stereo", "wav", lambda b: b[: len(b) - 802])
    derive("ulaw_cut", "ulaw", "wav", lambda b: b[: len(b) // 3])
    return files


#: PCM and G.711 WAVs, good and broken, that the native check handles.
NATIVE_CASES = [
    "wav", "stereo", "ulaw", "alaw_wav", "u8", "s24", "f32", "extensible", "streamed",
    "header_lie", "cut_half", "cut_sample", "cut_boundary", "cut_stereo_sample", "ulaw_cut",
]  # fmt: skip


def _outcome(path: Path, *, native: bool) -> object:
    try:
        return probe_recording(path, label=LABEL, native_pcm=native)
    except MediaError as exc:
        return type(exc).__name__


@pytest.mark.parametrize("key", NATIVE_CASES)
def test_native_pcm_check_agrees_with_ffmpeg(media: dict[str, Path], key: str) -> None:
    native = _outcome(media[key], native=True)
    decoded = _outcome(media[key], native=False)
    if isinstance(native, str) or isinstance(decoded, str):
        assert native == decoded
        return
    assert isinstance(native, AudioInfo)
    assert isinstance(decoded, AudioInfo)
    assert (native.codec, native.channels, native.sample_rate, native.container) == (
        decoded.codec, decoded.channels, decoded.sample_rate, decoded.container
    )  # fmt: skip
    assert abs(native.duration_ms - decoded.duration_ms) <= 1
    assert native.header_duration_ms == decoded.header_duration_ms


GOOD = [
    # key, container, codec, channels, sample rate
    ("wav", "wav", "pcm_s16le", 1, 8000),
    ("stereo", "wav", "pcm_s16le", 2, 8000),
    ("ulaw", "wav", "pcm_mulaw", 1, 8000),
    ("gsm", "wav", "gsm_ms", 1, 8000),
    ("mp3", "mp3", "mp3", 1, 8000),
    ("opus", "ogg", "opus", 2, 48000),
    ("rawulaw", "mulaw", "pcm_mulaw", 1, 8000),
    ("rawalaw", "alaw", "pcm_alaw", 1, 8000),
    ("sln", "s16le", "pcm_s16le", 1, 8000),
    ("rawgsm", "gsm", "gsm", 1, 8000),
    ("streamed", "wav", "pcm_s16le", 1, 8000),
]


@pytest.mark.parametrize(("key", "container", "codec", "channels", "rate"), GOOD)
def test_probe_describes_good_recordings(
    media: dict[str, Path], key: str, container: str, codec: str, channels: int, rate: int
) -> None:
    info = probe_recording(media[key], label=LABEL)
    assert (info.container, info.codec, info.channels, info.sample_rate) == (
        container,
        codec,
        channels,
        rate,
    )
    assert abs(info.duration_ms - SECONDS * 1000) <= 50
    assert info.size_bytes == media[key].stat().st_size


def test_raw_streams_have_no_header_claim_and_wav_has_one(media: dict[str, Path]) -> None:
    assert probe_recording(media["rawulaw"]).header_duration_ms is None
    assert probe_recording(media["wav"]).header_duration_ms == SECONDS * 1000


def test_streamed_wav_with_unknown_sizes_is_complete(media: dict[str, Path]) -> None:
    streamed = media["streamed"].parent / "streamed-unknown.wav"
    content = bytearray(media["wav"].read_bytes())
    content[4:8] = b"\xff" * 4
    offset = wav_data_size_offset(media["wav"])
    content[offset : offset + 4] = b"\xff" * 4
    streamed.write_bytes(bytes(content))
    info = probe_recording(streamed, label=LABEL)
    assert info.header_duration_ms is None
    assert abs(info.duration_ms - SECONDS * 1000) <= 50
    # ... but half a sample at its end is a cut, not a stream
    streamed.write_bytes(bytes(content) + b"\x01")
    with pytest.raises(TruncatedAudio):
        probe_recording(streamed, label=LABEL)


BAD = [
    ("zero", EmptyRecording, "zero_byte"),
    ("header_only", NoAudioFrames, "header_only"),
    ("text", NotAudio, "not_audio"),
    ("adpcm", UnsupportedCodec, "unsupported_codec"),
    ("header_lie", HeaderLengthMismatch, "header_length_mismatch"),
    ("cut_half", HeaderLengthMismatch, "header_length_mismatch"),
    ("cut_gsm", HeaderLengthMismatch, "header_length_mismatch"),
    ("mp3_cut", HeaderLengthMismatch, "header_length_mismatch"),
    ("cut_sample", TruncatedAudio, "truncated_audio"),
    ("mp3_zero_tail", TruncatedAudio, "truncated_audio"),
    ("opus_corrupt", TruncatedAudio, "truncated_audio"),
]


@pytest.mark.parametrize(("key", "error", "reason"), BAD)
def test_probe_rejects_broken_recordings_without_naming_them(
    media: dict[str, Path], key: str, error: type[MediaError], reason: str
) -> None:
    with pytest.raises(error) as caught:
        probe_recording(media[key], label=LABEL)
    assert caught.value.reason == reason
    message = str(caught.value)
    assert LABEL in message
    assert PHONE not in message
    assert media[key].name not in message
    assert str(media[key].parent) not in message


def test_still_being_written_is_deferred_not_quarantined(media: dict[str, Path]) -> None:
    with pytest.raises(StillBeingWritten) as caught:
        probe_recording(media["still_writing"], label=LABEL)
    assert not isinstance(caught.value, MediaError)
    assert isinstance(caught.value, RecArchiveError)
    assert PHONE not in str(caught.value)


def test_unsupported_codec_names_the_codec(media: dict[str, Path]) -> None:
    with pytest.raises(UnsupportedCodec, match="adpcm_ms"):
        probe_recording(media["adpcm"], label=LABEL)


def test_allowed_codecs_can_be_narrowed(media: dict[str, Path]) -> None:
    with pytest.raises(UnsupportedCodec):
        probe_recording(media["mp3"], allowed_codecs={"pcm_s16le"})


def test_extension_argument_overrides_the_file_name(media: dict[str, Path]) -> None:
    info = probe_recording(media["rawalaw"], extension=".al")
    assert info.codec == "pcm_alaw"
    assert input_options_for("ULAW") == {"f": "mulaw", "sample_rate": 8000, "channels": 1}
    assert input_options_for(".WAV") == {}
    assert input_options_for("sln16") == {"f": "s16le", "sample_rate": 16000, "channels": 1}


def test_messages_are_sanitised_of_paths_and_numbers(tmp_path: Path) -> None:
    path = tmp_path / spool_name("x", "wav")
    text = f"[wav @ 0x55d1c0] something\nfile:{path.absolute()}: corrupt input packet in stream 0\n"
    line = sanitise_tool_message(text, path)
    assert line == "input: corrupt input packet in stream 0"
    assert sanitise_tool_message(f"call from {PHONE} broke") == "call from # broke"


_PROBE_IN_CHILD = """
import resource, sys
from pathlib import Path
from recarchive.media.probe import probe_recording
info = probe_recording(Path(sys.argv[1]), label="work item 1")
# VmHWM, not ru_maxrss: ru_maxrss survives exec and would count the forking parent.
status = Path("/proc/self/status").read_text().splitlines()
own = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
tools = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(info.duration_ms, info.header_duration_ms, own, tools)
"""


@pytest.mark.slow
def test_three_hour_recording_probes_with_flat_memory(tmp_path: Path) -> None:
    path = tmp_path / spool_name("long", "wav")
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "10800", "-c:a", "pcm_s16le",
           str(path))  # fmt: skip
    assert path.stat().st_size > 170_000_000
    # A process of its own, so that only this probe's ffprobe/ffmpeg count as its children.
    done = subprocess.run(
        [sys.executable, "-c", _PROBE_IN_CHILD, str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    duration, header, own_kib, tools_kib = (int(v) for v in done.stdout.split())
    assert duration == 10_800_000
    assert header == 10_800_000
    # ru_maxrss is in KiB on Linux: neither Python nor ffmpeg holds the 173 MB file
    assert own_kib < 150 * 1024
    assert tools_kib < 150 * 1024


def test_transcode_to_opus_keeps_channels_and_duration(
    media: dict[str, Path], tmp_path: Path
) -> None:
    destination = tmp_path / "call.opus"
    info = transcode_to_opus(media["stereo"], destination, label=LABEL)
    assert destination.exists()
    assert not list(tmp_path.glob("*.partial"))
    assert (info.container, info.codec, info.channels) == ("ogg", "opus", 2)
    assert abs(info.duration_ms - SECONDS * 1000) <= 60
    assert info.bit_rate is not None
    assert 10_000 < info.bit_rate < 22_000
    again = probe_recording(destination)
    assert again.channels == 2
    assert abs(again.duration_ms - SECONDS * 1000) <= 60
    # What was read from the Ogg pages agrees with ffprobe and a full decode.
    assert (again.codec, again.sample_rate) == (info.codec, info.sample_rate)
    assert info.header_duration_ms is not None
    assert abs(info.header_duration_ms - again.duration_ms) <= 30


def test_transcode_to_opus_keeps_mono_raw_telephony(media: dict[str, Path], tmp_path: Path) -> None:
    info = transcode_to_opus(media["rawulaw"], tmp_path / "raw.opus")
    assert info.channels == 1
    assert abs(info.duration_ms - SECONDS * 1000) <= 60


def test_transcode_output_is_private_whatever_the_umask(
    media: dict[str, Path], tmp_path: Path
) -> None:
    previous = os.umask(0o022)  # ffmpeg alone would create the output 0644
    try:
        transcode_to_opus(media["wav"], tmp_path / "private.opus", label=LABEL)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "private.opus").stat().st_mode) == 0o600


def test_transcode_of_broken_input_fails_and_leaves_nothing(
    media: dict[str, Path], tmp_path: Path
) -> None:
    destination = tmp_path / "broken.opus"
    with pytest.raises(TruncatedAudio) as caught:
        transcode_to_opus(media["mp3_zero_tail"], destination, label=LABEL)
    assert PHONE not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_playback_streams_mp3_bytes(media: dict[str, Path]) -> None:
    chunks = list(transcode_for_playback(media["gsm"], "mp3", chunk_bytes=4096))
    data = b"".join(chunks)
    assert data[:3] == b"ID3" or data[0] == 0xFF
    assert len(chunks) > 1
    assert 10_000 < len(data) < 60_000  # six seconds at 32 kb/s


def test_playback_stops_ffmpeg_when_the_listener_leaves(media: dict[str, Path]) -> None:
    stream = transcode_for_playback(media["stereo"], "wav", chunk_bytes=1024)
    assert next(stream)[:4] == b"RIFF"
    stream.close()  # must not hang or leave ffmpeg behind


def test_playback_of_broken_input_raises_at_the_end(media: dict[str, Path]) -> None:
    with pytest.raises(TruncatedAudio):
        list(transcode_for_playback(media["mp3_zero_tail"], "opus", label=LABEL))


def test_missing_ffmpeg_is_a_tool_failure(
    media: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MediaToolFailed) as caught:
        probe_recording(media["gsm"], label=LABEL)
    # A PCM WAV is checked without ffmpeg, so it is still accepted.
    assert probe_recording(media["wav"], label=LABEL).codec == "pcm_s16le"
    assert caught.value.reason == "media_tool_failed"
    with pytest.raises(MediaToolFailed):
        transcode_to_opus(media["wav"], tmp_path / "out.opus", label=LABEL)
    with pytest.raises(MediaToolFailed):
        list(transcode_for_playback(media["wav"], "mp3"))


def test_timeout_kills_ffmpeg(media: dict[str, Path]) -> None:
    with pytest.raises(MediaToolFailed, match="timed out"):
        probe_recording(media["mp3"], label=LABEL, timeout_s=0.001)


def test_generated_calls_probe_as_the_manifest_expects(tmp_path: Path) -> None:
    """scripts/gen_calls.py's manifest and this module agree on every recording."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "gen_calls.py"
    spec = importlib.util.spec_from_file_location("gen_calls", script)
    assert spec is not None
    assert spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    sys.modules["gen_calls"] = gen
    spec.loader.exec_module(gen)
    out = tmp_path / "spool"
    gen.generate(
        gen.parse_args(
            ["--out", str(out), "--layout", "spool", "--count", "9", "--bad", "all",
             "--formats", "wav,ulaw,alaw,gsm,mp3,raw-ulaw,raw-alaw,raw-sln,raw-gsm",
             "--min-seconds", "4", "--max-seconds", "8", "--engine", "tones",
             "--customers", "20"]
        )
    )  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    outcomes = []
    for call in manifest["calls"]:
        if not call["recording_written"]:
            continue
        try:
            info = probe_recording(out / call["recording"], label=call["call_id"])
        except (MediaError, StillBeingWritten) as exc:
            state = "deferred" if isinstance(exc, StillBeingWritten) else "quarantined"
            outcome = (state, exc.reason, None)
        else:
            outcome = ("archived", None, info.duration_ms)
        outcomes.append(outcome)
        expected_reason = call["expected_reason"] if outcome[0] != "archived" else None
        assert outcome[:2] == (call["expected"], expected_reason), call["call_id"]
        if outcome[2] is not None:
            assert abs(outcome[2] - call["duration_s"] * 1000) <= 50, call["call_id"]
    assert {state for state, _, _ in outcomes} == {"archived", "quarantined", "deferred"}
