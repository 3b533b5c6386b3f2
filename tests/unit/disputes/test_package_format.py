"""What the offline checker computes agrees with the archive, and it needs none of the archive."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from recarchive.access.audit import GENESIS_HASH, entry_content, entry_hash
from recarchive.access.models import AuditEvent
from recarchive.disputes.package_format import canonical_entry_hash

_TEXT = st.text(max_size=40)
_DETAILS = st.dictionaries(
    _TEXT,
    st.recursive(
        st.none() | st.booleans() | st.integers() | _TEXT,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
        max_leaves=8,
    ),
    max_size=4,
)


def event(**fields: object) -> AuditEvent:
    values: dict[str, object] = {
        "at": dt.datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=dt.UTC),
        "actor": "handler-1",
        "actor_role": "dispute_handler",
        "action": "play",
        "recording_id": uuid.uuid4(),
        "purpose": "dispute",
        "case_ref": "RIITA-1",
        "client_addr": "192.0.2.7",
        "details": {},
        "prev_hash": GENESIS_HASH,
    }
    values.update(fields)
    return AuditEvent(**values)


def exported(entry: AuditEvent, seq: int = 7) -> dict[str, object]:
    """The entry as a package's custody.jsonl or ``recarchive audit export`` holds it."""
    line = json.dumps(
        {"seq": seq, **entry_content(entry), "hash": entry_hash(entry)},
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    parsed: dict[str, object] = json.loads(line)
    return parsed


@settings(max_examples=60, deadline=None)
@given(
    actor=_TEXT,
    action=_TEXT,
    case_ref=st.none() | _TEXT,
    client_addr=st.none() | _TEXT,
    recording=st.none() | st.uuids(),
    details=_DETAILS,
    at=st.datetimes(timezones=st.just(dt.UTC)),
)
def test_the_checkers_hash_is_the_archives(
    actor: str,
    action: str,
    case_ref: str | None,
    client_addr: str | None,
    recording: uuid.UUID | None,
    details: dict[str, object],
    at: dt.datetime,
) -> None:
    entry = event(
        actor=actor,
        action=action,
        case_ref=case_ref,
        client_addr=client_addr,
        recording_id=recording,
        details=details,
        at=at,
    )
    assert canonical_entry_hash(exported(entry)) == entry_hash(entry)


def test_a_changed_field_changes_the_hash() -> None:
    line = exported(event(details={"note": "ääkköset €"}))
    stated = line["hash"]
    assert canonical_entry_hash(line) == stated
    for field, value in (("actor", "someone"), ("prev_hash", "1" * 64), ("details", {})):
        assert canonical_entry_hash({**line, field: value}) != stated
    assert canonical_entry_hash({**line, "seq": 99}) == stated  # the place is not the content


def test_the_checker_imports_nothing_of_the_archive() -> None:
    """A court expert's machine: no catalogue, store, settings nor their libraries."""
    code = (
        "import sys, recarchive.disputes.verify\nprint('\\n'.join(sorted(m for m in sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    ours = {m for m in loaded if m.startswith("recarchive")}
    assert ours == {
        "recarchive",
        "recarchive.disputes",
        "recarchive.disputes.custody_checks",
        "recarchive.disputes.package_format",
        "recarchive.disputes.verify",
    }
    for library in ("sqlalchemy", "boto3", "pydantic", "httpx", "fastapi"):
        assert library not in loaded
