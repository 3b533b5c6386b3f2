"""Merging split legs: a bad leg is named by its label, the result is stereo and bit-exact."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from recarchive.media.interfaces import DEFAULT_ALLOWED_CODECS, EmptyRecording, NotAudio
from recarchive.media.merge import LegFile, merge_legs


def tone(path: Path, hz: int, seconds: float) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
         f"sine=frequency={hz}:sample_rate=8000:duration={seconds}", "-c:a", "pcm_s16le",
         str(path)],
        check=True,
    )  # fmt: skip
    return path


def legs(caller: Path, agent: Path) -> tuple[LegFile, LegFile]:
    return LegFile(caller, "wav", "caller leg (-in)"), LegFile(agent, "wav", "agent leg (-out)")


def test_two_legs_make_one_stereo_wav_as_long_as_the_longer(tmp_path: Path) -> None:
    caller, agent = tone(tmp_path / "a.wav", 300, 1), tone(tmp_path / "b.wav", 1000, 2)
    first, second = tmp_path / "one.wav", tmp_path / "two.wav"
    merged = merge_legs(*legs(caller, agent), first, allowed_codecs=DEFAULT_ALLOWED_CODECS)
    merge_legs(*legs(caller, agent), second, allowed_codecs=DEFAULT_ALLOWED_CODECS)
    assert (merged.caller.duration_ms, merged.agent.duration_ms) == (1000, 2000)
    assert merged.duration_ms == 2000
    head = first.read_bytes()[:44]
    assert head[22] == 2, "not stereo"
    assert first.read_bytes() == second.read_bytes(), "the same legs gave other bytes"
    assert not list(tmp_path.glob(".*partial"))


@pytest.mark.parametrize(
    ("broken", "error", "label"),
    [(b"", EmptyRecording, "agent leg (-out)"), (b"no audio here " * 50, NotAudio, "agent leg")],
)
def test_a_bad_leg_is_named_and_nothing_is_written(
    tmp_path: Path, broken: bytes, error: type[Exception], label: str
) -> None:
    caller = tone(tmp_path / "a.wav", 300, 1)
    agent = tmp_path / "b.wav"
    agent.write_bytes(broken)
    with pytest.raises(error, match=r"agent leg") as raised:
        merge_legs(*legs(caller, agent), tmp_path / "m.wav", allowed_codecs=DEFAULT_ALLOWED_CODECS)
    assert label in str(raised.value)
    assert "b.wav" not in str(raised.value)
    assert not (tmp_path / "m.wav").exists()
