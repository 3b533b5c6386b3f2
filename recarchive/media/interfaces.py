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


#: Codecs accepted into the archive, by canonical name
#: (:func:`~recarchive.media.formats.canonical_codec`): every telephony codec
#: Asterisk records and the common lossy and lossless ones. ``adpcm_ms`` and
#: friends are deliberately absent. A codec accepted here that this ffmpeg cannot
#: decode is still refused, by name (``unsupported_codec``).
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
        "speex",
        "flac",
        "g722",
        "g726",
        "g729",
        "g723",
        "ilbc",
        "siren7",
        "siren14",
        "adpcm_ima_wav",
        "adpcm_ima_oki",
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
