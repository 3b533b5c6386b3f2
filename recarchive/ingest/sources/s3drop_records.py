"""What an Amazon Connect-style drop tells about a call: its contact record, or its key.

A contact trace record (CTR) gives the facts of a call; a recording whose
CTR never comes is archived from what its key tells (the ContactId and the
minute the recording started), marked so that a CTR arriving later may
still enrich it. CTR contents (numbers, agent names) go to the catalogue
only: the messages of :class:`Malformed` name fields, never their values.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from recarchive.catalogue.models import Direction
from recarchive.ingest.interfaces import CallFacts

#: Largest contact record read; a larger one is malformed.
MAX_RECORD_BYTES = 1024 * 1024
_DIRECTIONS = {
    "INBOUND": Direction.INBOUND,
    "OUTBOUND": Direction.OUTBOUND,
    "CALLBACK": Direction.OUTBOUND,
    "API": Direction.OUTBOUND,
}


class Malformed(Exception):
    """A contact record that cannot be used; the message says why."""


def parse_record(data: bytes) -> Mapping[str, Any]:
    """A contact record's JSON object; raises :class:`Malformed`."""
    try:
        record = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Malformed(f"not valid JSON ({type(exc).__name__})") from None
    if not isinstance(record, dict):
        raise Malformed("not a JSON object")
    return record


def key_facts(contact: str, key: str, fallback: dt.datetime) -> CallFacts:
    """What a recording's key alone tells: the contact and the minute it started.

    The direction, numbers, agent and queue stay unknown; ``from_name`` marks
    the facts so that a contact record arriving later enriches the recording.
    """
    return CallFacts(started_at=stamp(key, fallback), call_id=contact, from_name=True)


def stamp(key: str, fallback: dt.datetime) -> dt.datetime:
    """The call time in a recording's name (minutes, UTC), or ``fallback``."""
    try:
        found = dt.datetime.strptime(key.rsplit("_", 2)[1], "%Y%m%dT%H:%M")
    except ValueError:  # digits in the right places, but no date (month 13...)
        return fallback
    return found.replace(tzinfo=dt.UTC)


def _timestamp(value: object, field: str) -> dt.datetime:
    if not isinstance(value, str):
        raise Malformed(f"{field} is missing")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise Malformed(f"{field} is not an ISO 8601 time") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _member(record: Mapping[str, Any], name: str, field: str) -> str | None:
    value = record.get(name)
    inner = value.get(field) if isinstance(value, dict) else None
    return (inner.strip() or None) if isinstance(inner, str) else None


def record_facts(contact: str, record: Mapping[str, Any]) -> CallFacts:
    """What the contact record says; raises :class:`Malformed` when it is unusable."""
    if str(record.get("ContactId", "")).lower() != contact.lower():
        raise Malformed("its ContactId does not match its name")
    started = _timestamp(record.get("InitiationTimestamp"), "InitiationTimestamp")
    method = str(record.get("InitiationMethod") or "").upper()
    direction = _DIRECTIONS.get(method, Direction.UNKNOWN)
    customer = _member(record, "CustomerEndpoint", "Address")
    system = _member(record, "SystemEndpoint", "Address")
    caller, called = (system, customer) if direction is Direction.OUTBOUND else (customer, system)
    agent = _member(record, "Agent", "Username")
    queue = _member(record, "Queue", "Name")
    fields = {"queue": queue or "", "agent": agent or "", "did": system or ""}
    attributes = record.get("Attributes")
    if isinstance(attributes, dict):
        for name, value in attributes.items():
            if value is not None:
                text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                fields[f"attribute:{name}"] = text
    return CallFacts(
        started_at=started,
        call_id=contact,
        direction=direction,
        caller_number=caller,
        called_number=called,
        agent=agent,
        queue=queue,
        fields={k: v for k, v in fields.items() if v},
        # A transfer's contacts share the first one's id (which has no InitialContactId).
        linked_call_id=_text(record.get("InitialContactId")) or contact,
    )


def _text(value: object) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None
