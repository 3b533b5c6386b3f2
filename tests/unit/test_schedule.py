"""When the nightly job is due, across midnight and daylight saving changes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from recarchive.retention.tasks import last_scheduled, next_scheduled

HELSINKI = ZoneInfo("Europe/Helsinki")
AT = dt.time(2, 30)


@pytest.mark.parametrize(
    ("now", "last", "following"),
    [
        # winter (UTC+2): 02:30 local is 00:30 UTC
        ("2026-01-15T00:29:00+00:00", "2026-01-14T00:30:00+00:00", "2026-01-15T00:30:00+00:00"),
        ("2026-01-15T00:30:00+00:00", "2026-01-15T00:30:00+00:00", "2026-01-16T00:30:00+00:00"),
        # summer (UTC+3): 23:30 UTC the day before
        ("2026-07-01T12:00:00+00:00", "2026-06-30T23:30:00+00:00", "2026-07-01T23:30:00+00:00"),
        # the night clocks go forward (29 March 2026, 03:00 -> 04:00): 02:30 still exists
        ("2026-03-29T01:00:00+00:00", "2026-03-29T00:30:00+00:00", "2026-03-29T23:30:00+00:00"),
    ],
)
def test_scheduled_moments(now: str, last: str, following: str) -> None:
    moment = dt.datetime.fromisoformat(now)
    assert last_scheduled(moment, AT, HELSINKI) == dt.datetime.fromisoformat(last)
    assert next_scheduled(moment, AT, HELSINKI) == dt.datetime.fromisoformat(following)
