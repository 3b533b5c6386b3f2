"""Native validation of PCM and G.711 WAV files: the common case, without a process.

Most telephony recordings are RIFF/WAVE holding linear PCM, µ-law or A-law.
Decoding those is a table lookup per sample: there is no bitstream that can
be corrupt, only structure. ffmpeg fails such a file for exactly three
reasons, and this module checks the same three from the header and the file
size, without starting ffprobe and ffmpeg (two processes, ~140 ms on a small
machine, which would dominate the cost of archiving a call):

- the data chunk claims more audio than the file holds, by more than the
  tolerance (:class:`~recarchive.media.interfaces.HeaderLengthMismatch`);
- the audio ends in the middle of a sample frame, what ffmpeg reports as
  "Invalid PCM packet" (:class:`~recarchive.media.interfaces.TruncatedAudio`);
- no whole frame of audio at all
  (:class:`~recarchive.media.interfaces.NoAudioFrames`).

The decoded duration is the number of whole frames divided by the sample
rate, which is what ffmpeg's decoder produces. Every other WAV (GSM "wav49",
ADPCM, MP3 in RIFF, odd block alignment) goes through ffmpeg as before.
``tests/integration/test_media.py`` checks that both paths agree on every
PCM fixture, good and broken.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Collection

from recarchive.media.interfaces import (
    AudioInfo,
    HeaderLengthMismatch,
    NoAudioFrames,
    TruncatedAudio,
    UnsupportedCodec,
    durations_disagree,
)

_PCM, _FLOAT, _ALAW, _MULAW, _EXTENSIBLE = 0x0001, 0x0003, 0x0006, 0x0007, 0xFFFE
_CODECS = {
    (_PCM, 8): "pcm_u8",
    (_PCM, 16): "pcm_s16le",
    (_PCM, 24): "pcm_s24le",
    (_PCM, 32): "pcm_s32le",
    (_FLOAT, 32): "pcm_f32le",
    (_FLOAT, 64): "pcm_f64le",
    (_ALAW, 8): "pcm_alaw",
    (_MULAW, 8): "pcm_mulaw",
}


@dataclasses.dataclass(frozen=True, slots=True)
class PcmFormat:
    """The ``fmt `` chunk of a WAV whose samples need no real decoder."""

    codec: str
    channels: int
    sample_rate: int
    block_align: int


def pcm_format(fmt_chunk: bytes) -> PcmFormat | None:
    """The PCM/G.711 format a ``fmt `` chunk describes, or None for anything else."""
    if len(fmt_chunk) < 16:
        return None
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack("<HHIIHH", fmt_chunk[:16])
    if tag == _EXTENSIBLE and len(fmt_chunk) >= 26:
        tag = struct.unpack("<H", fmt_chunk[24:26])[0]  # first two bytes of the sub-format GUID
    codec = _CODECS.get((tag, bits))
    if codec is None or channels < 1 or rate < 1 or block_align != channels * bits // 8:
        return None
    return PcmFormat(codec, channels, rate, block_align)


def check_pcm_wav(
    *,
    fmt: PcmFormat,
    data_offset: int,
    data_size: int | None,
    file_size: int,
    allowed_codecs: Collection[str],
    name: str,
) -> AudioInfo:
    """Validate and describe a PCM/G.711 WAV from its header and size alone."""
    if fmt.codec not in allowed_codecs:
        raise UnsupportedCodec(f"{name} uses the codec {fmt.codec}, which is not accepted")
    frame_ms = 1000 / fmt.sample_rate
    available = max(0, file_size - data_offset)
    present = available if data_size is None else min(available, data_size)
    frames, partial = divmod(present, fmt.block_align)
    decoded_ms = round(frames * frame_ms)
    claimed_ms = None
    if data_size is not None:
        claimed_ms = round(data_size // fmt.block_align * frame_ms)
    short = data_size is not None and present < data_size
    if claimed_ms is not None and short and durations_disagree(claimed_ms, decoded_ms):
        raise HeaderLengthMismatch(
            f"{name}: the WAV header claims {claimed_ms / 1000:.1f} s of audio "
            f"but the file holds {decoded_ms / 1000:.1f} s"
        )
    if partial:
        raise TruncatedAudio(f"{name} does not decode cleanly: the audio ends mid-sample")
    if frames == 0:
        raise NoAudioFrames(f"{name} decodes to no audio")
    return AudioInfo(
        container="wav",
        codec=fmt.codec,
        channels=fmt.channels,
        sample_rate=fmt.sample_rate,
        duration_ms=decoded_ms,
        header_duration_ms=claimed_ms,
        bit_rate=fmt.block_align * fmt.sample_rate * 8,
        size_bytes=file_size,
    )
