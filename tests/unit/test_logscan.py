"""The log scan of ``tests/conftest.py`` can fail: planted personal data is found."""

from __future__ import annotations

import logging
import sys

import pytest

from tests.logscan import REPO as REPO_ROOT
from tests.logscan import SCANNER, LogScan, PersonalDataScanner, format_record, harvest


def _record(message: str, *, extra: dict[str, object] | None = None) -> logging.LogRecord:
    record = logging.LogRecord("recarchive.test", logging.ERROR, __file__, 1, message, None, None)
    record.__dict__.update(extra or {})
    return record


@pytest.mark.parametrize(
    "line",
    [
        "caller +358401234567 searched",  # E.164, from the test data
        "number=0401234567",  # national
        "number=040 123 4567",  # as people write it
        "customer Maija Meikäläinen",  # a name of the test data
        "customer Maija Meik\\u00e4l\\u00e4inen",  # the same, JSON-escaped
        "code 131052-308T",  # henkilötunnus
        "code 131052-308t",
        "caller +358 44 765 4321",  # not in the test data: the shape is enough
        "called 0507654320",
        "identity 010203A123B",
        "file in-0201234000-0404046220-20260314-093950-1742212862.401.wav",
    ],
)
def test_the_scanner_finds_personal_data(line: str) -> None:
    assert SCANNER.find(line), line


@pytest.mark.parametrize(
    "line",
    [
        "http_request method=GET route=/api/v1/recordings status=200 ms=3.2",
        "customer_id=C-100 customer=C100001",  # pseudonymous ids are allowed
        "recording_id=0b9c3a54-1f0e-4a55-9b1e-5d7e0c1f2a3b",
        # A random id whose last group starts like a mobile number (seen in a CI run).
        '"work_item_id": "c5a128c3-a530-455d-b2f7-0404046220e7"',
        "token_id=628f03c42b124204ab0404046220a9b4",
        "bytes=10401234567 sha256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "object_key=recordings/2026/03/14/5d0e.wav started 2026-03-14T12:01:02+02:00",
        "uniqueid=1742212862.401 bytes=1234567",
    ],
)
def test_the_scanner_lets_ids_and_times_through(line: str) -> None:
    assert SCANNER.find(line) == [], line


def test_a_handler_on_planted_records_finds_message_extra_and_exception() -> None:
    scan = LogScan(PersonalDataScanner(["Liisa Lukija"]))
    try:
        raise ValueError("no customer with number 0409998877")
    except ValueError:
        failed = _record("request_failed")
        failed.exc_info = sys.exc_info()
    records = [
        _record("http_request", extra={"route": "/api/v1/recordings", "status": 200}),
        _record("lookup by %s", extra={}),
        _record("directory_imported", extra={"customer": "Liisa Lukija"}),
        failed,
    ]
    records[1].args = ("+358401112223",)
    for record in records:
        scan.handle(record)
    found = scan.take()
    assert [(f.value, f.origin) for f in found] == [
        ("+358401112223", "recarchive.test"),
        ("Liisa Lukija", "recarchive.test"),
        ("0409998877", "recarchive.test"),
    ]
    assert scan.take() == []  # taken once


def test_command_output_is_scanned_only_in_its_log_lines() -> None:
    scan = LogScan(PersonalDataScanner())
    stderr = (
        '{"event": "archived", "caller": "+358401234567"}\n'
        "Error: customer 131052-308T: not found\n"  # the command's message, not a log line
    )
    scan.scan_output("recarchive ingest", stderr)
    assert [f.value for f in scan.take()] == ["+358401234567"]


def test_the_test_data_is_harvested_from_sources_and_generators() -> None:
    values = harvest([REPO_ROOT / "tests" / "integration" / "test_api.py",
                      REPO_ROOT / "scripts" / "gen_calls.py"])  # fmt: skip
    assert {"+358401234567", "0401234567", "040 123 4567", "131052-308T"} <= values
    assert {"Maija Meikäläinen", "Matti Virtanen"} <= values
    assert "C-100" not in values


def test_format_record_shows_what_a_log_line_can_show() -> None:
    text = format_record(_record("event", extra={"field": "value"}))
    assert "event" in text
    assert '"field": "value"' in text
