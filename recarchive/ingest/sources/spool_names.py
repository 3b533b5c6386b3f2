"""What a spool file's name tells, and which CDR row it belongs to.

FreePBX names a recording
``<type>-<exten>-<from>-<YYYYMMDD>-<HHMMSS>-<uniqueid>.<ext>``; MixMonitor
files elsewhere hold the ``uniqueid`` somewhere in their name. With
Asterisk's ``systemname`` set, every uniqueid starts with it
(``pbx1-1742211234.117``), in the CDR and in the names alike. Names hold
phone numbers: nothing here logs them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from recarchive.catalogue.models import Direction
from recarchive.ingest.cdr import CdrRecord, resolve_local, uniqueid_epoch
from recarchive.ingest.cdr_legs import CdrLegs
from recarchive.ingest.interfaces import CallFacts

#: A FreePBX recording name. With Asterisk's ``systemname`` set, the uniqueid
#: (and so the name) carries the system name first: ``…-112653-pbx1-1742211234.117.wav``.
FREEPBX_NAME = re.compile(
    r"^(?P<type>[a-z]+)-(?P<exten>[^-]*)-(?P<caller>[^-]*)-(?P<date>\d{8})-(?P<time>\d{6})"
    r"-(?P<uniqueid>(?:[A-Za-z0-9][A-Za-z0-9_.-]*-)?\d+\.\d+)\.(?P<ext>[A-Za-z0-9-]+)$"
)
#: A uniqueid's epoch and sequence, anywhere in a flat MixMonitor name.
_UNIQUEID = re.compile(r"(?<![\d.])(\d{9,}\.\d+)(?![\d])")
_TYPE_DIRECTION = {
    "in": Direction.INBOUND,
    "q": Direction.INBOUND,
    "rg": Direction.INBOUND,
    "exten": Direction.INBOUND,
    "external": Direction.INBOUND,
    "out": Direction.OUTBOUND,
    "internal": Direction.INTERNAL,
    "conf": Direction.INTERNAL,
}


def match_names(
    names: Sequence[str], by_file: dict[str, CdrRecord], by_uniqueid: dict[str, CdrRecord]
) -> tuple[CdrRecord | None, re.Match[str] | None]:
    """The CDR record of a recording known by ``names``, and the first FreePBX name among them.

    A split leg is known by its own name and by the call's name without the
    leg's tag (``…-1742211234.117-in.wav``, ``…-1742211234.117.wav``): the
    record is the one whose ``recordingfile`` is one of the names, else the
    one whose uniqueid a name holds.
    """
    name = next((m for n in names if (m := FREEPBX_NAME.match(n)) is not None), None)
    for filename in names:
        if (record := by_file.get(filename)) is not None:
            return record, name
    for filename in names:
        record = record_for_name(filename, FREEPBX_NAME.match(filename), by_uniqueid)
        if record is not None:
            return record, name
    return None, name


def record_for_name(
    filename: str, name: re.Match[str] | None, by_uniqueid: dict[str, CdrRecord]
) -> CdrRecord | None:
    """The CDR record whose uniqueid the file name holds, system-name prefix and all.

    A FreePBX name tells its uniqueid exactly. In a flat name the uniqueid's
    numbers are found, and the ``-``-separated words before them are tried as
    its system name, longest first (``pbx-hel-1-1742211234.117``, then
    ``hel-1-…``, ``1-…``, then the bare numbers): uniqueids are never matched
    without the prefix they carry, since two systems sharing a CDR store can
    give the same numbers to different calls.
    """
    if name is not None:
        return by_uniqueid.get(name.group("uniqueid"))
    for candidate in _uniqueid_candidates(filename):
        record = by_uniqueid.get(candidate)
        if record is not None:
            return record
    return None


def name_started_at(name: re.Match[str], zone: ZoneInfo) -> dt.datetime:
    """The start a FreePBX name tells, in UTC.

    The name's time is local; in the hour that repeats when daylight saving
    time ends, the epoch of the uniqueid in the same name tells which of the
    two hours it was (:func:`recarchive.ingest.cdr.resolve_local`).
    """
    local = dt.datetime.strptime(name.group("date") + name.group("time"), "%Y%m%d%H%M%S")
    return resolve_local(local, zone, near=uniqueid_epoch(name.group("uniqueid")))


def record_for_name_time(name: re.Match[str], legs: CdrLegs, zone: ZoneInfo) -> CdrRecord | None:
    """The CDR line logged without uniqueid that a FreePBX name describes: started at
    the name's time (within seconds), to the number it dialled or from its caller."""
    return legs.for_name(name_started_at(name, zone), name.group("exten"), name.group("caller"))


def _uniqueid_candidates(filename: str) -> list[str]:
    match = _UNIQUEID.search(filename)
    if match is None:
        return []
    words = filename[: match.start()].split("-")
    if words and words[-1] == "":
        words.pop()  # the separator before the numbers
        return ["-".join([*words[i:], match.group(1)]) for i in range(len(words))] + [
            match.group(1)
        ]
    return [match.group(1)]


def call_facts(
    record: CdrRecord | None, name: re.Match[str] | None, zone: ZoneInfo
) -> CallFacts | None:
    if record is None and name is None:
        return None
    direction = Direction.UNKNOWN
    if name is not None:
        direction = _TYPE_DIRECTION.get(name.group("type"), Direction.UNKNOWN)
    if record is None:
        assert name is not None
        # FreePBX names hold the number dialled (EXTEN), then the caller id (CALLERID(num)).
        # A queue recording (type "q") names the queue in place of the number dialled.
        exten, caller = name.group("exten") or None, name.group("caller") or None
        outbound = direction is Direction.OUTBOUND
        queue = exten if name.group("type") == "q" else None
        fields = {"agent": caller or ""} if outbound else {"did": exten or ""}
        if queue:
            fields = {"queue": queue}
        return CallFacts(
            started_at=name_started_at(name, zone),
            call_id=name.group("uniqueid"),
            direction=direction,
            caller_number=caller,
            called_number=None if queue else exten,
            agent=caller if outbound else None,
            queue=queue,
            fields={k: v for k, v in fields.items() if v},
            from_name=True,
        )
    if direction is Direction.UNKNOWN:
        direction = _direction_from_context(record)
    outbound = direction is Direction.OUTBOUND
    did = record.did or (record.dst if not outbound else "")
    fields = {
        "userfield": record.userfield,
        "ivr": record.ivr or "",
        "queue": record.queue or "",
        "did": did,
        "dcontext": record.dcontext,
        "agent": record.agent or "",
    }
    return CallFacts(
        started_at=record.start,
        call_id=record.uniqueid,
        direction=direction,
        caller_number=(record.cnum or record.src) or None,
        called_number=record.dst or None,
        agent=record.agent,
        queue=record.queue,
        fields={k: v for k, v in fields.items() if v},
        linked_call_id=record.linkedid or None,
    )


def recorded_call_id(record: CdrRecord) -> str:
    """The call id a recording of ``record`` is archived under when named by FreePBX.

    The uniqueid its ``recordingfile`` names (the name's, as archived from the
    name alone), else the row's own uniqueid.
    """
    name = FREEPBX_NAME.match(record.recordingfile) if record.recordingfile else None
    return name.group("uniqueid") if name is not None else record.uniqueid


def _direction_from_context(record: CdrRecord) -> Direction:
    context = record.dcontext.lower()
    if context.startswith(("from-pstn", "from-trunk", "from-did", "ext-queues")):
        return Direction.INBOUND
    if context.startswith("from-internal"):
        return Direction.OUTBOUND if len(record.dst) > 6 else Direction.INTERNAL
    return Direction.UNKNOWN
