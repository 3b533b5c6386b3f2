"""Spool file names and CDR uniqueids, with and without Asterisk's systemname prefix."""

from __future__ import annotations

import datetime as dt

import pytest

from recarchive.ingest.cdr import CdrRecord
from recarchive.ingest.sources.spool_names import FREEPBX_NAME, record_for_name

START = dt.datetime(2026, 3, 14, 9, 26, 53, tzinfo=dt.UTC)


def record(uniqueid: str) -> CdrRecord:
    return CdrRecord(
        line=1, uniqueid=uniqueid, start=START, answer=START, end=START, src="", dst="",
        dcontext="", channel="", dstchannel="", lastapp="", lastdata="",
        disposition="ANSWERED", userfield="",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("filename", "uniqueid", "ext"),
    [
        ("in-0201234000-0401234567-20260314-112653-1742211234.117.wav", "1742211234.117", "wav"),
        ("in-020-040-20260314-112653-pbx1-1742211234.117.wav", "pbx1-1742211234.117", "wav"),
        ("q-602--20260314-112653-pbx-hel.fi-1742211234.117.g726-32", "pbx-hel.fi-1742211234.117",
         "g726-32"),
    ],
)  # fmt: skip
def test_freepbx_names_tell_the_uniqueid_with_its_system_name(
    filename: str, uniqueid: str, ext: str
) -> None:
    match = FREEPBX_NAME.match(filename)
    assert match is not None
    assert match.group("uniqueid") == uniqueid
    assert match.group("ext") == ext
    assert match.group("date") == "20260314"


@pytest.mark.parametrize(
    ("filename", "found"),
    [
        ("1742211234.117.wav", "1742211234.117"),
        ("pbx1-1742211234.117.wav", "pbx1-1742211234.117"),
        ("pbx-hel-1-1742211234.117-in.wav", "pbx-hel-1-1742211234.117"),
        ("out-2001-pbx1-1742211234.117.wav", "pbx1-1742211234.117"),
        # Another system's call with the same numbers is not this CDR's call.
        ("pbx2-1742211234.117.wav", None),
    ],
)
def test_flat_names_match_the_cdr_uniqueid_with_its_prefix(
    filename: str, found: str | None
) -> None:
    rows = {uid: record(uid) for uid in ("pbx1-1742211234.117", "pbx-hel-1-1742211234.117")}
    if found is not None and "-" not in found:
        rows = {found: record(found)}
    match = record_for_name(filename, FREEPBX_NAME.match(filename), rows)
    assert (match.uniqueid if match else None) == found
