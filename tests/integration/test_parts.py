"""Use cases take the parts they name (recarchive/parts.py), not a whole Runtime.

A hold is placed with the catalogue's sessions, the settings and a store (an
``Archive``) and listed with the sessions alone (``Sessions``): nothing else
of a running process is built.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import types
import uuid

from sqlalchemy.orm import Session, sessionmaker

from recarchive.catalogue.database import transaction
from recarchive.catalogue.models import Recording
from recarchive.config import Settings, load_settings
from recarchive.retention.holds import list_holds, place_hold
from recarchive.storage.interfaces import ObjectStore
from recarchive.storage.memory import InMemoryObjectStore
from tests.actors import staff


@dataclasses.dataclass(frozen=True)
class Parts:
    """Exactly what ``Archive`` names."""

    settings: Settings
    sessions: sessionmaker[Session]
    store: ObjectStore


def add_recording(parts: Parts) -> Recording:
    recording_id = uuid.uuid4()
    key = f"recordings/2026/01/10/{recording_id}.wav"
    data = recording_id.bytes * 10
    info = parts.store.put(key, io.BytesIO(data), tags={"retention-class": "standard"})
    started = dt.datetime(2026, 1, 10, 9, tzinfo=dt.UTC)
    recording = Recording(
        id=recording_id, source="pbx", source_ref=f"ref-{recording_id}", started_at=started,
        duration_ms=1000, object_key=key, format="wav", codec="pcm_s16le", channels=1,
        sample_rate=8000, size_bytes=len(data), sha256=info.sha256 or "",
        retain_until=started + dt.timedelta(days=365),
    )  # fmt: skip
    with transaction(parts.sessions) as session:
        session.add(recording)
    return recording


def test_a_hold_is_placed_and_listed_with_only_the_parts_named(
    sessions: sessionmaker[Session],
) -> None:
    parts = Parts(load_settings(env={}), sessions, InMemoryObjectStore())
    recording = add_recording(parts)
    handler = staff("hanna")
    summary = place_hold(
        parts, case_ref="D-7", reason="billing dispute", actor=handler,
        recording_ids=[recording.id],
    )  # fmt: skip
    assert parts.store.get_tags(recording.object_key)["retention-class"] != "standard"
    only_sessions = types.SimpleNamespace(sessions=sessions)
    [(listed, covered)] = list_holds(only_sessions, handler)
    assert (listed.id, covered) == (summary.hold.id, 1)
    [(again, _)] = list_holds(only_sessions, handler, include_released=True)
    assert again.id == listed.id
