"""Probing a recording: is it audio we accept, and how long is it really?

:func:`probe_recording` checks, cheapest first:

1. the file's size and, for RIFF/WAVE, its header read with :mod:`struct`
   (empty, header only, still being written, what the data chunk claims);
2. ffprobe: is there an audio stream, with a codec we accept;
3. a full decode with ``-xerror``, so that ffmpeg fails on the first broken
   packet instead of exiting 0 over a damaged file, and any error line fails it
   too; its ``-progress`` output gives the decoded duration. A RIFF WAV is
   decoded without ``-xerror`` (ffmpeg calls the short last read of any WAV
   that ends before its data chunk claims a "corrupt packet", even a complete
   one streamed with unknown sizes): its length is judged in step 4;
4. the container's claimed duration against the decoded one (for a WAV, the
   data chunk size; for an MP3, its Xing/Info/VBRI frame; otherwise what
   ffprobe reports), allowing max(1 s, 2 %).

Memory stays flat however long the recording: only headers are read into
Python, and ffmpeg runs through :mod:`recarchive.media.transcode`'s plumbing
(progress parsed as it comes, a bounded stderr tail, a deadline). Error
messages name the ``label`` given by the caller, never the file: spool file
names carry phone numbers.
"""

from __future__ import annotations

import dataclasses
import struct
import subprocess
from collections.abc import Collection
from pathlib import Path
from typing import Any

import ffmpeg

from recarchive.media.formats import (
    RecordingFormat,
    canonical_codec,
    canonical_codecs,
    ffmpeg_support,
    format_for,
    normalise_extension,
)
from recarchive.media.interfaces import (
    DEFAULT_ALLOWED_CODECS,
    AudioInfo,
    EmptyRecording,
    HeaderLengthMismatch,
    MediaToolFailed,
    NoAudioFrames,
    StillBeingWritten,
    TruncatedAudio,
    UnsupportedCodec,
    durations_disagree,
)
from recarchive.media.transcode import (
    ERR_DETECT,
    QUIET_ARGS,
    ffprobe_audio,
    input_url,
    int_or_none,
    ms_or_none,
    run_ffmpeg,
)
from recarchive.media.wav import check_pcm_wav, pcm_format

#: Bytes of a canonical WAV header; a RIFF file no longer than this holds no audio.
WAV_HEADER_BYTES = 44
_UNKNOWN_SIZE = 0xFFFFFFFF
_MAX_WAV_CHUNKS = 64
_CONTAINER_NAMES = {"mov": "mp4", "matroska": "mkv"}


# --- headers read by hand --------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class WavHeader:
    """What a RIFF/WAVE header claims about the data that follows it."""

    data_offset: int
    data_size: int | None
    byte_rate: int
    file_size: int
    #: The ``fmt `` chunk's first bytes (format tag, channels, rate, alignment, bits...).
    fmt_chunk: bytes = b""

    @property
    def claimed_ms(self) -> int | None:
        """Duration the data chunk size claims, or ``None`` if unknown."""
        if self.data_size is None or self.byte_rate <= 0:
            return None
        return round(self.data_size * 1000 / self.byte_rate)

    @property
    def present_ms(self) -> int | None:
        """Duration of the data bytes actually in the file."""
        if self.byte_rate <= 0:
            return None
        present = max(0, self.file_size - self.data_offset)
        if self.data_size is not None:
            present = min(present, self.data_size)
        return round(present * 1000 / self.byte_rate)


def read_wav_header(path: Path, size: int, label: str) -> WavHeader | None:
    """Walk a RIFF/WAVE file's chunks up to ``data``; ``None`` if it is not RIFF/WAVE.

    Raises :class:`NoAudioFrames` for a header without audio and
    :class:`StillBeingWritten` for sizes not yet filled in (0) with audio after them.
    """
    with path.open("rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        if size <= WAV_HEADER_BYTES:
            raise NoAudioFrames(f"{label} is a WAV header without audio ({size} bytes)")
        riff_size = struct.unpack("<I", head[4:8])[0]
        byte_rate = 0
        fmt_chunk = b""
        position = 12
        for _ in range(_MAX_WAV_CHUNKS):
            handle.seek(position)
            chunk = handle.read(8)
            if len(chunk) < 8:
                break
            chunk_id, chunk_size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if chunk_id == b"fmt ":
                fmt_chunk = handle.read(min(chunk_size, 40))
                if len(fmt_chunk) >= 12:
                    byte_rate = struct.unpack("<I", fmt_chunk[8:12])[0]
            elif chunk_id == b"data":
                data_offset = position + 8
                if riff_size == 0 or chunk_size == 0:
                    if size > data_offset:
                        raise StillBeingWritten(
                            f"{label} is still being written: its WAV header has no sizes yet"
                        )
                    raise NoAudioFrames(f"{label} is a WAV header without audio ({size} bytes)")
                data_size = None if chunk_size == _UNKNOWN_SIZE else chunk_size
                return WavHeader(data_offset, data_size, byte_rate, size, fmt_chunk)
            position += 8 + chunk_size + (chunk_size & 1)
    raise NoAudioFrames(f"{label} is a WAV file without a data chunk ({size} bytes)")


def mp3_has_length_frame(path: Path) -> bool:
    """True if the first MPEG frame is a Xing/Info/VBRI frame (a frame count ffprobe uses).

    Without one, ffprobe's duration is a bitrate estimate, not a claim.
    """
    with path.open("rb") as handle:
        head = handle.read(10)
        offset = 0
        if len(head) == 10 and head[:3] == b"ID3":
            size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14
            size |= (head[8] & 0x7F) << 7 | (head[9] & 0x7F)
            offset = 10 + size + (10 if head[5] & 0x10 else 0)
        handle.seek(offset)
        block = handle.read(16384)
    for index in range(len(block) - 1):
        if block[index] == 0xFF and block[index + 1] & 0xE0 == 0xE0:
            frame = block[index : index + 200]
            return any(tag in frame for tag in (b"Xing", b"Info", b"VBRI"))
    return False


# --- the probe -------------------------------------------------------------------


def _decode_args(path: Path, options: dict[str, object], *, exit_on_error: bool) -> list[str]:
    stream = ffmpeg.input(input_url(path), err_detect=ERR_DETECT, **options)
    global_args = [*QUIET_ARGS, "-progress", "pipe:1"]
    if exit_on_error:
        global_args.append("-xerror")
    output = stream.output("-", f="null", map="0:a:0").global_args(*global_args)
    return list(output.compile(cmd="ffmpeg"))


def _container_claim_ms(
    path: Path, container: str, raw: bool, wav: WavHeader | None, fmt: dict[str, Any]
) -> int | None:
    if raw:
        return None
    if wav is not None:
        return wav.claimed_ms
    if container in ("wav", "w64"):
        return None  # ffprobe clamps a WAV's claim to the file size: not a claim
    if container == "mp3" and not mp3_has_length_frame(path):
        return None
    return ms_or_none(fmt.get("duration"))


def _decoded_ms(
    path: Path,
    entry: RecordingFormat | None,
    wav: WavHeader | None,
    name: str,
    timeout_s: float,
) -> int:
    """Decode the whole recording; its length in ms. Raises what a failed decode means."""
    # A RIFF WAV is decoded without -xerror (see the module docstring), as are the
    # formats whose demuxer does the same to a short last read; real decoding
    # errors still print, and a WAV cut short fails on its length.
    strict = wav is None and (entry is None or entry.strict_decode)
    options = entry.input_options() if entry is not None else {}
    args = _decode_args(path, options, exit_on_error=strict)
    outcome = run_ffmpeg(args, path, label=name, timeout_s=timeout_s)
    if outcome.failure is not None:
        claimed, present = (wav.claimed_ms, wav.present_ms) if wav else (None, None)
        if claimed is not None and present is not None and durations_disagree(claimed, present):
            raise HeaderLengthMismatch(
                f"{name}: the WAV header claims {claimed / 1000:.1f} s of audio "
                f"but the file holds {present / 1000:.1f} s"
            )
        raise TruncatedAudio(f"{name} does not decode cleanly: {outcome.failure}")
    decoded_ms = round((outcome.out_time_us or 0) / 1000)
    if decoded_ms <= 0:
        raise NoAudioFrames(f"{name} decodes to no audio")
    return decoded_ms


def check_codec(
    codec: str, allowed: Collection[str], name: str, entry: RecordingFormat | None = None
) -> None:
    """Refuse a codec that is not accepted, or that this ffmpeg cannot read, by its name.

    ``entry`` is the headerless format the codec comes in (its demuxer must exist too).
    Raises :class:`UnsupportedCodec`, or :class:`MediaToolFailed` if ffmpeg cannot be asked.
    """
    if codec not in allowed:
        raise UnsupportedCodec(f"{name} uses the codec {codec}, which is not accepted")
    try:
        support = ffmpeg_support()
    except (OSError, subprocess.SubprocessError) as exc:
        raise MediaToolFailed(f"ffmpeg could not list its decoders: {exc}") from exc
    why = support.cannot_read(entry) if entry is not None else None
    if why is None and codec not in support.codecs:
        why = "this ffmpeg has no decoder for it"
    if why is not None:
        raise UnsupportedCodec(f"{name} uses the codec {codec}, which cannot be decoded: {why}")


def probe_recording(
    path: Path,
    *,
    extension: str | None = None,
    allowed_codecs: Collection[str] = DEFAULT_ALLOWED_CODECS,
    label: str | None = None,
    timeout_s: float = 600.0,
    native_pcm: bool = True,
) -> AudioInfo:
    """Check that ``path`` is a complete recording in an accepted codec; describe it.

    ``extension`` (default: the path's) decides how headerless telephony
    streams are read; ``label`` names the recording in error messages. A
    PCM or G.711 WAV is checked natively (:mod:`recarchive.media.wav`) unless
    ``native_pcm`` is false; everything else goes through ffprobe and ffmpeg.

    Raises :class:`EmptyRecording`, :class:`NoAudioFrames`, :class:`NotAudio`,
    :class:`UnsupportedCodec`, :class:`TruncatedAudio` or
    :class:`HeaderLengthMismatch` (quarantine, with the error's ``reason``);
    :class:`StillBeingWritten` (look again later); :class:`MediaToolFailed`
    (ffmpeg missing, crashed or timed out, or the file unreadable: retry).
    """
    name = label or "recording"
    ext = normalise_extension(extension if extension is not None else path.suffix)
    entry = format_for(ext)
    options = entry.input_options() if entry is not None else {}
    raw = entry is not None and entry.raw
    allowed = canonical_codecs(allowed_codecs)
    try:
        size = path.stat().st_size
        if size == 0:
            raise EmptyRecording(f"{name} is empty (0 bytes)")
        wav = None if raw else read_wav_header(path, size, name)
    except OSError as exc:
        raise MediaToolFailed(f"{name} cannot be read: {exc.strerror}") from exc
    pcm = pcm_format(wav.fmt_chunk) if wav is not None and native_pcm else None
    if wav is not None and pcm is not None:
        return check_pcm_wav(
            fmt=pcm,
            data_offset=wav.data_offset,
            data_size=wav.data_size,
            file_size=size,
            allowed_codecs=allowed,
            name=name,
        )
    if raw:
        assert entry is not None
        check_codec(entry.codec, allowed, name, entry)

    fmt, stream = ffprobe_audio(path, options, label=name, timeout_s=timeout_s)
    codec = canonical_codec(str(stream.get("codec_name") or "unknown"))
    check_codec(codec, allowed, name)

    decoded_ms = _decoded_ms(path, entry, wav, name, timeout_s)

    container = str(fmt.get("format_name") or "unknown").split(",")[0]
    container = _CONTAINER_NAMES.get(container, container)
    try:
        header_ms = _container_claim_ms(path, container, raw, wav, fmt)
    except OSError as exc:
        raise MediaToolFailed(f"{name} cannot be read: {exc.strerror}") from exc
    if header_ms is not None and durations_disagree(header_ms, decoded_ms):
        raise HeaderLengthMismatch(
            f"{name}: the {container} header claims {header_ms / 1000:.1f} s "
            f"but the audio decodes to {decoded_ms / 1000:.1f} s"
        )
    return AudioInfo(
        container=container,
        codec=codec,
        channels=int_or_none(stream.get("channels")) or 0,
        sample_rate=int_or_none(stream.get("sample_rate")) or 0,
        duration_ms=decoded_ms,
        header_duration_ms=header_ms,
        bit_rate=int_or_none(fmt.get("bit_rate")) or int_or_none(stream.get("bit_rate")),
        size_bytes=size,
    )
