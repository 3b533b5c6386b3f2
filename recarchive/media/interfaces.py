"""The contract of the media domain: what a probe reports and what can go wrong.

:func:`~recarchive.media.probe.probe_recording` answers with an :class:`AudioInfo`
or raises one of the errors below. Every :class:`MediaError` carries a stable
``reason`` code under which the ingest quarantines the recording; two errors
are not the file's fault and are never quarantined: :class:`MediaToolFailed`
(ffmpeg missing, crashed or too slow: retry later) and
:class:`StillBeingWritten` (the telephony system has not closed the file yet:
look again on the next pass).

Recording file names carry phone numbers, so no message here ever names the
file: callers pass a ``label`` (a work-item id, an object key) that stands in
for it.
"""

from __future__ import annotations

import dataclasses
from enum import StrEnum

from recarchive.errors import RecArchiveError

# --- what a probe reports --------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class AudioInfo:
    """What ffprobe and a full decode found in one recording.

    ``duration_ms`` is the decoded duration: what a listener hears. The
    container's own claim is kept apart in ``header_duration_ms`` (``None``
    when the container makes none: headerless raw streams, MP3 without a
    Xing/Info/VBRI frame, a WAV streamed with unknown size).
    """

    container: str
    codec: str
    channels: int
    sample_rate: int
    duration_ms: int
    header_duration_ms: int | None
    bit_rate: int | None
    size_bytes: int


# --- headerless telephony streams ------------------------------------------------


class RawFormat(StrEnum):
    """ffmpeg demuxers for the headerless streams telephony systems write."""

    MULAW = "mulaw"
    ALAW = "alaw"
    S16LE = "s16le"
    GSM = "gsm"


#: Sample rate of every headerless telephony stream (narrowband).
RAW_SAMPLE_RATE = 8000

#: Extension (lower case, no dot) → raw format and sample rate. Asterisk writes
#: ``ulaw``/``pcm``/``mu``, ``alaw``/``al``, ``sln``/``raw`` (and ``slnNN`` for
#: wideband signed linear); FreeSWITCH writes ``gsm``. Asterisk's ``wav49`` is
#: saved as ``.WAV``: MS-GSM inside RIFF, an ordinary WAV to ffmpeg.
RAW_EXTENSIONS: dict[str, tuple[RawFormat, int]] = {
    "ulaw": (RawFormat.MULAW, RAW_SAMPLE_RATE),
    "pcm": (RawFormat.MULAW, RAW_SAMPLE_RATE),
    "mu": (RawFormat.MULAW, RAW_SAMPLE_RATE),
    "alaw": (RawFormat.ALAW, RAW_SAMPLE_RATE),
    "al": (RawFormat.ALAW, RAW_SAMPLE_RATE),
    "sln": (RawFormat.S16LE, RAW_SAMPLE_RATE),
    "raw": (RawFormat.S16LE, RAW_SAMPLE_RATE),
    "sln12": (RawFormat.S16LE, 12000),
    "sln16": (RawFormat.S16LE, 16000),
    "sln24": (RawFormat.S16LE, 24000),
    "sln32": (RawFormat.S16LE, 32000),
    "sln44": (RawFormat.S16LE, 44100),
    "sln48": (RawFormat.S16LE, 48000),
    "gsm": (RawFormat.GSM, RAW_SAMPLE_RATE),
}


def normalise_extension(extension: str | None) -> str:
    """``".WAV"`` → ``"WAV"``: the extension without its dot, case kept."""
    return (extension or "").strip().lstrip(".")


def raw_format_for(extension: str | None) -> RawFormat | None:
    """The raw format a file with this extension holds, or ``None`` if it has a header."""
    entry = RAW_EXTENSIONS.get(normalise_extension(extension).lower())
    return entry[0] if entry else None


def input_options_for(extension: str | None) -> dict[str, object]:
    """ffmpeg-python keyword arguments that make ffmpeg/ffprobe read a file of this extension.

    Headerless streams need the demuxer, rate and channel count spelled out
    (``{"f": "mulaw", "ar": 8000, "ac": 1}``); everything else is detected from
    its content, so the answer is ``{}``.
    """
    entry = RAW_EXTENSIONS.get(normalise_extension(extension).lower())
    if entry is None:
        return {}
    raw_format, sample_rate = entry
    return {"f": raw_format.value, "ar": sample_rate, "ac": 1}


#: Codecs accepted into the archive: telephony codecs and the common lossy and
#: lossless ones. ``adpcm_ms`` and friends are deliberately absent.
DEFAULT_ALLOWED_CODECS: frozenset[str] = frozenset(
    {
        "pcm_s16le",
        "pcm_s16be",
        "pcm_u8",
        "pcm_s24le",
        "pcm_s32le",
        "pcm_f32le",
        "pcm_mulaw",
        "pcm_alaw",
        "gsm",
        "gsm_ms",
        "mp3",
        "opus",
        "vorbis",
        "flac",
        "g722",
        "adpcm_g726",
        "adpcm_g726le",
        "adpcm_ima_wav",
        "aac",
    }
)

#: A decoded duration may differ from the container's claim by this much, or by
#: :data:`MISMATCH_TOLERANCE_RATIO` of the decoded duration if that is more.
MISMATCH_TOLERANCE_MS = 1000
MISMATCH_TOLERANCE_RATIO = 0.02


def durations_disagree(claimed_ms: int, decoded_ms: int) -> bool:
    """True if a container's claimed duration is too far from the decoded one."""
    tolerance = max(MISMATCH_TOLERANCE_MS, MISMATCH_TOLERANCE_RATIO * decoded_ms)
    return abs(claimed_ms - decoded_ms) > tolerance


# --- errors ----------------------------------------------------------------------


class MediaError(RecArchiveError):
    """The recording is not usable audio.

    ``reason`` is the stable code under which the recording is quarantined.
    """

    reason: str = "media_error"


class EmptyRecording(MediaError):
    """The recording is empty (0 bytes)."""

    reason = "zero_byte"


class NoAudioFrames(MediaError):
    """The recording holds a header but no audio."""

    reason = "header_only"


class NotAudio(MediaError):
    """The recording is not an audio file ffprobe can read."""

    reason = "not_audio"


class TruncatedAudio(MediaError):
    """The recording does not decode cleanly to its end: it is truncated or corrupt."""

    reason = "truncated_audio"


class HeaderLengthMismatch(MediaError):
    """The container header claims a duration the audio does not have."""

    reason = "header_length_mismatch"


class UnsupportedCodec(MediaError):
    """The recording's codec is not accepted into the archive."""

    reason = "unsupported_codec"


class MediaToolFailed(MediaError):
    """ffmpeg or ffprobe is missing, crashed or timed out; the recording may be fine.

    Not the file's fault: callers retry later rather than quarantine.
    """

    reason = "media_tool_failed"


class StillBeingWritten(RecArchiveError):
    """The recording is still being written; look again on the next pass.

    Asterisk writes the RIFF and data chunk sizes of a WAV only when it closes
    the file, so until then they read 0 while audio bytes follow the header.
    """

    reason = "still_writing"
