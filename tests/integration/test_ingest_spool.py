"""Ingest from an Asterisk/FreePBX spool, end to end: real ffmpeg, real catalogues, real stores.

Each test builds a small spool with good and bad recordings and runs the
pipeline the way ``recarchive ingest --once`` does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import struct
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from recarchive.access.models import Role
from recarchive.access.services import Principal
from recarchive.catalogue.database import create_catalogue_engine, transaction, utcnow
from recarchive.catalogue.identity import phone_hash
from recarchive.catalogue.intake import QuarantineEntry, WorkItem, WorkState
from recarchive.catalogue.migrate import upgrade_schema
from recarchive.catalogue.models import Customer, CustomerMatch, CustomerPhone, Direction, Recording
from recarchive.catalogue.restrictions import ProcessingRestriction
from recarchive.config import Settings, load_settings
from recarchive.ingest.interfaces import Discovery
from recarchive.ingest.services import Pipeline
from recarchive.ingest.sources import build_sources
from recarchive.ingest.tasks import run_ingest
from recarchive.lookup.services import get_recording
from recarchive.lookup.views import NotFound
from recarchive.privacy.restrictions import object_to_training
from recarchive.privacy.subjects import SubjectQuery
from recarchive.retention.expiry import expire_recordings
from recarchive.runtime import Runtime
from tests.s3env import s3_environment

DAY = "2026/03/14"
OLD = dt.datetime(2026, 3, 14, 12, 0, tzinfo=dt.UTC).timestamp()
#: A call that ended two hours ago (local time), past the wait for its recording.
RECENT = (dt.datetime.now(ZoneInfo("Europe/Helsinki")) - dt.timedelta(hours=2)).strftime(
    "%Y-%m-%d %H:%M:%S"
)

GOOD_IN = "in-0201234000-0401234567-20260314-112653-1742211234.117.wav"
GOOD_OUT = "out-0509998888-2001-20260314-120102-1742212862.140.wav"
NO_CDR = "q-602-0441112233-20260314-130000-1742216400.150.mp3"
ZERO = "in-0201234000-0405556666-20260314-140000-1742220000.160.wav"
TEXT = "in-0201234000-0405556667-20260314-140100-1742220060.161.wav"
TRUNCATED_MP3 = "in-0201234000-0405556668-20260314-140200-1742220120.162.mp3"
WRITING = "in-0201234000-0405556669-20260314-140300-1742220180.163.wav"

RULES = """
[[reasons.rules]]
code = "billing"
field = "queue"
pattern = "^601$"

[[reasons.rules]]
code = "outage"
field = "queue"
pattern = "^602$"

[[reasons.rules]]
code = "moving"
field = "userfield"
pattern = "reason=moving"

[[retention.rules]]
name = "moving-cases"
field = "reason"
values = ["moving"]
days = 500
"""


def cdr_line(
    uniqueid: str,
    start: str,
    *,
    src: str,
    dst: str,
    context: str,
    channel: str,
    dstchannel: str,
    app: str = "Queue",
    data: str = "601,t",
    disposition: str = "ANSWERED",
    userfield: str = "",
) -> str:
    end = (dt.datetime.fromisoformat(start) + dt.timedelta(seconds=30)).isoformat(sep=" ")
    fields = [
        "",
        src,
        dst,
        context,
        f'"Asiakas" <{src}>',
        channel,
        dstchannel,
        app,
        data,
        start,
        start,
        end,
        "30",
        "25",
        disposition,
        "DOCUMENTATION",
        uniqueid,
        userfield,
    ]
    return ",".join('"' + f.replace('"', '""') + '"' for f in fields)


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small real recordings, made once per module."""
    base = tmp_path_factory.mktemp("audio")
    made = {
        "pcm": base / "pcm.wav",
        "ulaw": base / "ulaw.wav",
        "mp3": base / "call.mp3",
    }
    tone = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000:duration=3"]
    ffmpeg(*tone, "-ac", "1", "-c:a", "pcm_s16le", str(made["pcm"]))
    ffmpeg(*tone, "-ac", "1", "-c:a", "pcm_mulaw", str(made["ulaw"]))
    ffmpeg(*tone, "-ac", "1", "-c:a", "libmp3lame", "-b:a", "32k", str(made["mp3"]))
    return made


def put(path: Path, data: bytes | Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, Path):
        shutil.copyfile(data, path)
    else:
        path.write_bytes(data)
    os.utime(path, (OLD, OLD))
    return path


def still_writing_wav(path: Path, pcm: Path) -> Path:
    """The same audio with RIFF and data sizes 0, as Asterisk leaves them until it closes."""
    data = bytearray(pcm.read_bytes())
    struct.pack_into("<I", data, 4, 0)
    data_chunk = data.index(b"data", 12)
    struct.pack_into("<I", data, data_chunk + 4, 0)
    return put(path, bytes(data))


@pytest.fixture
def spool(tmp_path: Path, audio: dict[str, Path]) -> Path:
    root = tmp_path / "monitor"
    day = root / DAY
    put(day / GOOD_IN, audio["pcm"])
    put(day / GOOD_OUT, audio["ulaw"])
    put(day / NO_CDR, audio["mp3"])
    put(day / ZERO, b"")
    put(day / TEXT, b"Hei, tama on tekstitiedosto eika aanta.\n" * 20)
    mp3 = audio["mp3"].read_bytes()
    put(day / TRUNCATED_MP3, mp3[: len(mp3) // 2 + 7])
    still_writing_wav(day / WRITING, audio["pcm"])
    (tmp_path / "outside.wav").write_bytes(audio["pcm"].read_bytes())
    (day / "in-0201234000-0400000000-20260314-150000-1742223600.170.wav").symlink_to(
        tmp_path / "outside.wav"
    )
    cdr = tmp_path / "cdr" / "Master.csv"
    cdr.parent.mkdir()
    cdr.write_text(
        "\n".join(
            [
                cdr_line(
                    "1742211234.117",
                    "2026-03-14 11:26:53",
                    src="0401234567",
                    dst="0201234000",
                    context="from-pstn",
                    channel="PJSIP/trunk-1",
                    dstchannel="PJSIP/2001-2",
                    userfield="reason=moving",
                ),
                cdr_line(
                    "1742212862.140",
                    "2026-03-14 12:01:02",
                    src="2001",
                    dst="0509998888",
                    context="from-internal",
                    channel="PJSIP/2001-3",
                    dstchannel="PJSIP/trunk-4",
                    app="Dial",
                    data="PJSIP/0509998888@trunk",
                ),
                '"broken","line',
                cdr_line(
                    "1742219999.155",
                    RECENT,
                    src="0407778888",
                    dst="0201234000",
                    context="from-pstn",
                    channel="PJSIP/trunk-5",
                    dstchannel="PJSIP/2003-6",
                ),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    return tmp_path


@pytest.fixture(params=["filesystem", pytest.param("s3", marks=pytest.mark.s3)])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "filesystem":
        yield '[storage]\nbackend = "filesystem"\n'
        return
    endpoint = s3_environment()["RECARCHIVE_S3_ENDPOINT_URL"]
    bucket = f"recarchive-ingest-{os.urandom(4).hex()}"
    yield f'[storage]\nbackend = "s3"\n[s3]\nendpoint_url = "{endpoint}"\nbucket = "{bucket}"\n'


def make_settings(tmp_path: Path, catalogue_url: str, store: str, extra: str = "") -> Settings:
    config = tmp_path / "recarchive.toml"
    config.write_text(
        f'[general]\ndata_dir = "{tmp_path / "var"}"\n'
        f'[catalogue]\nurl = "{catalogue_url}"\n'
        f"{store}"
        "[ingest]\nsettle_s = 5\nlease_s = 60\n"
        f"{extra}"
        f"{RULES}"
        "[[sources]]\n"
        'kind = "spool"\nname = "pbx"\n'
        f'path = "{tmp_path / "monitor"}"\ncdr_path = "{tmp_path / "cdr" / "Master.csv"}"\n',
        encoding="utf-8",
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("RECARCHIVE_S3_ACCESS", "RECARCHIVE_S3_SECRET"))
    }
    return load_settings(config, env=env)


def add_customers(runtime: Runtime, customers: Mapping[str, tuple[str, str]]) -> None:
    """Directory entries: customer id -> (name, E.164 number); numbers stored as their hash."""
    key = runtime.settings.secret("identity_hash_key") or ""
    with transaction(runtime.sessions) as session:
        for customer_id, (name, number) in customers.items():
            phones = [CustomerPhone(phone_hash=phone_hash(number, key))]
            session.add(Customer(customer_id=customer_id, name=name, phones=phones))


@pytest.fixture
def runtime(spool: Path, empty_catalogue_url: str, store_settings: str) -> Iterator[Runtime]:
    engine = create_catalogue_engine(empty_catalogue_url)
    upgrade_schema(engine)
    engine.dispose()
    runtime = Runtime(make_settings(spool, empty_catalogue_url, store_settings))
    runtime.store.create()
    add_customers(
        runtime,
        {
            "C-1": ("Asiakas Yksi", "+358401234567"),
            "C-2": ("Asiakas Kaksi", "+358509998888"),
            "C-3": ("Asiakas Kolme", "+358509998888"),
        },
    )
    yield runtime
    if runtime.settings.storage.backend == "s3":
        keys = [info.key for info in runtime.store.list("")]
        runtime.store.delete_many(keys)
    runtime.close()


def recordings(runtime: Runtime) -> dict[str, Recording]:
    with runtime.sessions() as session:
        rows = session.scalars(select(Recording)).all()
        for row in rows:
            _ = row.reasons, row.candidates
        return {Path(row.source_ref).name: row for row in rows}


def quarantine_reasons(runtime: Runtime) -> dict[str, str]:
    with runtime.sessions() as session:
        return {e.source_ref: e.reason for e in session.scalars(select(QuarantineEntry))}


def test_spool_pass_archives_good_quarantines_bad_and_defers_unfinished(
    runtime: Runtime, spool: Path
) -> None:
    summary = run_ingest(runtime.settings, once=True)

    assert summary.archived == 3
    assert summary.deferred == 1
    archived = recordings(runtime)
    assert set(archived) == {GOOD_IN, GOOD_OUT, NO_CDR}

    inbound = archived[GOOD_IN]
    assert inbound.direction is Direction.INBOUND
    assert inbound.caller_number == "+358401234567"
    assert inbound.customer_id == "C-1"
    assert inbound.customer_match is CustomerMatch.MATCHED
    assert inbound.reason_codes == ["billing", "moving"]
    assert inbound.started_at == dt.datetime(2026, 3, 14, 9, 26, 53, tzinfo=dt.UTC)
    assert inbound.retain_until == inbound.started_at + dt.timedelta(days=500)
    assert inbound.retention_rule == "moving-cases"
    assert inbound.retention_class == "moving-cases"  # the backstop rule of that class
    assert abs(inbound.duration_ms - 3000) <= 50
    assert inbound.agent == "2001"
    assert inbound.queue == "601"

    outbound = archived[GOOD_OUT]
    assert outbound.direction is Direction.OUTBOUND
    assert outbound.customer_match is CustomerMatch.AMBIGUOUS
    assert outbound.customer_id is None
    assert sorted(c.customer_id for c in outbound.candidates) == ["C-2", "C-3"]
    assert outbound.codec == "pcm_mulaw"

    from_name = archived[NO_CDR]
    assert from_name.queue == "602"  # a FreePBX queue recording names its queue
    assert from_name.reason_codes == ["outage"]
    assert from_name.started_at == dt.datetime(2026, 3, 14, 11, 0, tzinfo=dt.UTC)
    assert from_name.customer_match is CustomerMatch.UNKNOWN
    assert from_name.retain_until == from_name.started_at + dt.timedelta(days=365)
    assert from_name.retention_rule == "default"
    assert from_name.retention_class == "standard"

    for name, row in archived.items():
        assert row.object_key.startswith("recordings/2026/03/14/")
        assert str(row.id) in row.object_key
        for number in ("0401234567", "401234567", "509998888", "441112233"):
            assert number not in row.object_key
        with runtime.store.get(row.object_key) as reader:
            assert hashlib.sha256(reader.read()).hexdigest() == row.sha256
        assert runtime.store.get_tags(row.object_key) == {"retention-class": row.retention_class}
        assert not (spool / "monitor" / DAY / name).exists(), "source not acknowledged"

    reasons = quarantine_reasons(runtime)
    assert reasons[f"{DAY}/{ZERO}"] == "zero_byte"
    assert reasons[f"{DAY}/{TEXT}"] == "not_audio"
    # The MP3's Xing header still claims the full length: either reason is specific.
    assert reasons[f"{DAY}/{TRUNCATED_MP3}"] in {"truncated_audio", "header_length_mismatch"}
    assert reasons["cdr:Master.csv:3"] == "malformed_cdr"
    assert reasons["call:1742219999.155"] == "cdr_without_recording"
    assert any(r == "invalid_name" for r in reasons.values())
    for name in (ZERO, TEXT, TRUNCATED_MP3, WRITING):
        assert (spool / "monitor" / DAY / name).exists(), f"original of {name} not kept"
    assert (spool / "outside.wav").exists()


def test_second_pass_changes_nothing(runtime: Runtime) -> None:
    run_ingest(runtime.settings, once=True)
    before = (recordings(runtime), quarantine_reasons(runtime))
    objects = sorted(info.key for info in runtime.store.list("recordings/"))
    again = run_ingest(runtime.settings, once=True)
    assert again.archived == 0
    assert sum(again.quarantined.values()) == 0
    assert set(recordings(runtime)) == set(before[0])
    assert quarantine_reasons(runtime) == before[1]
    assert sorted(info.key for info in runtime.store.list("recordings/")) == objects


def test_crash_after_store_before_commit_is_finished_by_a_rerun(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = Pipeline(runtime, build_sources(runtime.settings))
    pipeline.discover()

    def crash(*_args: object, **_kwargs: object) -> bool:
        raise KeyboardInterrupt("simulated crash")

    # The process dies after the object is stored, before its row is written.
    monkeypatch.setattr("recarchive.ingest.services.catalogue_recording", crash)
    with pytest.raises(KeyboardInterrupt):
        pipeline.process_next()
    monkeypatch.undo()
    with runtime.sessions() as session:
        stuck = session.scalars(select(WorkItem).where(WorkItem.state == WorkState.CLAIMED)).one()
    assert len(list(runtime.store.list("recordings/"))) == 1

    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120)  # the lease has run out
    fresh = Pipeline(runtime, build_sources(runtime.settings))
    while (result := fresh.process_next(now=later)) is not None:
        assert result[0] != "retry"
    archived = recordings(runtime)
    assert len(archived) == 3
    keys = sorted(info.key for info in runtime.store.list("recordings/"))
    assert keys == sorted(row.object_key for row in archived.values())
    with runtime.sessions() as session:
        assert session.get_one(WorkItem, stuck.id).state is WorkState.DONE


def test_crash_after_commit_before_acknowledge_is_acknowledged_next_pass(
    runtime: Runtime, spool: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = build_sources(runtime.settings)["pbx"]
    monkeypatch.setattr(
        source, "acknowledge", lambda _d: (_ for _ in ()).throw(KeyboardInterrupt())
    )
    pipeline = Pipeline(runtime, {"pbx": source})
    pipeline.discover()
    with pytest.raises(KeyboardInterrupt):
        pipeline.drain()
    monkeypatch.undo()
    # Committed (with the rest of its group), then the first acknowledgement died.
    archived = list(recordings(runtime).values())
    assert archived
    assert all((spool / "monitor" / r.source_ref).exists() for r in archived)

    summary = run_ingest(runtime.settings, once=True)
    assert summary.duplicates >= 1
    assert not any((spool / "monitor" / r.source_ref).exists() for r in archived)
    with runtime.sessions() as session:
        count = session.scalar(select(func.count(Recording.id)))
    assert count == 3


def test_unfinished_recording_is_taken_once_complete(
    runtime: Runtime, spool: Path, audio: dict[str, Path]
) -> None:
    run_ingest(runtime.settings, once=True)
    assert WRITING not in recordings(runtime)
    put(spool / "monitor" / DAY / WRITING, audio["pcm"])  # Asterisk closed the file
    with runtime.sessions() as session:
        item = session.scalars(select(WorkItem).where(WorkItem.source_ref.endswith(WRITING))).one()
    pipeline = Pipeline(runtime, build_sources(runtime.settings))
    outcomes = []
    for seconds in (30, 90):  # a file that changed gets one more settle period
        later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
        while (result := pipeline.process_next(now=later)) is not None:
            outcomes.append(result[0])
    assert outcomes[-1] == "archived"
    assert set(outcomes) <= {"deferred", "archived"}
    assert recordings(runtime)[WRITING].id == item.id


def test_a_recording_that_arrives_late_settles_its_missing_report(
    runtime: Runtime, spool: Path, audio: dict[str, Path]
) -> None:
    run_ingest(runtime.settings, once=True)
    assert quarantine_reasons(runtime)["call:1742219999.155"] == "cdr_without_recording"

    started = dt.datetime.fromisoformat(RECENT)
    name = f"in-0201234000-0407778888-{started:%Y%m%d-%H%M%S}-1742219999.155.wav"
    put(spool / "monitor" / f"{started:%Y/%m/%d}" / name, audio["pcm"])
    summary = run_ingest(runtime.settings, once=True)

    assert summary.archived == 1
    with runtime.sessions() as session:
        entry = session.scalars(
            select(QuarantineEntry).where(QuarantineEntry.source_ref == "call:1742219999.155")
        ).one()
        archived = session.scalar(select(func.count()).where(Recording.call_id == "1742219999.155"))
    assert archived == 1
    assert entry.resolution == "recording_arrived"
    assert entry.resolved_at is not None


def test_a_deleted_call_leaves_digests_only_and_is_not_reported_or_archived_again(
    runtime: Runtime, spool: Path, audio: dict[str, Path]
) -> None:
    """After expiry (or erasure) the call's work item keeps keyed digests only; the CDR
    row still in Master.csv is not a "missing recording", and the same file delivered
    again is known as archived, not archived twice."""
    started = dt.datetime.fromisoformat(RECENT)
    name = f"in-0201234000-0407778888-{started:%Y%m%d-%H%M%S}-1742219999.155.wav"
    path = put(spool / "monitor" / f"{started:%Y/%m/%d}" / name, audio["pcm"])
    run_ingest(runtime.settings, once=True)
    assert "call:1742219999.155" not in quarantine_reasons(runtime)
    with runtime.sessions() as session:
        recording = session.scalars(
            select(Recording).where(Recording.call_id == "1742219999.155")
        ).one()

    expire_recordings(runtime, now=recording.retain_until)
    with runtime.sessions() as session:
        item = session.scalars(select(WorkItem).where(WorkItem.recording_id == recording.id)).one()
    assert item.source_ref.startswith("forgotten:")
    assert "0407778888" not in item.source_ref
    assert set(item.payload) <= {"call", "source_sha256"}
    assert "1742219999" not in item.payload["call"]

    put(path, audio["pcm"])  # the telephony system delivers the same file again
    summary = run_ingest(runtime.settings, once=True)
    assert (summary.archived, summary.duplicates) == (0, 1)
    assert not path.exists()  # acknowledged: the same bytes as archived
    assert "call:1742219999.155" not in quarantine_reasons(runtime)
    with runtime.sessions() as session:
        again = select(func.count()).where(Recording.call_id == "1742219999.155")
        assert session.scalar(again) == 0  # not archived a second time


def test_an_objection_on_an_unlinked_number_keeps_no_number_once_its_calls_are_gone(
    runtime: Runtime, spool: Path, audio: dict[str, Path]
) -> None:
    """The number lives in the restriction only while a recording holds it; the keyed
    reference brings it back with the next call from the number, which stays out of QA."""
    started = dt.datetime.fromisoformat(RECENT)
    day = spool / "monitor" / f"{started:%Y/%m/%d}"
    put(day / f"in-0201234000-0407778888-{started:%Y%m%d-%H%M%S}-1742219999.155.wav", audio["pcm"])
    run_ingest(runtime.settings, once=True)
    officer = Principal(uuid.uuid4(), "officer", Role.PRIVACY_OFFICER, uuid.uuid4())
    _, [objection] = object_to_training(runtime, officer, query=SubjectQuery(number="0407778888"))
    assert objection.number == "+358407778888"

    expire_recordings(runtime, now=utcnow() + dt.timedelta(days=2000))
    with runtime.sessions() as session:
        kept = session.get_one(ProcessingRestriction, objection.id)
        stored = [str(value) for value in session.execute(select(ProcessingRestriction)).one()]
    assert kept.number is None
    assert kept.number_ref is not None
    assert not any("407778888" in value for value in stored)

    later = started + dt.timedelta(minutes=5)
    put(day / f"in-0201234000-0407778888-{later:%Y%m%d-%H%M%S}-1742220300.160.wav", audio["pcm"])
    assert run_ingest(runtime.settings, once=True).archived == 1
    with runtime.sessions() as session:
        assert session.get_one(ProcessingRestriction, objection.id).number == "+358407778888"
        [recording] = session.scalars(select(Recording)).all()
    trainer = Principal(uuid.uuid4(), "trainer", Role.QA_TRAINER, uuid.uuid4())
    with pytest.raises(NotFound):
        get_recording(runtime, trainer, recording.id)


def test_a_running_source_reads_cdr_lines_appended_between_passes(
    runtime: Runtime, spool: Path, audio: dict[str, Path]
) -> None:
    source = build_sources(runtime.settings)["pbx"]
    now = dt.datetime.now(dt.UTC)
    first = [d for d in source.discover(now, lambda refs: {}) if isinstance(d, Discovery)]
    name = "in-0201234000-0403334444-20260314-150000-1742223600.170.wav"
    assert name not in {d.source_ref.rpartition("/")[2] for d in first}

    # Asterisk appends the call's CDR line; the recording lands in the spool.
    with (spool / "cdr" / "Master.csv").open("a", encoding="utf-8") as handle:
        handle.write(
            cdr_line(
                "1742223600.170",
                "2026-03-14 17:00:00",
                src="0403334444",
                dst="0201234000",
                context="from-pstn",
                channel="PJSIP/trunk-9",
                dstchannel="PJSIP/2004-9",
                data="602,t",
            )
            + "\n"
        )
    put(spool / "monitor" / DAY / name, audio["pcm"])
    second = {
        d.source_ref.rpartition("/")[2]: d
        for d in source.discover(now, lambda refs: {})
        if isinstance(d, Discovery)
    }
    facts = second[name].facts
    assert facts.call_id == "1742223600.170"
    assert facts.queue == "602"  # from the appended CDR line, not the file name
    assert facts.started_at == dt.datetime(2026, 3, 14, 15, 0, tzinfo=dt.UTC)
