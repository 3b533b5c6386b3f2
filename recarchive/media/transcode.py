"""Running ffmpeg and ffprobe over recordings, and the two transcodes.

The plumbing shared with :mod:`recarchive.media.probe` lives here: a process
with a deadline and a bounded stderr (:class:`ToolProcess`), an ffmpeg run
that reports its decoded length (:func:`run_ffmpeg`), the ffprobe query
(:func:`ffprobe_audio`) and the scrubbing of tool messages. Then the
transcodes: to Ogg Opus for the archive (:func:`transcode_to_opus`) and on the
fly for playback (:func:`transcode_for_playback`).

Every run streams: nothing but progress lines, the last few KiB of stderr and,
for playback, fixed-size chunks of output pass through Python, so memory stays
flat for a call of any length. A process is killed when its deadline passes,
when an exception interrupts the work, or when a playback consumer stops
reading early. ffmpeg always gets its input as a ``file:`` URL, so a hostile
file name is neither an option nor another protocol, and messages never carry
the path: spool file names hold phone numbers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import subprocess
import threading
from collections.abc import Generator
from pathlib import Path
from typing import IO, Any, Literal, Self

import ffmpeg

from recarchive.media.formats import format_for, normalise_extension
from recarchive.media.interfaces import (
    AudioInfo,
    EmptyRecording,
    MediaToolFailed,
    NoAudioFrames,
    NotAudio,
    TruncatedAudio,
)
from recarchive.private_files import create_private_file

#: How much of a tool's stderr is kept (its tail): enough for the last error lines.
STDERR_TAIL_BYTES = 4096
#: Most bytes of ffprobe JSON read (it is asked for a few fields only).
PROBE_OUTPUT_LIMIT = 1024 * 1024
#: ffmpeg global options shared by every run: quiet, errors only, never reading stdin.
QUIET_ARGS = ("-nostdin", "-hide_banner", "-nostats", "-v", "error")
#: Decoder error detection used with ``-xerror`` (``explode`` adds nothing ffmpeg 5.1
#: does not already fail on, and rejects files that play).
ERR_DETECT = "crccheck+bitstream+buffer"

_ADDRESS = re.compile(r"\s*@ 0x[0-9a-fA-F]+")
_LONG_NUMBER = re.compile(r"\+?\d[\d ]{5,}\d")
_REPEATED = re.compile(r"^\s*Last message repeated", re.IGNORECASE)
#: stderr fragments that blame the machine, not the recording (retry, don't quarantine).
_TOOL_FAULTS = (
    "No space left on device", "Cannot allocate memory", "Permission denied",
    "Input/output error", "Unknown encoder", "Encoder not found",
    "Error while opening encoder", "Option not found", "Unrecognized option",
)  # fmt: skip


def input_url(path: Path) -> str:
    """The ``file:`` URL ffmpeg gets for a path (never an option, never another protocol)."""
    return "file:" + str(path.absolute())


def sanitise_tool_message(text: str, path: Path | None = None) -> str:
    """The last meaningful line of a tool's stderr, without the file's name or long numbers."""
    if path is not None:
        forms = {"file:" + str(path.absolute()), str(path.absolute()), str(path), path.name}
        for form in sorted((f for f in forms if f), key=len, reverse=True):
            text = text.replace(form, "input")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not _REPEATED.match(line)]
    if not lines:
        return "no error message"
    line = _ADDRESS.sub("", lines[-1])
    line = _LONG_NUMBER.sub("#", line)
    return line[:200]


# --- running ffmpeg and ffprobe --------------------------------------------------


class ToolProcess:
    """A running ffmpeg or ffprobe with a bounded stderr tail and a deadline.

    Used as a context manager: leaving the block kills the process if it is
    still running (consumer stopped early, exception, timeout) and reaps it.
    """

    def __init__(self, args: list[str], *, tool: str, label: str, timeout_s: float) -> None:
        self.tool = tool
        self.label = label
        self.timeout_s = timeout_s
        self.timed_out = False
        self._tail = bytearray()
        try:
            # A session of its own: Ctrl-C at a terminal (SIGINT to the foreground
            # process group) stops recarchive between recordings, never the decode of
            # the recording in hand, which would end in a false truncated_audio.
            self._process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise MediaToolFailed(f"{tool} is not installed or not on PATH") from exc
        except OSError as exc:
            raise MediaToolFailed(f"{tool} could not be started: {exc.strerror}") from exc
        self._reader = threading.Thread(target=self._drain_stderr, daemon=True)
        self._reader.start()
        self._timer = threading.Timer(timeout_s, self._expire)
        self._timer.daemon = True
        self._timer.start()

    @property
    def stdout(self) -> IO[bytes]:
        assert self._process.stdout is not None
        return self._process.stdout

    def _drain_stderr(self) -> None:
        stream = self._process.stderr
        assert stream is not None
        while chunk := stream.read1(65536):  # type: ignore[attr-defined]
            self._tail += chunk
            del self._tail[:-STDERR_TAIL_BYTES]

    def _expire(self) -> None:
        self.timed_out = True
        self._process.kill()

    def stderr_text(self) -> str:
        return bytes(self._tail).decode("utf-8", errors="replace")

    def wait(self, path: Path) -> int:
        """Wait for the exit code.

        Raises :class:`MediaToolFailed` on a timeout, a crash (killed by a
        signal) or a fault of the machine on stderr (disk full, encoder missing).
        """
        returncode = self._process.wait()
        self._timer.cancel()
        self._reader.join()
        name, label = self.tool, self.label
        if self.timed_out:
            raise MediaToolFailed(f"{name} timed out after {self.timeout_s:g} s on {label}")
        if returncode < 0:
            raise MediaToolFailed(f"{name} was killed by signal {-returncode} on {label}")
        for line in reversed(self.stderr_text().splitlines()):
            if any(marker in line for marker in _TOOL_FAULTS):
                detail = sanitise_tool_message(line, path)
                raise MediaToolFailed(f"{name} failed on {label}: {detail}")
        return returncode

    def close(self) -> None:
        self._timer.cancel()
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._reader.join()
        for stream in (self._process.stdout, self._process.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclasses.dataclass(frozen=True, slots=True)
class FfmpegOutcome:
    """How an ffmpeg run ended: its decoded length, or why it failed (sanitised)."""

    out_time_us: int | None
    failure: str | None


def run_ffmpeg(args: list[str], path: Path, *, label: str, timeout_s: float) -> FfmpegOutcome:
    """Run ffmpeg with ``-progress pipe:1``; collect the final ``out_time_us``.

    A non-zero exit or any line on stderr (at ``-v error``) is a failure of the
    input, returned sanitised; a missing binary, crash, timeout or a fault of the
    machine (disk full, encoder missing) raises :class:`MediaToolFailed`.
    """
    out_time: int | None = None
    with ToolProcess(args, tool="ffmpeg", label=label, timeout_s=timeout_s) as process:
        for raw in process.stdout:
            key, _, value = raw.decode("ascii", errors="replace").strip().partition("=")
            if key in ("out_time_us", "out_time_ms") and value.isdigit():
                out_time = int(value)
        returncode = process.wait(path)
        stderr = process.stderr_text()
    if stderr.strip():
        return FfmpegOutcome(out_time, sanitise_tool_message(stderr, path))
    if returncode != 0:
        return FfmpegOutcome(out_time, f"ffmpeg stopped with exit status {returncode}")
    return FfmpegOutcome(out_time, None)


def ffprobe_audio(
    path: Path, options: dict[str, object], *, label: str, timeout_s: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    """ffprobe's ``format`` section and its first audio stream; :class:`NotAudio` if none."""
    args = ["ffprobe", "-hide_banner", "-v", "error"]
    for key, value in options.items():
        args += [f"-{key}", str(value)]
    entries = "format=format_name,duration,bit_rate:stream=codec_type,codec_name,channels,"
    args += ["-select_streams", "a:0", "-show_entries", entries + "sample_rate,bit_rate"]
    args += ["-of", "json", input_url(path)]
    with ToolProcess(args, tool="ffprobe", label=label, timeout_s=timeout_s) as process:
        output = process.stdout.read(PROBE_OUTPUT_LIMIT + 1)
        if len(output) > PROBE_OUTPUT_LIMIT:  # leaving the block kills ffprobe
            raise NotAudio(f"{label}: ffprobe's report is implausibly large")
        returncode = process.wait(path)
        stderr = process.stderr_text()
    if returncode != 0:
        raise NotAudio(
            f"{label} is not an audio file ffprobe can read: {sanitise_tool_message(stderr, path)}"
        )
    try:
        report = json.loads(output)
    except ValueError:
        raise NotAudio(f"{label}: ffprobe's report could not be read") from None
    streams = [s for s in report.get("streams", []) if s.get("codec_type") == "audio"]
    if not streams:
        raise NotAudio(f"{label} has no audio stream")
    return report.get("format", {}), streams[0]


def int_or_none(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def ms_or_none(value: object) -> int | None:
    try:
        return round(float(str(value)) * 1000)
    except ValueError:
        return None


# --- transcoding -----------------------------------------------------------------


#: Default deadline of an archive transcode (ffmpeg does ~190x realtime per core:
#: a 3-hour call takes about a minute).
TRANSCODE_TIMEOUT_S = 1800.0
#: Default deadline of a playback stream (its pace is the listener's).
PLAYBACK_TIMEOUT_S = 4 * 3600.0
#: Size of the chunks a playback stream yields.
PLAYBACK_CHUNK_BYTES = 64 * 1024

PlaybackFormat = Literal["opus", "mp3", "wav"]

#: ffmpeg output options per playback format.
_PLAYBACK_OUTPUT: dict[str, dict[str, object]] = {
    "opus": {"f": "ogg", "acodec": "libopus", "audio_bitrate": "24k", "application": "voip"},
    "mp3": {"f": "mp3", "acodec": "libmp3lame", "audio_bitrate": "32k"},
    "wav": {"f": "wav", "acodec": "pcm_s16le"},
}

#: Media types of the playback formats, for the HTTP layer.
PLAYBACK_CONTENT_TYPES = {"opus": "audio/ogg", "mp3": "audio/mpeg", "wav": "audio/wav"}


def is_riff_wave(path: Path) -> bool:
    """True if the file starts as a RIFF/WAVE file does."""
    with path.open("rb") as handle:
        head = handle.read(12)
    return head[:4] == b"RIFF" and head[8:12] == b"WAVE"


def _input(src: Path, extension: str | None, name: str) -> tuple[Any, bool]:
    """The ffmpeg-python input node, and whether ffmpeg may run with ``-xerror``.

    As in :func:`~recarchive.media.probe.probe_recording`, a RIFF WAV is read
    without ``-xerror``: ffmpeg flags its last short read as a corrupt packet.
    """
    ext = normalise_extension(extension if extension is not None else src.suffix)
    entry = format_for(ext)
    options = entry.input_options() if entry is not None else {}
    try:
        if src.stat().st_size == 0:
            raise EmptyRecording(f"{name} is empty (0 bytes)")
        riff = not (entry is not None and entry.raw) and is_riff_wave(src)
    except OSError as exc:
        raise MediaToolFailed(f"{name} cannot be read: {exc.strerror}") from exc
    node = ffmpeg.input(input_url(src), err_detect=ERR_DETECT, **options)
    return node, not riff and (entry is None or entry.strict_decode)


def _global_args(exit_on_error: bool, *extra: str) -> list[str]:
    return [*QUIET_ARGS, *(["-xerror"] if exit_on_error else []), *extra]


def transcode_to_opus(
    src: Path,
    dst: Path,
    *,
    bitrate_kbps: int = 16,
    extension: str | None = None,
    label: str | None = None,
    timeout_s: float = TRANSCODE_TIMEOUT_S,
) -> AudioInfo:
    """Write ``src`` to ``dst`` as Ogg Opus (libopus, VoIP tuning); describe ``dst``.

    The channel layout is kept (stereo stays stereo: customer left, agent
    right); libopus picks its sample rate. ``dst`` appears only complete: ffmpeg
    writes a temporary file beside it that is renamed at the end and removed on
    any failure. The duration is the decoded one, from ffmpeg's progress
    report; channels and the header's length are read from the Ogg pages.

    Raises :class:`TruncatedAudio` if the input does not decode cleanly (ffmpeg
    runs with ``-xerror``), :class:`EmptyRecording`, :class:`NoAudioFrames`, and
    :class:`MediaToolFailed` for a missing or crashed ffmpeg, a timeout or a full disk.
    """
    name = label or "recording"
    stream, exit_on_error = _input(src, extension, name)
    partial = dst.with_name(f".{dst.name}.partial")
    output = stream.output(
        input_url(partial),
        f="ogg",
        map="0:a:0",
        acodec="libopus",
        audio_bitrate=f"{bitrate_kbps}k",
        application="voip",
    ).global_args(*_global_args(exit_on_error, "-progress", "pipe:1"))
    args = list(output.compile(cmd="ffmpeg", overwrite_output=True))
    try:
        create_private_file(partial)  # ffmpeg overwrites it and keeps its mode 0600
        outcome = run_ffmpeg(args, src, label=name, timeout_s=timeout_s)
        if outcome.failure is not None:
            raise TruncatedAudio(f"{name} does not decode cleanly: {outcome.failure}")
        decoded_ms = round((outcome.out_time_us or 0) / 1000)
        if decoded_ms <= 0:
            raise NoAudioFrames(f"{name} decodes to no audio")
        channels, header_ms = read_ogg_opus(partial)
        os.replace(partial, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
    size = dst.stat().st_size
    return AudioInfo(
        container="ogg",
        codec="opus",
        channels=channels,
        sample_rate=OPUS_RATE,
        duration_ms=decoded_ms,
        header_duration_ms=header_ms,
        bit_rate=round(size * 8000 / decoded_ms),
        size_bytes=size,
    )


#: Opus always decodes at 48 kHz; its granule positions count 48 kHz samples.
OPUS_RATE = 48000


def read_ogg_opus(path: Path) -> tuple[int, int | None]:
    """Channels (from the OpusHead packet) and duration (from the last page) of an Ogg Opus file.

    Read by hand from the first and last Ogg pages: describing the file we just
    wrote needs no second process. Raises :class:`MediaToolFailed` when the file
    is not the Ogg Opus ffmpeg was asked for.
    """
    with path.open("rb") as handle:
        first = handle.read(512)
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - 65536))
        tail = handle.read()
    head_at = first.find(b"OpusHead")
    if not first.startswith(b"OggS") or head_at < 0 or len(first) < head_at + 12:
        raise MediaToolFailed("ffmpeg did not write an Ogg Opus file")
    channels = first[head_at + 9]
    pre_skip = int.from_bytes(first[head_at + 10 : head_at + 12], "little")
    last = tail.rfind(b"OggS")
    if last < 0 or len(tail) < last + 14:
        return channels, None
    granule = int.from_bytes(tail[last + 6 : last + 14], "little", signed=True)
    if granule <= pre_skip:
        return channels, None
    return channels, round((granule - pre_skip) * 1000 / OPUS_RATE)


def transcode_for_playback(
    src: Path,
    fmt: PlaybackFormat,
    *,
    extension: str | None = None,
    label: str | None = None,
    timeout_s: float = PLAYBACK_TIMEOUT_S,
    chunk_bytes: int = PLAYBACK_CHUNK_BYTES,
) -> Generator[bytes, None, None]:
    """Stream ``src`` transcoded to ``fmt`` as chunks of bytes, without temporary files.

    ffmpeg writes to a pipe; the generator yields what it reads. Closing the
    generator early (a listener who goes away) kills ffmpeg. Raises
    :class:`TruncatedAudio` at the end if the input turned out broken, and
    :class:`MediaToolFailed` as :func:`transcode_to_opus` does.
    """
    if fmt not in _PLAYBACK_OUTPUT:
        raise ValueError(f"unknown playback format {fmt!r}")
    name = label or "recording"
    stream, exit_on_error = _input(src, extension, name)
    output = stream.output("pipe:1", map="0:a:0", **_PLAYBACK_OUTPUT[fmt]).global_args(
        *_global_args(exit_on_error)
    )
    args = list(output.compile(cmd="ffmpeg"))
    return _stream(args, src, name, timeout_s, chunk_bytes)


def _stream(
    args: list[str], src: Path, name: str, timeout_s: float, chunk_bytes: int
) -> Generator[bytes, None, None]:
    with ToolProcess(args, tool="ffmpeg", label=name, timeout_s=timeout_s) as process:
        while chunk := process.stdout.read(chunk_bytes):
            yield chunk
        returncode = process.wait(src)
        stderr = process.stderr_text()
        if returncode != 0 or stderr.strip():
            detail = sanitise_tool_message(stderr, src) if stderr.strip() else "ffmpeg failed"
            raise TruncatedAudio(f"{name} does not decode cleanly: {detail}")
