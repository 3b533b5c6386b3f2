"""The training library with real ffmpeg on every store (plaintext and encrypted), both
catalogues: clips decode with their length, an agent-only clip holds none of the caller's
audio (decoded and measured), a clip goes with its call (the nightly run), at once with an
objection or an erasure (its object too), and never from a call QA may not know of."""

from __future__ import annotations

import array
import datetime as dt
import functools
import hashlib
import math
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from recarchive.access.models import AuditEvent, Role
from recarchive.access.policy import Forbidden
from recarchive.access.services import Principal
from recarchive.catalogue.data_keys import RECORDING_KEYS
from recarchive.catalogue.database import transaction, utcnow
from recarchive.catalogue.models import Recording
from recarchive.catalogue.restrictions import RestrictionKind
from recarchive.composition import wrapped_key_tables
from recarchive.lookup.views import NotFound
from recarchive.privacy.erasure import erase_subject
from recarchive.privacy.restrictions import object_to_training
from recarchive.privacy.subjects import SubjectQuery
from recarchive.qa.clip_reconcile import reconcile_clips
from recarchive.qa.clips import (
    ClipError,
    ClipNotFound,
    KeepRefused,
    create_clip,
    get_clip,
    keep_clip,
    list_clips,
    open_clip_audio,
)
from recarchive.qa.models import Clip
from recarchive.retention.key_rotation import retire_keys, rotate_keys
from recarchive.retention.tasks import run_nightly_if_due
from recarchive.runtime import Runtime
from tests.actors import staff
from tests.api_fixtures import (
    SAMPLE_RATE,
    STORE_VARIANTS,
    add_recording,
    close_runtime,
    ffprobe,
    variant_runtime,
)
from tests.qa_fixtures import exclude

TRAINER = staff("clip-trainer", Role.QA_TRAINER)
OFFICER = Principal(uuid.uuid4(), "clip-officer", Role.PRIVACY_OFFICER, uuid.uuid4())
CALLER_HZ, AGENT_HZ = 440, 1500
SECONDS = 6.0


@functools.cache
def two_voices() -> bytes:
    """A stereo WAV: the caller's tone on the left, the agent's (another) on the right."""
    with tempfile.TemporaryDirectory(prefix="clip-test-") as tmp:
        path = Path(tmp) / "legs.wav"
        tone = f"sine=frequency={{}}:sample_rate={SAMPLE_RATE}:duration={SECONDS}"
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error",
             "-f", "lavfi", "-i", tone.format(CALLER_HZ),
             "-f", "lavfi", "-i", tone.format(AGENT_HZ),
             "-filter_complex", "[0][1]join=inputs=2:channel_layout=stereo",
             "-c:a", "pcm_s16le", str(path)],
            check=True,
            timeout=60,
        )  # fmt: skip
        return path.read_bytes()


def tone_level(pcm: bytes, hz: int) -> float:
    """The amplitude (0..1) of ``hz`` in mono 16-bit PCM at :data:`SAMPLE_RATE` (Goertzel)."""
    samples = array.array("h", pcm)
    n = len(samples)
    coefficient = 2 * math.cos(2 * math.pi * hz / SAMPLE_RATE)
    previous = before = 0.0
    for sample in samples:
        previous, before = sample / 32768 + coefficient * previous - before, previous
    power = previous**2 + before**2 - coefficient * previous * before
    return 2 * math.sqrt(max(power, 0.0)) / n


def decode(audio: bytes, channel: int | None = None) -> bytes:
    """Ogg Opus to mono 16-bit PCM at 8 kHz: one channel of it, or the only one."""
    pan = ["-af", f"pan=mono|c0=c{channel}"] if channel is not None else []
    return subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", "pipe:0", *pan, "-ac", "1",
         "-ar", str(SAMPLE_RATE), "-f", "s16le", "pipe:1"],
        input=audio,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout  # fmt: skip


def served(runtime: Runtime, clip_id: uuid.UUID) -> bytes:
    audio = open_clip_audio(runtime, clip_id, actor=TRAINER)
    try:
        return b"".join(audio.reader.iter_chunks())
    finally:
        audio.reader.close()


def call(runtime: Runtime, *, customer_id: str | None = None, split: bool = True) -> Recording:
    return add_recording(
        runtime,
        seconds=SECONDS,
        channels=2,
        audio=two_voices(),
        split_legs=split,
        agent="agent-7",
        customer_id=customer_id or f"C-{uuid.uuid4().hex[:6]}",
    )


def cut(runtime: Runtime, recording: Recording, *, agent_only: bool = False) -> Clip:
    return create_clip(
        runtime,
        recording.id,
        start_ms=1000,
        end_ms=3500,
        title="A calm answer",
        purpose="How to explain a bill",
        agent_only=agent_only,
        actor=TRAINER,
    )


@pytest.fixture(scope="module", params=STORE_VARIANTS)
def runtime(
    request: pytest.FixtureRequest, catalogue_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Runtime]:
    runtime = variant_runtime(catalogue_url, tmp_path_factory.mktemp("clips"), request.param)
    yield runtime
    close_runtime(runtime)


def test_a_clip_is_its_own_object_and_decodes_with_its_length(
    runtime: Runtime, tmp_path: Path
) -> None:
    recording = call(runtime)
    clip = cut(runtime, recording)
    assert clip.object_key.startswith("clips/")
    assert str(recording.id) not in clip.object_key
    assert clip.customer_id is not None
    assert clip.customer_id not in clip.object_key
    assert clip.retain_until == recording.retain_until
    assert clip.encrypted is runtime.settings.encryption.enabled
    assert abs(clip.duration_ms - 2500) <= 30
    audio = served(runtime, clip.id)
    path = tmp_path / "clip.ogg"
    path.write_bytes(audio)
    probe = ffprobe(path)
    assert (probe["codec"], probe["channels"]) == ("opus", 2)
    assert abs(probe["duration"] - 2.5) < 0.05
    # Both voices are there: the left carries the caller's tone.
    assert tone_level(decode(audio, 0), CALLER_HZ) > 0.08
    stored = runtime.store.get(clip.object_key)  # the bytes at rest
    with stored:
        raw = b"".join(stored.iter_chunks())
    assert raw.startswith(b"OggS") is not runtime.settings.encryption.enabled
    assert hashlib.sha256(audio).hexdigest() == clip.sha256


def test_an_agent_only_clip_holds_none_of_the_callers_audio(runtime: Runtime) -> None:
    clip = cut(runtime, call(runtime), agent_only=True)
    assert (clip.agent_only, clip.agent_channel, clip.channels) == (True, "right", 1)
    pcm = decode(served(runtime, clip.id))
    assert abs(len(pcm) / 2 / SAMPLE_RATE - 2.5) < 0.05
    agent, caller = tone_level(pcm, AGENT_HZ), tone_level(pcm, CALLER_HZ)
    assert agent > 0.08
    assert caller < 0.001 * agent  # the caller's tone is absent, not merely quieter


def test_agent_only_needs_a_known_agent_channel(runtime: Runtime) -> None:
    for recording in (call(runtime, split=False), add_recording(runtime, seconds=4)):
        with pytest.raises(ClipError, match="which channel"):
            cut(runtime, recording, agent_only=True)
    with runtime.sessions() as session:
        assert session.scalar(select(Clip).where(Clip.recording_id == recording.id)) is None


def test_spans_are_checked(runtime: Runtime) -> None:
    recording = call(runtime)
    for start, end in ((2000, 2000), (-1, 500), (5000, 7000), (0, 11 * 60 * 1000)):
        with pytest.raises(ClipError):
            create_clip(
                runtime, recording.id, start_ms=start, end_ms=end, title="t", purpose="p",
                actor=TRAINER,
            )  # fmt: skip
    with pytest.raises(ClipError, match="title"):
        create_clip(
            runtime, recording.id, start_ms=0, end_ms=500, title=" ", purpose="p", actor=TRAINER
        )


def test_a_clip_with_the_customers_voice_is_never_kept_beyond_its_call(runtime: Runtime) -> None:
    recording = call(runtime)
    mixed, agent_only = cut(runtime, recording), cut(runtime, recording, agent_only=True)
    until = utcnow() + dt.timedelta(days=800)
    with pytest.raises(KeepRefused, match="customer's voice"):
        keep_clip(runtime, mixed.id, until=until, reason="a good example", actor=TRAINER)
    kept = keep_clip(runtime, agent_only.id, until=until, reason="a good example", actor=TRAINER)
    assert (kept.kept_until, kept.kept_reason, kept.kept_by) == (
        until,
        "a good example",
        TRAINER.name,
    )
    with runtime.sessions() as session:
        assert session.get_one(Clip, mixed.id).kept_until is None
        entry = session.scalar(
            select(AuditEvent)
            .where(AuditEvent.action == "qa.clip.keep")
            .order_by(AuditEvent.seq.desc())
        )
    assert entry is not None
    assert entry.details == {"clip_id": str(agent_only.id), "kept_until": until.isoformat()}


def _gone(runtime: Runtime, *clips: Clip) -> bool:
    with runtime.sessions() as session:
        rows = [session.get(Clip, clip.id) for clip in clips]
    return all(row is None for row in rows) and not any(
        runtime.store.exists(clip.object_key) for clip in clips
    )


def test_objection_removes_the_customers_clips_at_once(runtime: Runtime) -> None:
    customer = f"C-{uuid.uuid4().hex[:6]}"
    recording = call(runtime, customer_id=customer)
    mixed, agent_only = cut(runtime, recording), cut(runtime, recording, agent_only=True)
    keep_clip(
        runtime, agent_only.id, until=utcnow() + dt.timedelta(days=900), reason="r", actor=TRAINER
    )
    other = cut(runtime, call(runtime))
    object_to_training(runtime, OFFICER, query=SubjectQuery(customer_id=customer))
    assert _gone(runtime, mixed, agent_only)
    assert runtime.store.exists(other.object_key)
    with runtime.sessions() as session:
        causes = {
            e.details["clip_id"]: e.details["cause"]
            for e in session.scalars(
                select(AuditEvent).where(AuditEvent.action == "qa.clip.delete")
            )
        }
    assert causes[str(mixed.id)] == causes[str(agent_only.id)] == "objection.place"
    with pytest.raises(NotFound):
        cut(runtime, recording)


def test_erasure_removes_the_customers_clips_at_once(runtime: Runtime) -> None:
    customer = f"C-{uuid.uuid4().hex[:6]}"
    recording = call(runtime, customer_id=customer)
    mixed, agent_only = cut(runtime, recording), cut(runtime, recording, agent_only=True)
    keep_clip(
        runtime, agent_only.id, until=utcnow() + dt.timedelta(days=900), reason="r", actor=TRAINER
    )
    erase_subject(runtime, OFFICER, SubjectQuery(customer_id=customer))
    assert _gone(runtime, mixed, agent_only)


def test_objected_or_restricted_calls_are_refused_as_unknown(runtime: Runtime) -> None:
    for kind in (RestrictionKind.OBJECTION, RestrictionKind.RESTRICTION):
        recording = call(runtime)
        exclude(runtime, kind, recording_id=recording.id)
        with pytest.raises(NotFound) as refused:
            cut(runtime, recording)
        assert str(refused.value) == f"no recording {recording.id}"


def test_every_read_asks_again_even_when_no_handler_ran(runtime: Runtime) -> None:
    recording = call(runtime)
    clip = cut(runtime, recording)
    assert clip.id in {c.id for c in list_clips(runtime, actor=TRAINER)}
    exclude(runtime, RestrictionKind.OBJECTION, recording_id=recording.id)  # no event published
    assert clip.id not in {c.id for c in list_clips(runtime, actor=TRAINER)}
    for read in (get_clip, open_clip_audio):
        with pytest.raises(ClipNotFound):
            read(runtime, clip.id, actor=TRAINER)


def test_no_other_role_uses_the_library(runtime: Runtime) -> None:
    recording = call(runtime)
    for role in Role:
        if role is Role.QA_TRAINER:
            continue
        with pytest.raises(Forbidden):
            create_clip(
                runtime, recording.id, start_ms=0, end_ms=500, title="t", purpose="p",
                actor=staff("x", role),
            )  # fmt: skip
        with pytest.raises(Forbidden):
            list_clips(runtime, actor=staff("x", role))


@pytest.mark.parametrize("runtime", ["filesystem"], indirect=True)
def test_a_clip_expires_with_its_call_through_the_nightly_run(runtime: Runtime) -> None:
    recording = call(runtime)
    mixed, unkept = cut(runtime, recording), cut(runtime, recording, agent_only=True)
    kept = cut(runtime, recording, agent_only=True)
    keep_clip(runtime, kept.id, until=utcnow() + dt.timedelta(days=30), reason="r", actor=TRAINER)
    with transaction(runtime.sessions) as session:
        session.execute(
            update(Recording)
            .where(Recording.id == recording.id)
            .values(retain_until=utcnow() - dt.timedelta(minutes=1))
        )
    later = cut(runtime, other := call(runtime))
    moved = utcnow() + dt.timedelta(days=90)
    with transaction(runtime.sessions) as session:  # a retention change moves the call's date
        session.execute(
            update(Recording).where(Recording.id == other.id).values(retain_until=moved)
        )
    assert run_nightly_if_due(runtime, now=utcnow() + dt.timedelta(hours=1)) is not None
    with runtime.sessions() as session:
        assert session.get_one(Clip, later.id).retain_until == moved
    with runtime.sessions() as session:
        assert session.get(Recording, recording.id) is None  # the call expired
    assert _gone(runtime, mixed, unkept)
    assert runtime.store.exists(kept.object_key)
    assert tone_level(decode(served(runtime, kept.id)), AGENT_HZ) > 0.08
    with runtime.sessions() as session:
        run = session.scalar(
            select(AuditEvent)
            .where(AuditEvent.action == "nightly.run")
            .order_by(AuditEvent.seq.desc())
        )
    assert run is not None
    assert run.details["clips_deleted"] >= 2


def test_key_rotation_rewraps_the_clips_data_keys_and_retire_keeps_what_they_need(
    runtime: Runtime,
) -> None:
    if not runtime.settings.encryption.enabled:
        pytest.skip("plaintext clips have no data key")
    clip = cut(runtime, call(runtime))
    before = served(runtime, clip.id)
    old_kek = clip.kek_id
    # Rotation over the recordings' keys alone leaves the clip's under the old key: retire
    # must then keep that key.
    rotate_keys(runtime, tables=(RECORDING_KEYS,))
    retired = retire_keys(runtime, tables=wrapped_key_tables())
    assert f"file:{old_kek}" in retired.in_use
    assert old_kek not in retired.retired
    assert served(runtime, clip.id) == before

    report = rotate_keys(runtime, tables=wrapped_key_tables())
    assert f"clip {clip.id}" not in report.failed
    with runtime.sessions() as session:
        kek_now = session.scalars(select(Clip.kek_id).where(Clip.id == clip.id)).one()
    assert f"file:{kek_now}" == report.current
    assert kek_now != old_kek
    retire_keys(runtime, tables=wrapped_key_tables())
    assert served(runtime, clip.id) == before  # unwrapped under the new key, old one gone


def test_reconcile_finds_orphaned_clip_objects_and_lost_clips(runtime: Runtime) -> None:
    orphaned, lost, kept = (cut(runtime, call(runtime)) for _ in range(3))
    with transaction(runtime.sessions) as session:  # a crash between the store and the commit
        session.execute(delete(Clip).where(Clip.id == orphaned.id))
    runtime.store.delete(lost.object_key)  # an object lost behind the catalogue's back
    later = utcnow() + dt.timedelta(days=2)

    young = reconcile_clips(runtime, delete_orphans=True)
    assert orphaned.object_key not in young.orphan_keys
    assert young.young_orphans >= 1
    assert runtime.store.exists(orphaned.object_key)

    dry = reconcile_clips(runtime, now=later, delete_orphans=True, dry_run=True)
    assert orphaned.object_key in dry.orphan_keys
    assert str(lost.id) in dry.missing_ids
    assert dry.needs_attention
    assert runtime.store.exists(orphaned.object_key)

    done = reconcile_clips(runtime, now=later, delete_orphans=True)
    assert done.orphans_deleted >= 1
    assert not runtime.store.exists(orphaned.object_key)
    assert runtime.store.exists(kept.object_key)
    assert kept.object_key not in done.orphan_keys
    assert str(kept.id) not in done.missing_ids
    with runtime.sessions() as session:
        entries = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "qa.clip.reconcile_delete")
        ).all()
    assert any(orphaned.object_key in entry.details["orphans"] for entry in entries)
    with transaction(runtime.sessions) as session:
        session.execute(delete(Clip).where(Clip.id == lost.id))
