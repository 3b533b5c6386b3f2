"""MixMonitor's split legs in a spool: which files pair, what a pair's reference is, and how
discovery and acknowledgement treat a pair and a lone leg (no ffmpeg needed here)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from recarchive.config import SpoolSourceSettings
from recarchive.ingest.interfaces import Discovery, KnownRefs, Waiting
from recarchive.ingest.sources.spool import SpoolSource
from recarchive.ingest.sources.spool_legs import (
    Leg,
    LegPair,
    LoneLeg,
    leg_of,
    leg_refs,
    pair_legs,
    pair_of_leg_ref,
    with_pair_refs,
)
from tests.integration.test_ingest_spool import cdr_line

NOW = dt.datetime(2026, 3, 14, 13, 0, tzinfo=dt.UTC)
BASE = "in-0201234000-0401234567-20260314-112653-1742211234.117"
DAY = "2026/03/14"


def nothing_known(refs: object) -> dict[str, str]:
    return {}


KNOWN: KnownRefs = nothing_known


@pytest.mark.parametrize(
    ("name", "role", "partner"),
    [
        ("1742211234.117-in.wav", "caller", "1742211234.117-out.wav"),
        ("1742211234.117-out.wav", "agent", "1742211234.117-in.wav"),
        ("pbx1-1742211234.117-rx.ulaw", "caller", "pbx1-1742211234.117-tx.ulaw"),
        ("pbx1-1742211234.117-tx.WAV", "agent", "pbx1-1742211234.117-rx.WAV"),
    ],
)
def test_a_leg_is_known_by_its_tag_and_knows_its_partner(
    name: str, role: str, partner: str
) -> None:
    leg = leg_of(Path(name))
    assert leg is not None
    assert (leg.role, leg.partner_name) == (role, partner)
    assert leg.call_name == name.replace(f"-{leg.tag}.", ".")


@pytest.mark.parametrize(
    "name",
    ["1742211234.117.wav", "1742211234.117-in.txt", "1742211234.117-IN.wav", "login.wav",
     "-in.wav", "1742211234.117-inn.wav"],
)  # fmt: skip
def test_other_names_are_no_legs(name: str) -> None:
    assert leg_of(Path(name)) is None


def test_legs_pair_per_directory_with_the_same_base_and_extension(tmp_path: Path) -> None:
    day, other = tmp_path / "a", tmp_path / "b"
    walked: list[tuple[Path, str | None]] = [
        (day / "x-in.wav", None),
        (day / "x-out.wav", None),
        (day / "y-in.wav", None),  # its partner is in another directory
        (day / "z-in.wav", None),
        (day / "z-out.mp3", None),  # another extension: not its partner
        (day / "plain.wav", None),
        (day / ".w-out.wav", ".*"),  # ignored: neither a leg nor a partner
        (day / "w-in.wav", None),
        (other / "y-out.wav", None),
    ]
    entries = list(pair_legs(walked))
    assert entries == [
        LegPair(leg(day / "x-in.wav"), leg(day / "x-out.wav")),
        LoneLeg(leg(day / "y-in.wav")),
        LoneLeg(leg(day / "z-in.wav")),
        LoneLeg(leg(day / "z-out.mp3")),
        (day / "plain.wav", None),
        (day / ".w-out.wav", ".*"),
        LoneLeg(leg(day / "w-in.wav")),
        LoneLeg(leg(other / "y-out.wav")),
    ]


def test_a_pair_comes_once_where_its_caller_leg_is_whatever_the_order(tmp_path: Path) -> None:
    walked: list[tuple[Path, str | None]] = [(tmp_path / "x-rx.wav", None)]
    walked.insert(0, (tmp_path / "x-tx.wav", None))
    assert list(pair_legs(walked)) == [
        LegPair(leg(tmp_path / "x-rx.wav"), leg(tmp_path / "x-tx.wav"))
    ]


def test_a_pairs_reference_names_both_files_and_each_leg_finds_it(tmp_path: Path) -> None:
    pair = LegPair(leg(tmp_path / DAY / f"{BASE}-in.wav"), leg(tmp_path / DAY / f"{BASE}-out.wav"))
    ref = pair.ref(tmp_path)
    assert ref == f"{DAY}/{BASE}-{{in,out}}.wav"
    discovery = Discovery(ref, facts=None, extension="wav", locator={"legs": {}})  # type: ignore[arg-type]
    assert leg_refs(discovery) == [f"{DAY}/{BASE}-in.wav", f"{DAY}/{BASE}-out.wav"]
    assert pair_of_leg_ref(f"{DAY}/{BASE}-out.wav") == ref
    assert pair_of_leg_ref(f"{BASE}-in.wav") == f"{BASE}-{{in,out}}.wav"
    assert pair_of_leg_ref(f"{DAY}/{BASE}.wav") is None
    lone = Discovery(f"{DAY}/{BASE}-in.wav", facts=None, extension="wav")  # type: ignore[arg-type]
    assert leg_refs(lone) == []


def test_moved_legs_go_with_their_forgotten_pair() -> None:
    asked: list[list[str]] = []

    def forgotten(refs: list[str]) -> set[str]:
        asked.append(list(refs))
        return {"d/x-{in,out}.wav", "d/lone-in.wav"}

    answer = with_pair_refs(forgotten)  # type: ignore[arg-type]
    refs = ["d/x-in.wav", "d/x-out.wav", "d/y-in.wav", "d/lone-in.wav", "d/plain.wav"]
    assert set(answer(refs)) == {"d/x-in.wav", "d/x-out.wav", "d/lone-in.wav"}
    assert "d/x-{in,out}.wav" in asked[0]


def leg(path: Path) -> Leg:
    found = leg_of(path)
    assert found is not None
    return found


# --- discovery and acknowledgement of a spool ------------------------------------


def spool_source(tmp_path: Path, **extra: object) -> SpoolSource:
    cdr = tmp_path / "Master.csv"
    line = cdr_line(
        "1742211234.117",
        "2026-03-14 11:26:53",
        src="0401234567",
        dst="0201234000",
        context="from-pstn",
        channel="PJSIP/trunk-1",
        dstchannel="PJSIP/2001-2",
    )
    cdr.write_text(line + "\n", encoding="utf-8")
    settings = SpoolSourceSettings(
        kind="spool", name="pbx", path=tmp_path / "monitor", cdr_path=cdr, **extra
    )
    return SpoolSource(settings, timezone="Europe/Helsinki", settle_s=10)


def write(path: Path, minutes_ago: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF")
    moment = (NOW - dt.timedelta(minutes=minutes_ago)).timestamp()
    os.utime(path, (moment, moment))
    return path


def test_a_pair_is_one_recording_of_its_call(tmp_path: Path) -> None:
    source = spool_source(tmp_path)
    day = tmp_path / "monitor" / DAY
    write(day / "1742211234.117-in.wav", 30)
    write(day / "1742211234.117-out.wav", 20)
    (item,) = source.discover(NOW, KNOWN)
    assert isinstance(item, Discovery)
    assert item.source_ref == f"{DAY}/1742211234.117-{{in,out}}.wav"
    assert item.facts.call_id == "1742211234.117"
    assert not item.facts.from_name
    assert item.extension == "wav"
    assert set(item.locator["legs"]) == {"caller", "agent"}
    assert item.locator["legs"]["caller"]["name"] == "1742211234.117-in.wav"
    assert [p.name for p, _ in source.files(item)] == [
        "1742211234.117-in.wav",
        "1742211234.117-out.wav",
    ]


def test_a_pair_with_a_leg_still_being_written_is_not_taken(tmp_path: Path) -> None:
    source = spool_source(tmp_path)
    day = tmp_path / "monitor" / DAY
    write(day / "1742211234.117-in.wav", 30)
    write(day / "1742211234.117-out.wav", 0.05)  # written 3 s ago, settle is 10 s
    found = list(source.discover(NOW, KNOWN))
    assert not [i for i in found if isinstance(i, Discovery | Waiting)]


def test_a_lone_leg_waits_for_its_partner_then_is_archived_alone(tmp_path: Path) -> None:
    source = spool_source(tmp_path, legs_wait_s=600)
    path = write(tmp_path / "monitor" / DAY / f"{BASE}-out.wav", 5)
    assert list(source.discover(NOW, KNOWN)) == [Waiting(f"{DAY}/{BASE}-out.wav", "partner_leg")]
    (item,) = source.discover(NOW + dt.timedelta(minutes=6), KNOWN)
    assert isinstance(item, Discovery)
    assert item.source_ref == f"{DAY}/{BASE}-out.wav"
    assert item.locator["lone_leg"] == "agent"
    assert item.facts.call_id == "1742211234.117"  # its CDR row, by the name without "-out"
    assert source.fetch(item, tmp_path).legs.keys() == {"agent"}
    assert path.exists()


@pytest.mark.parametrize("after", ["delete", "move"])
def test_acknowledging_a_pair_takes_both_files(tmp_path: Path, after: str) -> None:
    done = tmp_path / "done"
    extra: dict[str, object] = {"after_archive": after}
    if after == "move":
        extra["done_dir"] = done
    source = spool_source(tmp_path, **extra)
    day = tmp_path / "monitor" / DAY
    legs = [write(day / f"{BASE}-in.wav", 30), write(day / f"{BASE}-out.wav", 30)]
    (item,) = source.discover(NOW, KNOWN)
    assert isinstance(item, Discovery)
    source.acknowledge(item)
    assert not any(path.exists() for path in legs)
    assert not (tmp_path / "monitor" / "2026").exists()  # emptied directories pruned
    moved = sorted(p.name for p in done.rglob("*.wav")) if after == "move" else []
    assert moved == ([f"{BASE}-in.wav", f"{BASE}-out.wav"] if after == "move" else [])
    source.acknowledge(item)  # idempotent
