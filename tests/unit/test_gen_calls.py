"""scripts/gen_calls.py writes each layout as specified, with a manifest that tells the truth.

Each layout is generated once per module: eight short calls with ffmpeg tones
(no speech synthesis needed), every bad case, a small customer directory.
"""

from __future__ import annotations

import csv
import datetime as dt
import email.utils
import importlib.util
import itertools
import json
import re
import sys
import wave
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from stdnum.fi import hetu, ytunnus

from tests.conftest import require_ffmpeg

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _ffmpeg() -> None:
    require_ffmpeg()


# the FreePBX file name pattern, as the spool source reads it
FREEPBX_NAME = re.compile(
    r"^(?P<type>in|out|q|internal)-(?P<exten>[^-]*)-(?P<caller>[^-]*)-(?P<date>\d{8})"
    r"-(?P<time>\d{6})-(?P<uniqueid>\d+\.\d+)\.(?P<ext>[A-Za-z0-9]+)$"
)
CONNECT_NAME = re.compile(r"^[0-9a-f-]{36}_\d{8}T\d{2}:\d{2}_UTC\.wav$")
EXPORT_HEADER = [
    "calldate", "clid", "src", "dst", "dcontext", "channel", "dstchannel", "lastapp",
    "lastdata", "duration", "billsec", "disposition", "amaflags", "accountcode", "uniqueid",
    "userfield", "did", "recordingfile", "cnum", "cnam", "linkedid",
]  # fmt: skip


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_calls", REPO / "scripts" / "gen_calls.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_calls"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


gen = load_generator()


def generate(out: Path, cache: Path, layout: str, **extra: str) -> dict[str, Any]:
    argv = [
        "--out", str(out), "--layout", layout, "--count", extra.get("count", "8"),
        "--day", "2026-03-14",
        "--formats", extra.get("formats", "wav,ulaw,gsm,mp3,raw-ulaw,raw-alaw,raw-sln"),
        "--min-seconds", "3", "--max-seconds", "6", "--seed", extra.get("seed", "3"),
        "--bad", "all", "--customers", "30", "--engine", "tones", "--cache", str(cache),
    ]  # fmt: skip
    manifest: dict[str, Any] = gen.generate(gen.parse_args(argv))
    return manifest


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="module")
def outputs(
    tmp_path_factory: pytest.TempPathFactory, cache: Path
) -> Callable[[str], tuple[Path, dict[str, Any]]]:
    """Each layout generated once, on first use."""
    made: dict[str, tuple[Path, dict[str, Any]]] = {}

    def get(layout: str) -> tuple[Path, dict[str, Any]]:
        if layout not in made:
            out = tmp_path_factory.mktemp(layout)
            made[layout] = (out, generate(out, cache, layout))
        return made[layout]

    return get


@pytest.fixture(params=["spool", "twilio", "s3drop"])
def generated(
    request: pytest.FixtureRequest, outputs: Callable[[str], tuple[Path, dict[str, Any]]]
) -> tuple[str, Path, dict[str, Any]]:
    out, manifest = outputs(request.param)
    return request.param, out, manifest


@pytest.fixture
def spool(outputs: Callable[[str], tuple[Path, dict[str, Any]]]) -> tuple[Path, dict[str, Any]]:
    return outputs("spool")


@pytest.fixture
def twilio(outputs: Callable[[str], tuple[Path, dict[str, Any]]]) -> tuple[Path, dict[str, Any]]:
    return outputs("twilio")


@pytest.fixture
def s3drop(outputs: Callable[[str], tuple[Path, dict[str, Any]]]) -> tuple[Path, dict[str, Any]]:
    return outputs("s3drop")


def calls_by_case(manifest: dict[str, Any]) -> dict[str | None, list[dict[str, Any]]]:
    grouped: dict[str | None, list[dict[str, Any]]] = {}
    for call in manifest["calls"]:
        grouped.setdefault(call["bad_case"], []).append(call)
    return grouped


# --- every layout ----------------------------------------------------------------


def test_manifest_lists_every_bad_case(generated: tuple[str, Path, dict[str, Any]]) -> None:
    layout, _, manifest = generated
    cases = {case["case"] for case in manifest["bad_cases"]}
    assert cases == set(gen.layout_cases(layout)) - set(gen.OPT_IN_CASES)  # "all" was asked
    assert ("late_contact_record" in cases) == (layout == "s3drop")
    expected = {case["case"]: (case["expected"], case["reason"]) for case in manifest["bad_cases"]}
    assert expected["zero_byte"] == ("quarantined", "zero_byte")
    assert expected["truncated"] == ("quarantined", "truncated_audio")
    assert expected["header_lie"] == ("quarantined", "header_length_mismatch")
    assert expected["text_as_wav"] == ("quarantined", "not_audio")
    assert expected["unsupported_codec"] == ("quarantined", "unsupported_codec")
    assert expected["still_writing"] == ("deferred", "still_writing")
    assert expected["traversal_name"] == ("rejected", "invalid_name")
    assert expected["recording_without_cdr"][0] == "archived"


def test_recordings_exist_exactly_where_the_manifest_says(
    generated: tuple[str, Path, dict[str, Any]],
) -> None:
    _, out, manifest = generated
    written = {call["recording"] for call in manifest["calls"] if call["recording_written"]}
    on_disk = {
        str(path.relative_to(out))
        for path in out.rglob("*")
        if path.is_file()
        and path.suffix.lower() in {".wav", ".mp3", ".ulaw", ".alaw", ".sln", ".gsm"}
        and ".gen_cache" not in path.parts
    }
    assert written == on_disk
    for call in manifest["calls"]:
        if call["recording"] and not call["recording_written"]:
            assert not (out / call["recording"]).exists()
    assert len(calls_by_case(manifest)[None]) == 8


def test_pcm_recordings_last_as_long_as_the_manifest_says(
    generated: tuple[str, Path, dict[str, Any]],
) -> None:
    layout, out, manifest = generated
    checked = 0
    for call in calls_by_case(manifest)[None]:
        if call["recording_written"] and call["format"] == "wav":
            with wave.open(str(out / call["recording"]), "rb") as handle:
                assert handle.getnframes() == round(call["duration_s"] * 8000)
                assert handle.getframerate() == 8000
                assert handle.getnchannels() == call["channels"]
                assert handle.getnchannels() == (1 if layout == "spool" else call["channels"])
            checked += 1
    if layout == "s3drop":
        assert checked > 0


def test_customer_directory_is_valid_except_the_planted_rows(
    generated: tuple[str, Path, dict[str, Any]],
) -> None:
    _, out, manifest = generated
    with (out / "customers.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["customer_id", "name", "phone_numbers", "identity_code"]
    invalid = {row["line"]: row["problem"] for row in manifest["customers"]["invalid_rows"]}
    assert sorted(invalid.values()) == ["empty_customer_id", "invalid_identity_code"]
    owners: dict[str, list[str]] = {}
    for line, (customer_id, _, numbers, code) in enumerate(rows[1:], start=2):
        if invalid.get(line) == "empty_customer_id":
            assert customer_id == ""
            continue
        if invalid.get(line) == "invalid_identity_code":
            assert not hetu.is_valid(code)
            continue
        assert customer_id
        assert code == "" or hetu.is_valid(code) or ytunnus.is_valid(code)
        for number in numbers.split(";"):
            digits = re.sub(r"\D", "", number)
            national = "0" + digits[3:] if digits.startswith("358") else digits
            owners.setdefault(national, []).append(customer_id)
    assert any(hetu.is_valid(row[3]) for row in rows[1:])
    for shared in manifest["customers"]["shared_numbers"]:
        assert len(owners["0" + shared[4:]]) == 2
    known = {row[0] for row in rows[1:]}
    expected = [call["expected_customer_id"] for call in manifest["calls"]]
    assert "ambiguous" in expected
    assert None in expected
    assert all(c is None or c == "ambiguous" or c in known for c in expected)


# --- spool -----------------------------------------------------------------------


def test_spool_names_follow_freepbx(spool: tuple[Path, dict[str, Any]]) -> None:
    out, manifest = spool
    files = [path for path in (out / "monitor").rglob("*") if path.is_file()]
    assert files
    for path in files:
        match = FREEPBX_NAME.match(path.name)
        assert match, path.name
        assert path.parent.relative_to(out / "monitor").as_posix() == "2026/03/14"
        assert match["date"] == "20260314"
    extensions = {path.suffix for path in files}
    assert {".WAV", ".mp3", ".wav"} <= extensions
    for call in manifest["calls"]:
        if call["recording"]:
            assert call["recording"].endswith("." + call["extension"])
            assert call["extension"] == gen.FORMATS.get(call["format"], gen.ADPCM_MS).extension


def test_master_csv_parses_line_by_line_except_the_planted_lines(
    spool: tuple[Path, dict[str, Any]],
) -> None:
    out, manifest = spool
    planted = {
        case["line"]
        for case in manifest["bad_cases"]
        if case["case"] == "malformed_csv" and case["file"] == "cdr/Master.csv"
    }
    assert len(planted) == 2
    lines = (out / "cdr" / "Master.csv").read_text(encoding="utf-8").splitlines()
    uniqueids = []
    for number, line in enumerate(lines, start=1):
        if number in planted:
            try:
                fields = next(csv.reader([line], strict=True))
            except csv.Error:
                continue
            assert len(fields) != 18
            continue
        fields = next(csv.reader([line], strict=True))
        assert len(fields) == 18, line
        assert line.startswith('"",')  # strings quoted as cdr_csv writes them
        assert fields[14] in ("ANSWERED", "NO ANSWER")
        assert (fields[10] == "") == (fields[14] == "NO ANSWER")
        uniqueids.append(fields[16])
    by_case = calls_by_case(manifest)
    duplicate = by_case["duplicate"][0]
    assert len(duplicate["cdr"]["master_csv_lines"]) == 2
    assert by_case["recording_without_cdr"][0]["cdr"]["master_csv_lines"] == []
    assert '"""' in lines[0]  # clid "Name" <number>, quotes doubled


def test_master_csv_matches_the_spool_files(spool: tuple[Path, dict[str, Any]]) -> None:
    out, manifest = spool
    lines = (out / "cdr" / "Master.csv").read_text(encoding="utf-8").splitlines()
    for call in manifest["calls"]:
        numbers = call["cdr"]["master_csv_lines"]
        if not numbers:
            continue
        fields = next(csv.reader([lines[numbers[0] - 1]], strict=True))
        if call["recording"]:
            match = FREEPBX_NAME.match(Path(call["recording"]).name)
            assert match is not None
            assert match["uniqueid"] == fields[16]
        if call["answered"] and call["expected_reason_codes"]:
            queue_or_reason = fields[2] in gen.QUEUES or "reason=" in fields[17]
            assert queue_or_reason or "ivr=" in fields[17]


def test_freepbx_export_has_header_recordingfile_and_a_traversal(
    spool: tuple[Path, dict[str, Any]],
) -> None:
    out, manifest = spool
    with (out / "cdr" / "cdr-export.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    with (out / "cdr" / "cdr-export.csv").open(encoding="utf-8", newline="") as handle:
        assert next(csv.reader(handle)) == EXPORT_HEADER
    files = {row["recordingfile"] for row in rows if row["recordingfile"]}
    assert gen.TRAVERSAL in files
    written = {Path(c["recording"]).name for c in manifest["calls"] if c["recording_written"]}
    orphan = Path(calls_by_case(manifest)["recording_without_cdr"][0]["recording"]).name
    assert written - files == {orphan}


def test_cdr_sql_inserts_the_export_rows_into_every_column_of_freepbx_cdr(
    spool: tuple[Path, dict[str, Any]],
) -> None:
    out, _ = spool
    with (out / "cdr" / "cdr-export.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    inserts = [
        line
        for line in (out / "cdr" / "cdr.sql").read_text(encoding="utf-8").splitlines()
        if not line.startswith("--")
    ]
    columns = ", ".join(gen.CDR_TABLE_COLUMNS)
    head = f"INSERT INTO cdr ({columns}) VALUES ("  # noqa: S608 (expected text, never run)
    assert len(inserts) == len(rows)
    for insert, row in zip(inserts, rows, strict=True):
        assert insert.startswith(head + f"'{row['calldate']}', ")
        assert f"'{row['uniqueid']}'" in insert
        assert insert.endswith(");")
    assert gen.sql_literal("it's a \\ path") == "'it''s a \\\\ path'"


def test_same_seed_same_calls(tmp_path: Path, cache: Path) -> None:
    first = generate(tmp_path / "a", cache, "s3drop", formats="wav", seed="9")
    second = generate(tmp_path / "b", cache, "s3drop", formats="wav", seed="9")
    assert first["calls"] == second["calls"]
    recording = first["calls"][0]["recording"]
    assert (tmp_path / "a" / recording).read_bytes() == (tmp_path / "b" / recording).read_bytes()


# --- twilio and s3drop -----------------------------------------------------------


def test_twilio_index_lists_recording_resources(twilio: tuple[Path, dict[str, Any]]) -> None:
    out, manifest = twilio
    entries = json.loads((out / "twilio" / "index.json").read_text(encoding="utf-8"))
    sids = [entry["sid"] for entry in entries]
    by_case = calls_by_case(manifest)
    assert sids.count(by_case["duplicate"][0]["source_ref"]) == 2
    assert by_case["recording_without_cdr"][0]["source_ref"] not in sids
    for entry in entries:
        assert re.fullmatch(r"AC[0-9a-f]{32}", entry["account_sid"])
        assert re.fullmatch(r"CA[0-9a-f]{32}", entry["call_sid"])
        assert email.utils.parsedate_to_datetime(entry["date_created"]).utcoffset() is not None
        assert entry["date_created"].endswith("+0000")
        assert entry["duration"].isdigit()
        assert entry["status"] == "completed"
        assert entry["source"] == "DialVerb"
        assert entry["call"]["direction"] == "inbound"
        assert entry["call"]["from"].startswith("+358")
        if entry["sid"] == gen.TRAVERSAL:
            continue
        assert re.fullmatch(r"RE[0-9a-f]{32}", entry["sid"])
        path = out / "twilio" / "recordings" / f"{entry['sid']}.{entry['media_format']}"
        missing = entry["sid"] == by_case["cdr_without_recording"][0]["source_ref"]
        assert path.exists() != missing


def test_connect_layout_and_contact_records(s3drop: tuple[Path, dict[str, Any]]) -> None:
    out, manifest = s3drop
    instance = manifest["connect_instance"]
    root = out / "connect" / instance
    recordings = list((root / "CallRecordings").rglob("*.wav"))
    assert recordings
    for path in recordings:
        assert CONNECT_NAME.match(path.name), path.name
    records = sorted((root / "ContactTraceRecords").rglob("*.json"))
    by_case = calls_by_case(manifest)
    duplicate = by_case["duplicate"][0]["source_ref"]
    names = [path.name for path in records]
    assert f"{duplicate}.json" in names
    assert f"{duplicate}_1.json" in names
    for path in records:
        ctr = json.loads(path.read_text(encoding="utf-8"))
        assert ctr["Channel"] == "VOICE"
        assert ctr["InitiationMethod"] == "INBOUND"
        assert ctr["InitiationTimestamp"].endswith("Z")
        assert ctr["DisconnectTimestamp"].endswith("Z")
        assert ctr["CustomerEndpoint"]["Type"] == "TELEPHONE_NUMBER"
        assert ctr["CustomerEndpoint"]["Address"].startswith("+358")
        assert ctr["Queue"]["Name"] in gen.CONNECT_QUEUES.values()
        if ctr["Recording"] is None:
            continue
        assert ctr["Recording"]["Status"] == "AVAILABLE"
        bucket, _, key = ctr["Recording"]["Location"].partition("/")
        assert bucket == gen.BUCKET
        missing = ctr["ContactId"] in (
            by_case["cdr_without_recording"][0]["source_ref"],
            by_case["traversal_name"][0]["source_ref"],
        )
        assert (out / key).is_file() != missing
    [late] = by_case["late_contact_record"]
    assert late["late_record"].startswith(f"late/connect/{instance}/ContactTraceRecords/")
    assert f"{late['source_ref']}.json" not in names  # only under late/, to upload later
    record = json.loads((out / late["late_record"]).read_text(encoding="utf-8"))
    assert record["ContactId"] == late["source_ref"]
    assert (out / late["recording"]).is_file()
    assert late["expected"] == "archived"
    assert late["expected_reason_codes"]  # what the record tells, once it came
    [never] = by_case["recording_without_cdr"]
    assert not list(out.rglob(f"{never['source_ref']}*.json"))  # no record, ever
    assert (never["expected_customer_id"], never["expected_reason_codes"]) == (None, [])


def test_a_late_cdr_row_is_named_only_and_spool_only() -> None:
    assert "late_cdr_row" not in gen._bad_cases("all", "spool")  # opt-in: facts change later
    assert gen._bad_cases("late_cdr_row", "spool") == ["late_cdr_row"]
    with pytest.raises(SystemExit, match="late_cdr_row"):
        gen._bad_cases("late_cdr_row", "s3drop")


def test_a_drop_only_bad_case_is_refused_for_another_layout() -> None:
    with pytest.raises(SystemExit, match="late_contact_record"):
        gen._bad_cases("late_contact_record", "spool")
    assert "late_contact_record" not in gen._bad_cases("all", "twilio")
    assert gen._bad_cases("late_contact_record", "s3drop") == ["late_contact_record"]


def test_every_option_has_help() -> None:
    for action in gen.build_parser()._actions:
        assert action.help, action.dest


def test_bad_arguments_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        gen.parse_args(
            ["--out", "x", "--layout", "spool", "--min-seconds", "9", "--max-seconds", "3"]
        )
    with pytest.raises(SystemExit):
        gen.parse_args(["--out", "x", "--layout", "nowhere"])
    capsys.readouterr()


def test_legs_write_one_21_column_line_per_dial_leg(tmp_path: Path, cache: Path) -> None:
    """--legs: forks and Local channel pairs, newcdrcolumns, two calls in the repeated hour."""
    argv = [
        "--out", str(tmp_path), "--layout", "spool", "--count", "8", "--day", "2026-03-14",
        "--formats", "wav", "--min-seconds", "3", "--max-seconds", "4", "--seed", "5",
        "--customers", "20", "--engine", "tones", "--cache", str(cache), "--legs",
    ]  # fmt: skip
    manifest = gen.generate(gen.parse_args(argv))
    rows = list(csv.reader((tmp_path / "cdr" / "Master.csv").read_text("utf-8").splitlines()))
    assert {len(row) for row in rows} == {21}
    by_uniqueid: dict[str, list[list[str]]] = {}
    for row in rows:
        by_uniqueid.setdefault(row[19], []).append(row)  # linkedid: the caller's uniqueid
    halves = 0
    for call in manifest["calls"]:
        if not call["recording_written"]:
            continue
        uniqueid = FREEPBX_NAME_LEGS.search(Path(call["recording"]).name)
        assert uniqueid is not None
        legs = by_uniqueid[uniqueid["uniqueid"]]
        answered = [row for row in legs if row[14] == "ANSWERED"]
        second = [row for row in answered if row[5].endswith(";2")]
        for row in second:
            halves += 1
            assert row[16] != row[19]  # the ;2 half has a uniqueid of its own
            assert row[6].startswith(f"PJSIP/{call['expected_agent']}-")
            caller = [r for r in answered if r[6] == row[5][:-1] + "1"]
            assert [r[16] for r in caller] == [uniqueid["uniqueid"]]
        if not second:
            assert [
                row[6].split("/")[1].split("-")[0] for row in answered if row[16] == row[19]
            ] == [call["expected_agent"]] or call["direction"] != "inbound"
    assert halves >= 2
    assert gen.repeated_hour_day(dt.date(2026, 3, 14)) == dt.date(2025, 10, 26)
    repeated = [c for c in manifest["calls"] if c["start"].startswith("2025-10-26")]
    assert sorted(c["start"] for c in repeated) == ["2025-10-26T00:20:00Z", "2025-10-26T01:20:00Z"]
    for call in repeated:
        name = Path(call["recording"]).name
        assert "-20251026-032000-" in name  # the same local time, told apart by the epoch
        epoch = int(name.rsplit("-", 1)[1].split(".")[0])
        assert (
            dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") == call["start"]
        )


FREEPBX_NAME_LEGS = re.compile(r"-(?P<uniqueid>\d+\.\d+)\.[A-Za-z0-9]+$")


# --- split legs ------------------------------------------------------------------


def test_split_legs_are_written_as_in_out_pairs_and_one_lone_leg(
    tmp_path: Path, cache: Path
) -> None:
    argv = [
        "--out", str(tmp_path), "--layout", "spool", "--count", "8", "--formats", "wav",
        "--min-seconds", "15", "--max-seconds", "20", "--seed", "3", "--customers", "30",
        "--engine", "tones", "--cache", str(cache), "--split-legs", "2",
    ]  # fmt: skip
    manifest = gen.generate(gen.parse_args(argv))
    split = [call for call in manifest["calls"] if "split_legs" in call]
    pairs = [call for call in split if "agent" in call["split_legs"]]
    (lone,) = [call for call in split if "agent" not in call["split_legs"]]
    assert len(pairs) == 2
    for call in pairs:
        legs = call["split_legs"]
        assert call["source_ref"].endswith("-{in,out}.wav")
        assert call["recording"] == legs["caller"]
        assert legs["caller"].endswith("-in.wav")
        assert legs["agent"] == legs["caller"].replace("-in.wav", "-out.wav")
        assert (legs["expected_channels"], call["expected"]) == (2, "archived")
        name = Path(legs["caller"]).name.replace("-in.wav", ".wav")
        assert FREEPBX_NAME.match(name), "the name without its tag is FreePBX's"
        caller, agent = (read_mono(tmp_path / legs[role]) for role in ("caller", "agent"))
        assert len(caller) == len(agent) == round(call["duration_s"] * 8000)
        # both speak (long enough calls), the customer's voice is the lower one, and the
        # two never speak at once
        assert max(map(abs, caller)) > 800
        assert max(map(abs, agent)) > 800
        assert crossing_rate(caller) < crossing_rate(agent)
        both = sum(1 for a, b in zip(caller, agent, strict=True) if abs(a) > 800 and abs(b) > 800)
        assert both < len(caller) / 100
    assert lone["source_ref"].endswith("-in.wav")
    assert (lone["expected"], lone["expected_reason"]) == ("archived", "lone_leg")
    assert lone["split_legs"]["expected_channels"] == 1
    assert (tmp_path / lone["recording"]).exists()
    assert not (tmp_path / lone["recording"].replace("-in.wav", "-out.wav")).exists()
    assert {"case": "lone_leg", "reason": "lone_leg"}.items() <= next(
        case for case in manifest["bad_cases"] if case["case"] == "lone_leg"
    ).items()


def test_without_split_legs_no_leg_is_written(spool: tuple[Path, dict[str, Any]]) -> None:
    _, manifest = spool
    assert not [call for call in manifest["calls"] if "split_legs" in call]
    assert not [c for c in manifest["bad_cases"] if c["case"] == "lone_leg"]


def read_mono(path: Path) -> list[int]:
    with wave.open(str(path), "rb") as handle:
        assert handle.getnchannels() == 1
        frames = handle.readframes(handle.getnframes())
    return [
        int.from_bytes(frames[i : i + 2], "little", signed=True) for i in range(0, len(frames), 2)
    ]


def crossing_rate(samples: list[int]) -> float:
    """Zero crossings per loud sample: a higher voice crosses more often."""
    loud = [s for s in samples if abs(s) > 800]
    crossings = sum(
        1 for a, b in itertools.pairwise(samples) if (a < 0) != (b < 0) and abs(a - b) > 800
    )
    return crossings / max(1, len(loud))


def test_transfers_write_a_second_part_linked_to_the_first(tmp_path: Path, cache: Path) -> None:
    argv = [
        "--out", str(tmp_path), "--layout", "spool", "--count", "6", "--day", "2026-03-14",
        "--formats", "wav", "--min-seconds", "3", "--max-seconds", "4", "--seed", "5",
        "--customers", "20", "--engine", "tones", "--cache", str(cache), "--transfers", "1",
    ]  # fmt: skip
    manifest = gen.generate(gen.parse_args(argv))
    first, second = (call for call in manifest["calls"] if "expected_linked_call_id" in call)
    assert second["call_id"] == f"{first['call_id']}-2"
    assert first["expected_linked_call_id"] == second["expected_linked_call_id"]
    assert second["start"] > first["start"]
    assert (tmp_path / first["recording"]).is_file()
    assert (tmp_path / second["recording"]).is_file()
    rows = list(csv.reader((tmp_path / "cdr" / "Master.csv").read_text("utf-8").splitlines()))
    second_uniqueid = second["source_ref"].rsplit("-", 1)[1].removesuffix(".wav")
    [line] = [row for row in rows if row[16] == second_uniqueid and row[14] == "ANSWERED"]
    assert len(line) == 21
    assert line[19] == first["expected_linked_call_id"]  # linkedid: the first part's uniqueid
    assert 18 in {len(row) for row in rows}  # the other calls' lines stay as they were
