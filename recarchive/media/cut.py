"""Cutting a stretch out of a recording: a training clip, as Ogg Opus.

:func:`cut_clip` decodes ``src`` from ``start_ms`` to ``end_ms`` (ffmpeg
seeks by decoding, so the cut is sample-accurate for every format) and
encodes it to Ogg Opus with ONE ffmpeg run, under the same deadline and
process rules as every other run (:func:`recarchive.media.transcode.run_ffmpeg`).
With ``keep_channel`` the clip is that one channel of a stereo recording,
as mono: ``pan=mono|c0=c1`` keeps the right channel and nothing of the left
(no mix, no downmix), so an agent-only clip carries no sample of the
caller's channel.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path

from recarchive.media.formats import input_options_for
from recarchive.media.interfaces import NoAudioFrames, TruncatedAudio
from recarchive.media.transcode import QUIET_ARGS, input_url, read_ogg_opus, run_ffmpeg
from recarchive.private_files import create_private_file

__all__ = ["CLIP_TIMEOUT_S", "CutClip", "clip_args", "cut_clip"]

#: The deadline of one cut: a clip is at most minutes long.
CLIP_TIMEOUT_S = 300.0
#: The bit rate of a clip's Opus: speech, one or two voices.
CLIP_BITRATE = "32k"


@dataclasses.dataclass(frozen=True)
class CutClip:
    """The clip written: its decoded length and channels."""

    duration_ms: int
    channels: int


def clip_args(
    src: Path, dst: Path, extension: str, start_ms: int, end_ms: int, keep_channel: int | None
) -> list[str]:
    """The ffmpeg command that writes ``start_ms..end_ms`` of ``src`` to ``dst`` as Ogg Opus."""
    args = ["ffmpeg", *QUIET_ARGS, "-progress", "pipe:1"]
    for key, value in input_options_for(extension).items():
        args += [f"-{key}", str(value)]  # a headerless stream's demuxer and its options
    args += ["-i", input_url(src), "-map", "0:a:0", "-map_metadata", "-1"]
    args += ["-ss", f"{start_ms / 1000:.3f}", "-t", f"{(end_ms - start_ms) / 1000:.3f}"]
    if keep_channel is not None:
        args += ["-af", f"pan=mono|c0=c{keep_channel}", "-ac", "1"]
    args += ["-c:a", "libopus", "-b:a", CLIP_BITRATE, "-application", "voip"]
    args += ["-f", "ogg", "-y", input_url(dst)]
    return args


def cut_clip(
    src: Path,
    dst: Path,
    *,
    extension: str,
    start_ms: int,
    end_ms: int,
    keep_channel: int | None = None,
    timeout_s: float = CLIP_TIMEOUT_S,
) -> CutClip:
    """Write ``start_ms..end_ms`` of ``src`` to ``dst`` (Ogg Opus), one channel only if asked.

    ``dst`` appears only complete. Raises :class:`TruncatedAudio` when the
    source does not decode, :class:`NoAudioFrames` for a cut with no audio,
    and :class:`~recarchive.media.interfaces.MediaToolFailed` for a missing or
    crashed ffmpeg, a timeout or a full disk.
    """
    partial = dst.with_name(f".{dst.name}.partial")
    args = clip_args(src, partial, extension, start_ms, end_ms, keep_channel)
    try:
        create_private_file(partial)  # ffmpeg overwrites it and keeps its mode 0600
        outcome = run_ffmpeg(args, src, label="clip", timeout_s=timeout_s)
        if outcome.failure is not None:
            raise TruncatedAudio(f"the recording does not cut cleanly: {outcome.failure}")
        decoded_ms = round((outcome.out_time_us or 0) / 1000)
        if decoded_ms <= 0:
            raise NoAudioFrames("the clip holds no audio")
        channels, _ = read_ogg_opus(partial)
        os.replace(partial, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
    return CutClip(decoded_ms, channels)
