"""A call's CDR rows: one per dial leg, and which of them talked.

Asterisk writes a CDR row for every leg of a call. A ring group or a forked
Dial gives several rows under the caller's uniqueid, one per phone rung
(``dstchannel``), at most one ``ANSWERED``; the leg that talked gives the
call's agent and times. A queue or follow-me that rings members through
Local channels gives pairs: the caller's row dials
``Local/201@from-queue-00000012;1``, and the other half's own row (its own
uniqueid, ``channel`` ``Local/201@from-queue-00000012;2``) dials the device
that talked (``PJSIP/201-0000001a``). Such a ``;2`` row is a leg of another
call, never a call of its own. With ``newcdrcolumns`` every row of a call
carries its ``linkedid``.

A cdr_csv line logged without its uniqueid cannot be matched by uniqueid; a
FreePBX-named recording finds it by the name's start time and numbers
(:meth:`CdrLegs.for_name`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Sequence

from recarchive.ingest.cdr import CdrRecord

#: A Local channel's half: ``Local/<exten>@<context>-<sequence>;<1 or 2>``.
LOCAL_CHANNEL = re.compile(r"^Local/(?P<name>[^;]+);(?P<half>[12])$")
#: How many Local channels in a chain are followed (a loop ends there too).
_MAX_HOPS = 8
#: How far a FreePBX name's start time may be from the start of a row without uniqueid.
_NAME_SLACK = dt.timedelta(seconds=2)


def is_local_second_half(record: CdrRecord) -> bool:
    """Whether the row is the ``;2`` half of a Local channel: a leg of another call."""
    match = LOCAL_CHANNEL.match(record.channel)
    return match is not None and match.group("half") == "2"


def talked_leg(legs: Sequence[CdrRecord]) -> CdrRecord:
    """The leg that talked: answered, the longest talk, then the latest answer; the
    first leg when none was answered."""
    answered = [leg for leg in legs if leg.answered]
    if not answered:
        return legs[0]
    return max(answered, key=lambda leg: (leg.talk_time, leg.answer or leg.start))


def record_key(record: CdrRecord) -> str:
    """A row's uniqueid, or its line for a cdr_csv line logged without one."""
    return record.uniqueid or f"line:{record.line}"


def call_key(record: CdrRecord) -> str:
    """The call a row belongs to: its linkedid when logged, else its own key."""
    return record.linkedid or record_key(record)


class CdrLegs:
    """Every CDR row read, by uniqueid, and the call each uniqueid stands for."""

    def __init__(self) -> None:
        self._legs: dict[str, list[CdrRecord]] = {}
        #: Rows whose channel is a Local ``;2`` half, by the Local channel's name.
        self._second_halves: dict[str, list[CdrRecord]] = {}
        #: cdr_csv lines without a uniqueid.
        self.anonymous: list[CdrRecord] = []
        self._calls: dict[str, CdrRecord] | None = None

    def add(self, record: CdrRecord) -> None:
        match = LOCAL_CHANNEL.match(record.channel)
        if match is not None and match.group("half") == "2":
            self._second_halves.setdefault(match.group("name"), []).append(record)
        if record.uniqueid:
            self._legs.setdefault(record.uniqueid, []).append(record)
        else:
            self.anonymous.append(record)
        self._calls = None

    @property
    def by_uniqueid(self) -> dict[str, CdrRecord]:
        """Per uniqueid, its leg that talked, with the device reached through Local channels."""
        if self._calls is None:
            self._calls = {
                uniqueid: self.resolve(talked_leg(legs)) for uniqueid, legs in self._legs.items()
            }
        return self._calls

    def records(self) -> Iterable[CdrRecord]:
        """Every row, legs and all."""
        for legs in self._legs.values():
            yield from legs
        yield from self.anonymous

    def resolve(self, record: CdrRecord) -> CdrRecord:
        """``record`` with ``talked_channel`` set when its dstchannel is a Local channel:
        the device the other half's answered row reached, along a chain of them."""
        channel, followed = record.dstchannel, set()
        for _ in range(_MAX_HOPS):
            match = LOCAL_CHANNEL.match(channel)
            if match is None or match.group("name") in followed:
                break
            followed.add(match.group("name"))
            halves = self._second_halves.get(match.group("name"))
            leg = talked_leg(halves) if halves else None
            if leg is None or not leg.answered or not leg.dstchannel:
                break
            channel = leg.dstchannel
        if channel == record.dstchannel:
            return record
        return dataclasses.replace(record, talked_channel=channel)

    def for_name(self, started: dt.datetime, exten: str, caller: str) -> CdrRecord | None:
        """The row without uniqueid a FreePBX name describes: started within two
        seconds of ``started``, dialled ``exten`` or called from ``caller``."""
        legs = [
            record
            for record in self.anonymous
            if abs(record.start - started) <= _NAME_SLACK
            and not is_local_second_half(record)
            and ((exten and record.dst == exten) or (caller and record.src == caller))
        ]
        return self.resolve(talked_leg(legs)) if legs else None


def calls_without_recording(
    legs: CdrLegs, recorded: set[str], *, need_recordingfile: bool
) -> list[CdrRecord]:
    """One answered row for each call none of whose rows has a recording.

    ``recorded`` holds the :func:`record_key` of rows whose recording was
    found. A call is its linkedid when logged (a transfer's or a queue's
    legs have uniqueids of their own), else a uniqueid. Local ``;2`` rows
    and legs never answered raise nothing; with ``need_recordingfile`` (a
    FreePBX CDR, which says which calls were recorded) neither do rows
    without a ``recordingfile``.
    """
    rows = list(legs.records())
    recorded_calls = {call_key(row) for row in rows if record_key(row) in recorded}
    missing: dict[str, CdrRecord] = {}
    for row in rows:
        if not row.answered or is_local_second_half(row) or call_key(row) in recorded_calls:
            continue
        if need_recordingfile and not row.recordingfile:
            continue
        missing.setdefault(call_key(row), legs.by_uniqueid.get(row.uniqueid, row))
    return list(missing.values())
