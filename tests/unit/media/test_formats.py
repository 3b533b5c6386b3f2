"""The table of recording formats: complete, consistent, and what discovery uses."""

from __future__ import annotations

import pytest

from recarchive.ingest.sources.spool import AUDIO_EXTENSIONS
from recarchive.media.formats import (
    FORMATS_BY_EXTENSION,
    RECORDING_EXTENSIONS,
    RECORDING_FORMATS,
    canonical_codec,
    canonical_codecs,
    format_for,
    input_options_for,
    is_headerless,
    parse_decoders,
    parse_demuxers,
)
from recarchive.media.interfaces import DEFAULT_ALLOWED_CODECS

#: The extensions Asterisk 18-22's format modules register (``file_exts``), written
#: out here from the modules' sources, independently of the table under test.
ASTERISK_EXTENSIONS = {
    "format_wav": {"wav", "wav16"},
    "format_wav_gsm": {"wav49", "WAV"},
    "format_pcm": {"pcm", "ulaw", "ul", "mu", "ulw", "alaw", "al", "alw", "g722"},
    "format_sln": {"sln", "raw", "sln12", "sln16", "sln24", "sln32", "sln44", "sln48"}
    | {"sln96", "sln192"},
    "format_gsm": {"gsm"},
    "format_g729": {"g729"},
    "format_g726": {"g726-40", "g726-32", "g726-24", "g726-16"},
    "format_g723": {"g723", "g723sf"},
    "format_siren7": {"siren7"},
    "format_siren14": {"siren14"},
    "format_ilbc": {"ilbc"},
    "format_vox": {"vox"},
    "format_ogg_vorbis": {"ogg"},
    "format_ogg_speex": {"spx"},
    "format_ogg_opus": {"opus"},
    "format_mp3": {"mp3"},
}


def test_spool_discovers_exactly_the_table() -> None:
    assert AUDIO_EXTENSIONS == RECORDING_EXTENSIONS
    assert {ext.lower() for ext in FORMATS_BY_EXTENSION} == RECORDING_EXTENSIONS


@pytest.mark.parametrize("module", sorted(ASTERISK_EXTENSIONS))
def test_every_asterisk_extension_has_a_format(module: str) -> None:
    for extension in ASTERISK_EXTENSIONS[module]:
        fmt = format_for(extension)
        assert fmt is not None, extension
        assert fmt.module.startswith(module), (extension, fmt.module)


def test_headerless_formats_say_how_to_read_them() -> None:
    for fmt in RECORDING_FORMATS:
        if fmt.demuxer is None:
            assert fmt.options == {}
            continue
        assert fmt.raw
        assert fmt.sample_rate
        assert fmt.sample_format == "s16"
        assert fmt.input_options()["f"] == fmt.demuxer
        rate = fmt.options.get("sample_rate")
        assert rate in (None, fmt.sample_rate), fmt.extensions


@pytest.mark.parametrize(
    ("extension", "rate"),
    [("sln", 8000), ("sln16", 16000), ("sln44", 44100), ("sln192", 192000), ("g722", 16000)],
)
def test_raw_rates(extension: str, rate: int) -> None:
    fmt = format_for(extension)
    assert fmt is not None
    assert fmt.sample_rate == rate


def test_lookup_ignores_case_and_dot() -> None:
    assert format_for(".WAV") is format_for("wav49") is not None
    assert is_headerless("ULW")
    assert is_headerless(".alw")
    assert is_headerless("siren7")
    assert not is_headerless("wav16")
    assert not is_headerless("opus")
    assert input_options_for("g726-24") == {"f": "g726le", "code_size": 3, "sample_rate": 8000}
    assert input_options_for("txt") == {}
    assert format_for("txt") is None


def test_codecs_compare_by_canonical_name() -> None:
    assert canonical_codec("adpcm_g722") == "g722"
    assert canonical_codec("ADPCM_G726LE") == canonical_codec("adpcm_g726") == "g726"
    assert canonical_codec("pcm_s16le") == "pcm_s16le"
    assert canonical_codecs(["adpcm_g722", "opus"]) == {"g722", "opus"}
    # Every format's codec is accepted by default, so a refusal is about this ffmpeg.
    for fmt in RECORDING_FORMATS:
        assert canonical_codec(fmt.codec) in DEFAULT_ALLOWED_CODECS, fmt.codec
    assert canonical_codecs(DEFAULT_ALLOWED_CODECS) == DEFAULT_ALLOWED_CODECS


def test_ffmpeg_listings_are_parsed() -> None:
    demuxers = [
        "File formats:",
        " D. = Demuxing supported",
        " .E = Muxing supported",
        " --",
        " D  g729            G.729 raw format demuxer",
        " DE mulaw           PCM mu-law",
        "  E opus            Ogg Opus",
        " D  mov,mp4,m4a     QuickTime / MOV",
    ]
    assert parse_demuxers(demuxers) == {"g729", "mulaw", "mov", "mp4", "m4a"}
    decoders = [
        "Decoders:",
        " A..... = Audio",
        " ------",
        " A....D g722                 G.722 ADPCM (codec adpcm_g722)",
        " A....D libgsm               libgsm GSM (codec gsm)",
        " A....D siren                Siren",
        " V....D h264                 H.264",
    ]
    assert parse_decoders(decoders) == {"g722", "gsm", "siren7", "h264"}
