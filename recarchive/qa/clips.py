"""The training library: clips cut out of calls, kept no longer than their calls by accident.

A QA trainer cuts ``start_ms..end_ms`` (at most :data:`MAX_CLIP_MS`) of a call
they may know of (:func:`recarchive.privacy.visibility.visible_condition`:
never a restricted or objected one; the refusal reads as "no recording", so
it does not reveal that the call exists) into a clip with a title and a
purpose. Its audio is cut with ffmpeg and stored as an object of its own
(:mod:`recarchive.qa.clip_audio`). An ``agent_only`` clip holds the agent's
channel alone: only a stereo recording whose agent channel the catalogue
knows (split legs: the agent on the right) can give one.

By default a clip expires with its call (``retain_until`` is the call's).
Keeping it longer (:func:`keep_clip`) is a recorded decision (until, reason,
who, when; audited ``qa.clip.keep``), allowed for an agent-only clip alone:
a clip with the customer's voice never outlives the call. Every read asks
:func:`recarchive.qa.clip_rules.servable_condition` first; what it refuses
reads as unknown, and :mod:`recarchive.qa.clip_purge` deletes it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from recarchive.access.actors import Actor
from recarchive.access.audit import AuditEntry, append_event
from recarchive.access.policy import Action, Purpose
from recarchive.catalogue.database import lock_for_write, transaction, utcnow
from recarchive.catalogue.models import Recording
from recarchive.errors import ConflictError, InvalidInputError, NotFoundError
from recarchive.lookup.views import NotFound
from recarchive.privacy.visibility import check_restrictions, restrictions_for
from recarchive.qa.calls import usable_call
from recarchive.qa.clip_audio import StoredClip, cut_and_store, delete_clip_object, open_clip
from recarchive.qa.clip_rules import servable_condition
from recarchive.qa.models import Clip
from recarchive.runtime import Runtime
from recarchive.storage.interfaces import ObjectReader

__all__ = [
    "MAX_CLIP_MS",
    "ClipError",
    "ClipNotFound",
    "KeepRefused",
    "clip_dict",
    "create_clip",
    "delete_clip",
    "get_clip",
    "keep_clip",
    "list_clips",
    "open_clip_audio",
]

#: The longest clip: ten minutes.
MAX_CLIP_MS = 10 * 60 * 1000
MAX_TITLE = 200
MAX_PURPOSE = 1000
MAX_REASON = 1000
#: The furthest a decision may keep a clip: ten years ahead.
MAX_KEEP = dt.timedelta(days=3653)


class ClipNotFound(NotFoundError):
    """no such clip"""


class ClipError(InvalidInputError):
    """the clip cannot be cut"""


class KeepRefused(ConflictError):
    """the clip cannot be kept beyond its call"""

    code = "keep_refused"


def clip_dict(clip: Clip) -> dict[str, Any]:
    """A clip as a QA trainer sees it (never who called: no customer, no numbers)."""
    return {
        "id": str(clip.id),
        "recording_id": str(clip.recording_id),
        "agent": clip.agent,
        "start_ms": clip.start_ms,
        "end_ms": clip.end_ms,
        "duration_ms": clip.duration_ms,
        "title": clip.title,
        "purpose": clip.purpose,
        "agent_only": clip.agent_only,
        "agent_channel": clip.agent_channel,
        "channels": clip.channels,
        "format": clip.format,
        "size_bytes": clip.size_bytes,
        "sha256": clip.sha256,
        "encrypted": clip.encrypted,
        "retain_until": clip.retain_until.isoformat(),
        "kept_until": clip.kept_until.isoformat() if clip.kept_until else None,
        "kept_reason": clip.kept_reason,
        "kept_by": clip.kept_by,
        "kept_at": clip.kept_at.isoformat() if clip.kept_at else None,
        "created_by": clip.created_by,
        "created_at": clip.created_at.isoformat(),
    }


def _text(value: str, name: str, limit: int) -> str:
    text = value.strip()
    if not text:
        raise ClipError(f"give the clip's {name}")
    if len(text) > limit:
        raise ClipError(f"the {name} is longer than {limit} characters")
    return text


def _check_span(start_ms: int, end_ms: int, duration_ms: int | None) -> None:
    if start_ms < 0 or end_ms <= start_ms:
        raise ClipError("the clip must end after it starts, from 0 on")
    if end_ms - start_ms > MAX_CLIP_MS:
        raise ClipError(f"a clip is at most {MAX_CLIP_MS // 60000} minutes long")
    if duration_ms is not None and end_ms > duration_ms:
        raise ClipError(f"the call lasts {duration_ms} ms: the clip must end within it")


def _source(session: Session, recording_id: uuid.UUID, now: dt.datetime) -> Recording:
    """The call if a QA trainer may use it for training now; unknown otherwise (whatever it is)."""
    recording = usable_call(session, recording_id, now)
    if recording is None:
        raise NotFound(f"no recording {recording_id}")
    check_restrictions(restrictions_for(session, recording), Purpose.TRAINING, None)
    return recording


def _agent_channel(recording: Recording) -> str:
    """The channel that holds the agent alone, or a refusal when the catalogue cannot tell."""
    if recording.channels == 2 and recording.agent_leg_sha256 is not None:
        return "right"  # split legs: the caller on the left, the agent on the right
    raise ClipError(
        "the catalogue does not know which channel of this call is the agent's "
        "(only calls recorded as split legs are): cut a clip with both voices instead"
    )


def create_clip(
    runtime: Runtime,
    recording_id: uuid.UUID,
    *,
    start_ms: int,
    end_ms: int,
    title: str,
    purpose: str,
    agent_only: bool = False,
    actor: Actor,
) -> Clip:
    """Cut a clip into the library; audited ``qa.clip.create`` (purpose training)."""
    actor.require(Action.QA_LIBRARY)
    title = _text(title, "title", MAX_TITLE)
    purpose = _text(purpose, "purpose", MAX_PURPOSE)
    _check_span(start_ms, end_ms, None)
    with runtime.sessions() as session:
        recording = _source(session, recording_id, utcnow())
        _check_span(start_ms, end_ms, recording.duration_ms)
        channel = _agent_channel(recording) if agent_only else None
        session.expunge(recording)
    clip_id = uuid.uuid4()
    stored = cut_and_store(
        runtime, recording, clip_id, start_ms=start_ms, end_ms=end_ms, agent_channel=channel
    )
    try:
        with transaction(runtime.sessions) as session:
            lock_for_write(session)
            source = _source(session, recording_id, utcnow())  # objected while it was cut?
            clip = _row(clip_id, source, stored, start_ms, end_ms, title, purpose, channel, actor)
            session.add(clip)
            append_event(
                session,
                actor=actor.name,
                actor_role=actor.role_name,
                action="qa.clip.create",
                recording_id=recording_id,
                purpose=Purpose.TRAINING.value,
                client_addr=actor.client_addr,
                details={
                    "clip_id": str(clip_id),
                    "start_ms": start_ms,
                    "end_ms": end_ms,
                    "agent_only": agent_only,
                },
            )
            session.flush()
            session.expunge(clip)
    except BaseException:
        with contextlib.suppress(Exception):
            delete_clip_object(runtime, stored.object_key)
        raise
    return clip


def _row(
    clip_id: uuid.UUID,
    source: Recording,
    stored: StoredClip,
    start_ms: int,
    end_ms: int,
    title: str,
    purpose: str,
    channel: str | None,
    actor: Actor,
) -> Clip:
    wrapped = stored.wrapped
    return Clip(
        id=clip_id,
        recording_id=source.id,
        customer_id=source.customer_id,
        agent=source.agent,
        start_ms=start_ms,
        end_ms=end_ms,
        title=title,
        purpose=purpose,
        agent_only=channel is not None,
        agent_channel=channel,
        object_key=stored.object_key,
        format="opus",
        channels=stored.channels,
        duration_ms=stored.duration_ms,
        size_bytes=stored.size_bytes,
        sha256=stored.sha256,
        encrypted=wrapped is not None,
        key_provider=wrapped.provider if wrapped else None,
        kek_id=wrapped.kek_id if wrapped else None,
        wrapped_key=wrapped.wrapped if wrapped else None,
        header=stored.header,
        retain_until=source.retain_until,
        created_by=actor.name,
    )


def _load(session: Session, clip_id: uuid.UUID, now: dt.datetime) -> Clip:
    clip = session.scalar(select(Clip).where(Clip.id == clip_id, servable_condition(now)))
    if clip is None:
        raise ClipNotFound(f"no clip {clip_id}")
    return clip


def _audit(runtime: Runtime, actor: Actor, action: str, clip: Clip | None, **details: Any) -> None:
    runtime.audit.record(
        AuditEntry(
            actor=actor.name,
            actor_role=actor.role_name,
            action=action,
            recording_id=clip.recording_id if clip else None,
            purpose=Purpose.TRAINING.value if clip else None,
            client_addr=actor.client_addr,
            details={**({"clip_id": str(clip.id)} if clip else {}), **details},
        )
    )


def list_clips(runtime: Runtime, *, actor: Actor) -> list[Clip]:
    """The library: every clip that may still be served, newest first (audited ``qa.clip.list``)."""
    actor.require(Action.QA_LIBRARY)
    with runtime.sessions() as session:
        clips = list(
            session.scalars(
                select(Clip)
                .where(servable_condition(utcnow()))
                .order_by(Clip.created_at.desc(), Clip.id)
            )
        )
        session.expunge_all()
    _audit(runtime, actor, "qa.clip.list", None, clips=len(clips))
    return clips


def get_clip(runtime: Runtime, clip_id: uuid.UUID, *, actor: Actor) -> Clip:
    """One clip (audited ``qa.clip.view``)."""
    actor.require(Action.QA_LIBRARY)
    with runtime.sessions() as session:
        clip = _load(session, clip_id, utcnow())
        session.expunge(clip)
    _audit(runtime, actor, "qa.clip.view", clip)
    return clip


@dataclasses.dataclass
class ClipAudio:
    clip: Clip
    reader: ObjectReader


def open_clip_audio(runtime: Runtime, clip_id: uuid.UUID, *, actor: Actor) -> ClipAudio:
    """The clip's audio, after the audit entry (``qa.clip.play``, purpose training) commits."""
    actor.require(Action.QA_LIBRARY)
    with runtime.sessions() as session:
        clip = _load(session, clip_id, utcnow())
        session.expunge(clip)
    _audit(runtime, actor, "qa.clip.play", clip)
    return ClipAudio(clip, open_clip(runtime, clip))


def keep_clip(
    runtime: Runtime, clip_id: uuid.UUID, *, until: dt.datetime, reason: str, actor: Actor
) -> Clip:
    """Keep an agent-only clip until ``until``, beyond its call (audited ``qa.clip.keep``).

    :class:`KeepRefused` for a clip that holds the customer's voice (both
    channels, or a mono call): it never outlives its call.
    """
    actor.require(Action.QA_LIBRARY)
    reason = _text(reason, "reason", MAX_REASON)
    now = utcnow()
    if until.tzinfo is None:
        raise ClipError("give the date with its time zone")
    if until <= now or until > now + MAX_KEEP:
        raise ClipError("keep a clip until a moment in the next ten years")
    with transaction(runtime.sessions) as session:
        lock_for_write(session)
        clip = _load(session, clip_id, now)
        if not clip.agent_only:
            raise KeepRefused(
                "this clip holds the customer's voice: it expires with its call and cannot be "
                "kept longer; cut an agent-only clip (split-leg calls) to keep"
            )
        clip.kept_until, clip.kept_reason = until, reason
        clip.kept_by, clip.kept_at = actor.name, now
        append_event(
            session,
            actor=actor.name,
            actor_role=actor.role_name,
            action="qa.clip.keep",
            recording_id=clip.recording_id,
            client_addr=actor.client_addr,
            details={"clip_id": str(clip.id), "kept_until": until.isoformat()},
        )
        session.flush()
        session.expunge(clip)
    return clip


def delete_clip(runtime: Runtime, clip_id: uuid.UUID, *, actor: Actor) -> None:
    """Delete a clip from the library: its object, then its row (audited ``qa.clip.delete``)."""
    actor.require(Action.QA_LIBRARY)
    with runtime.sessions() as session:
        clip = _load(session, clip_id, utcnow())
        key = clip.object_key
    delete_clip_object(runtime, key)
    with transaction(runtime.sessions) as session:
        lock_for_write(session)
        row = session.get(Clip, clip_id, with_for_update=True)
        if row is None:
            return  # the nightly run or an objection deleted it meanwhile, and audited it
        append_event(
            session,
            actor=actor.name,
            actor_role=actor.role_name,
            action="qa.clip.delete",
            recording_id=row.recording_id,
            client_addr=actor.client_addr,
            details={"clip_id": str(row.id), "cause": "qa.clip.delete"},
        )
        session.delete(row)
