"""Two legs of one call, recorded apart, made into one stereo recording.

Asterisk's MixMonitor with its ``r()`` and ``t()`` options writes what the
recorded channel received and what it transmitted to two mono files. A
trainer wants to hear both sides at once, with each voice on a side of its
own, as the archive's other stereo recordings have them: the caller on the
left channel, the agent on the right.

:func:`merge_legs` checks each leg on its own first (a full probe, so that an
empty, unreadable or broken leg is named as the caller's or the agent's leg),
then lays both from their first sample side by side with ONE ffmpeg run:
each leg resampled to the higher of the two rates, panned to its side, and
summed with ``amix=duration=longest:normalize=0`` (each side holds one leg,
so the sum is the legs themselves). The shorter leg is thereby padded with
silence and the result lasts as long as the longer leg. The output is PCM
16-bit WAV written bit-exactly: the same legs always give the same bytes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Collection
from pathlib import Path

from recarchive.media.formats import input_options_for
from recarchive.media.interfaces import AudioInfo, NoAudioFrames, TruncatedAudio
from recarchive.media.probe import probe_recording
from recarchive.media.transcode import (
    ERR_DETECT,
    QUIET_ARGS,
    TRANSCODE_TIMEOUT_S,
    input_url,
    run_ffmpeg,
)
from recarchive.private_files import create_private_file


@dataclasses.dataclass(frozen=True)
class LegFile:
    """One leg as a local file, and how messages name it (never by its file name)."""

    path: Path
    #: The extension that tells its format (``wav``, ``WAV``, ``ulaw``...).
    extension: str
    #: ``caller leg (-in)``, say: file names hold phone numbers.
    label: str


@dataclasses.dataclass(frozen=True)
class MergedLegs:
    """What each leg held (their probes) and the decoded length of the merged file."""

    caller: AudioInfo
    agent: AudioInfo
    duration_ms: int


def merge_legs(
    caller: LegFile,
    agent: LegFile,
    dst: Path,
    *,
    allowed_codecs: Collection[str],
    timeout_s: float = TRANSCODE_TIMEOUT_S,
) -> MergedLegs:
    """Write the caller's leg on the left and the agent's on the right of a stereo WAV at ``dst``.

    Each leg is probed first: its :class:`~recarchive.media.interfaces.MediaError`
    (empty, not audio, truncated, codec not allowed, still being written) is
    raised as it is, with the leg's label in its message. ``dst`` appears only
    complete. Raises :class:`TruncatedAudio` when the probed legs still do not
    merge cleanly, and :class:`~recarchive.media.interfaces.MediaToolFailed`
    for a missing or crashed ffmpeg, a timeout or a full disk.
    """
    infos = [
        probe_recording(
            leg.path,
            extension=leg.extension,
            allowed_codecs=allowed_codecs,
            label=leg.label,
            timeout_s=timeout_s,
        )
        for leg in (caller, agent)
    ]
    rate = max(info.sample_rate for info in infos)
    partial = dst.with_name(f".{dst.name}.partial")
    args = merge_args(caller, agent, partial, rate)
    try:
        create_private_file(partial)  # ffmpeg overwrites it and keeps its mode 0600
        # The failure message is not used: it might quote the other leg's name.
        outcome = run_ffmpeg(args, caller.path, label="split legs", timeout_s=timeout_s)
        if outcome.failure is not None:
            raise TruncatedAudio("the two legs do not merge into one recording")
        decoded_ms = round((outcome.out_time_us or 0) / 1000)
        if decoded_ms <= 0:
            raise NoAudioFrames("the two legs merge into no audio")
        os.replace(partial, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
    return MergedLegs(infos[0], infos[1], decoded_ms)


def merge_args(caller: LegFile, agent: LegFile, dst: Path, rate: int) -> list[str]:
    """The ffmpeg command that merges the legs (caller left, agent right) at ``rate`` Hz."""
    args = ["ffmpeg", *QUIET_ARGS, "-progress", "pipe:1", "-fflags", "+bitexact"]
    for leg in (caller, agent):
        args += ["-err_detect", ERR_DETECT]
        for key, value in input_options_for(leg.extension).items():
            args += [f"-{key}", str(value)]  # a headerless stream's demuxer and its options
        args += ["-i", input_url(leg.path)]
    mono = f"aresample={rate},aformat=sample_fmts=s16:channel_layouts=mono"
    graph = (
        f"[0:a:0]{mono},pan=stereo|c0=c0|c1=0*c0[left];"
        f"[1:a:0]{mono},pan=stereo|c0=0*c0|c1=c0[right];"
        "[left][right]amix=inputs=2:duration=longest:normalize=0[out]"
    )
    args += ["-filter_complex", graph, "-map", "[out]", "-map_metadata", "-1"]
    args += ["-c:a", "pcm_s16le", "-flags:a", "+bitexact", "-f", "wav", "-y", input_url(dst)]
    return args
