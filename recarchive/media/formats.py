"""Every recording format Asterisk 18 to 22 and FreePBX 16 and 17 can write, in one table.

:data:`RECORDING_FORMATS` is the single source of truth: the spool source
discovers exactly its extensions, the probe and the transcodes read a file by
its entry, and codec names are compared in their canonical form
(:func:`canonical_codec`), so that ffprobe's ``adpcm_g722`` is the ``g722`` an
operator writes in ``audio.allowed_codecs``.

Extensions are the ones Asterisk's format modules register (``file_exts``),
compared case-insensitively: ``WAV`` (wav49, MS-GSM in RIFF) and ``wav`` are
both RIFF files whose codec ffprobe finds in the header. Headerless streams
(G.711, signed linear at every rate, GSM, G.722, G.726, G.729, ...) need
their ffmpeg demuxer and its options spelled out; a stream ffmpeg has no
demuxer for (``siren7``, ``siren14``, Asterisk's header-less ``ilbc``,
``vox``, ``g723``'s framed layout) is refused by name with
``unsupported_codec``, as is a codec this ffmpeg build cannot decode
(:func:`ffmpeg_support`).
"""

from __future__ import annotations

import dataclasses
import functools
import subprocess
from collections.abc import Collection, Mapping
from types import MappingProxyType


@dataclasses.dataclass(frozen=True, slots=True)
class RecordingFormat:
    """One format a recording can arrive in.

    ``demuxer`` is ``None`` for files ffmpeg recognises by their content
    (RIFF, Ogg, MP3, FLAC); for a headerless stream it names ffmpeg's demuxer
    and ``options`` its AVOptions (sample rate, channels, code size).
    ``readable`` is false for headerless streams ffmpeg has no demuxer for.
    """

    extensions: tuple[str, ...]
    #: The Asterisk format module that writes it (or where else it comes from).
    module: str
    #: Canonical codec name (see :func:`canonical_codec`); for a detected
    #: container, the usual codec (the probe reports what it finds).
    codec: str
    demuxer: str | None = None
    sample_rate: int | None = None
    #: ffmpeg's decoded sample format of a headerless stream (``s16`` for all here).
    sample_format: str | None = None
    options: Mapping[str, int] = dataclasses.field(default_factory=dict)
    readable: bool = True
    #: False where ffmpeg's demuxer flags a complete file's short last read as a
    #: "corrupt packet" (as it does a RIFF WAV's): decoded without ``-xerror``,
    #: real decoding errors still fail it.
    strict_decode: bool = True

    @property
    def raw(self) -> bool:
        """True for a headerless stream: the extension alone tells how to read it."""
        return self.demuxer is not None or not self.readable

    def input_options(self) -> dict[str, object]:
        """ffmpeg-python keyword arguments that open a file in this format."""
        if self.demuxer is None:
            return {}
        options: dict[str, object] = {"f": self.demuxer}
        options.update(self.options)
        return options


def _pcm(
    exts: tuple[str, ...], module: str, codec: str, demuxer: str, rate: int
) -> RecordingFormat:
    return RecordingFormat(
        exts, module, codec, demuxer, rate, "s16", {"sample_rate": rate, "channels": 1}
    )


def _sln(rate: int, *exts: str) -> RecordingFormat:
    return _pcm(exts or (f"sln{rate // 1000}",), "format_sln", "pcm_s16le", "s16le", rate)


def _g726(kbps: int) -> RecordingFormat:
    # Asterisk's G.726 is RFC 3551 packing: ffmpeg's little-endian ("right-justified")
    # g726le, read in 1020-byte packets, the last one short.
    return RecordingFormat(
        (f"g726-{kbps}",), "format_g726", "g726", "g726le", 8000, "s16",
        {"code_size": kbps // 8, "sample_rate": 8000}, strict_decode=False,
    )  # fmt: skip


def _unreadable(ext: str, module: str, codec: str, rate: int) -> RecordingFormat:
    return RecordingFormat((ext,), module, codec, None, rate, None, {}, readable=False)


#: Every format, by the extensions Asterisk's (and FreePBX's) format modules register.
RECORDING_FORMATS: tuple[RecordingFormat, ...] = (
    RecordingFormat(("wav",), "format_wav (8 kHz PCM)", "pcm_s16le"),
    RecordingFormat(("wav16",), "format_wav (16 kHz PCM)", "pcm_s16le"),
    RecordingFormat(("wav49", "WAV"), "format_wav_gsm", "gsm_ms"),
    _pcm(("ulaw", "ul", "ulw", "pcm", "mu"), "format_pcm", "pcm_mulaw", "mulaw", 8000),
    _pcm(("alaw", "al", "alw"), "format_pcm", "pcm_alaw", "alaw", 8000),
    RecordingFormat(("g722",), "format_pcm", "g722", "g722", 16000, "s16"),  # always 16 kHz
    _sln(8000, "sln", "raw"),
    _sln(12000),
    _sln(16000),
    _sln(24000),
    _sln(32000),
    _sln(44100, "sln44"),
    _sln(48000),
    _sln(96000),
    _sln(192000),
    RecordingFormat(("gsm",), "format_gsm", "gsm", "gsm", 8000, "s16", {"sample_rate": 8000}),
    RecordingFormat(("g729",), "format_g729", "g729", "g729", 8000, "s16", {"bit_rate": 8000}),
    _g726(40),
    _g726(32),
    _g726(24),
    _g726(16),
    # format_g723 stores each frame behind a delay and size header: no ffmpeg demuxer.
    _unreadable("g723", "format_g723", "g723", 8000),
    _unreadable("g723sf", "format_g723", "g723", 8000),
    # Asterisk writes bare 30 ms iLBC frames; ffmpeg's ilbc demuxer wants a "#!iLBC" header.
    _unreadable("ilbc", "format_ilbc", "ilbc", 8000),
    _unreadable("siren7", "format_siren7", "siren7", 16000),
    _unreadable("siren14", "format_siren14", "siren14", 32000),
    _unreadable("vox", "format_vox", "adpcm_ima_oki", 8000),
    RecordingFormat(("ogg",), "format_ogg_vorbis", "vorbis"),
    RecordingFormat(("spx",), "format_ogg_speex", "speex"),
    RecordingFormat(("opus",), "format_ogg_opus", "opus"),
    RecordingFormat(("mp3",), "format_mp3 (asterisk-addons)", "mp3"),
    RecordingFormat(("flac",), "not Asterisk: exported or converted recordings", "flac"),
)


def _by_extension() -> Mapping[str, RecordingFormat]:
    table: dict[str, RecordingFormat] = {}
    for fmt in RECORDING_FORMATS:
        for ext in fmt.extensions:
            if ext in table:
                raise AssertionError(f"extension {ext} is in RECORDING_FORMATS twice")
            table[ext] = fmt
    return MappingProxyType(table)


#: Extension as Asterisk registers it (no dot; ``WAV`` and ``wav`` differ) → its format.
FORMATS_BY_EXTENSION: Mapping[str, RecordingFormat] = _by_extension()

#: Every extension a recording can have, lower-cased: what a spool source discovers.
RECORDING_EXTENSIONS: frozenset[str] = frozenset(ext.lower() for ext in FORMATS_BY_EXTENSION)


def normalise_extension(extension: str | None) -> str:
    """``".WAV"`` → ``"WAV"``: the extension without its dot, case kept."""
    return (extension or "").strip().lstrip(".")


def format_for(extension: str | None) -> RecordingFormat | None:
    """The format a file with this extension holds, or ``None`` if the extension is unknown.

    The exact spelling wins (``WAV`` is wav49), then the lower-cased one.
    """
    ext = normalise_extension(extension)
    return FORMATS_BY_EXTENSION.get(ext) or FORMATS_BY_EXTENSION.get(ext.lower())


def is_headerless(extension: str | None) -> bool:
    """True if a file with this extension is a headerless stream (read by its extension)."""
    fmt = format_for(extension)
    return fmt is not None and fmt.raw


def input_options_for(extension: str | None) -> dict[str, object]:
    """ffmpeg-python keyword arguments that make ffmpeg/ffprobe read a file of this extension.

    Headerless streams need the demuxer and its options spelled out
    (``{"f": "mulaw", "sample_rate": 8000, "channels": 1}``); everything else
    is detected from its content, so the answer is ``{}``.
    """
    fmt = format_for(extension)
    return fmt.input_options() if fmt is not None else {}


# --- codec names -------------------------------------------------------------------

#: ffprobe's codec names (and decoder names) → the canonical name used in settings.
CODEC_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "adpcm_g722": "g722",
        "adpcm_g726": "g726",
        "adpcm_g726le": "g726",
        "g723_1": "g723",
        "siren": "siren7",
        "msnsiren": "siren7",
        "libspeex": "speex",
        "libgsm": "gsm",
        "libgsm_ms": "gsm_ms",
        "libopus": "opus",
        "ulaw": "pcm_mulaw",
        "alaw": "pcm_alaw",
    }
)


def canonical_codec(name: str) -> str:
    """The canonical name of a codec: ``adpcm_g722`` → ``g722``; unknown names unchanged."""
    key = name.strip().lower()
    return CODEC_ALIASES.get(key, key)


def canonical_codecs(names: Collection[str]) -> frozenset[str]:
    """:func:`canonical_codec` of each name."""
    return frozenset(canonical_codec(name) for name in names)


# --- what this ffmpeg can do ---------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class FfmpegSupport:
    """The demuxers and (canonical) decodable codecs of the installed ffmpeg."""

    demuxers: frozenset[str]
    codecs: frozenset[str]

    def cannot_read(self, fmt: RecordingFormat) -> str | None:
        """Why this ffmpeg cannot read a headerless format, or ``None`` if it can."""
        if not fmt.readable:
            return "ffmpeg has no demuxer for it"
        if fmt.demuxer is not None and fmt.demuxer not in self.demuxers:
            return f"this ffmpeg lacks the {fmt.demuxer} demuxer"
        if fmt.demuxer is not None and canonical_codec(fmt.codec) not in self.codecs:
            return "this ffmpeg has no decoder for it"
        return None


def _tool_listing(option: str) -> list[str]:
    completed = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", option],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=True,
    )
    return completed.stdout.decode("utf-8", errors="replace").splitlines()


def parse_demuxers(lines: list[str]) -> frozenset[str]:
    """Demuxer names from ``ffmpeg -demuxers`` (``" D  mulaw  PCM mu-law"``)."""
    names: set[str] = set()
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("D", "DE") and parts[1] != "=":
            names.update(parts[1].split(","))
    return frozenset(names)


def parse_decoders(lines: list[str]) -> frozenset[str]:
    """Canonical codec names from ``ffmpeg -decoders`` (a decoder's name or its ``(codec x)``)."""
    names: set[str] = set()
    for line in lines:
        parts = line.split()
        if len(parts) < 2 or len(parts[0]) != 6 or parts[0][0] not in "AVS" or parts[1] == "=":
            continue
        names.add(canonical_codec(parts[1]))
        if "(codec " in line:
            names.add(canonical_codec(line.rsplit("(codec ", 1)[1].rstrip(")").strip()))
    return frozenset(names)


@functools.cache
def ffmpeg_support() -> FfmpegSupport:
    """What the installed ffmpeg can demux and decode; asked once per process.

    Raises :class:`OSError` or :class:`subprocess.SubprocessError` when ffmpeg
    cannot be run (the caller's retry, not a fault of any recording).
    """
    return FfmpegSupport(
        demuxers=parse_demuxers(_tool_listing("-demuxers")),
        codecs=parse_decoders(_tool_listing("-decoders")),
    )
