"""The periods a QA plan samples: ISO weeks and months, bounded in the installation's zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from recarchive.qa.models import PeriodKind
from recarchive.qa.periods import PeriodError, parse_period

HELSINKI = ZoneInfo("Europe/Helsinki")


def test_a_week_runs_monday_to_monday_local_time() -> None:
    period = parse_period("2026-W49", HELSINKI)
    assert period.kind is PeriodKind.WEEK
    assert period.start == dt.datetime(2026, 11, 29, 22, 0, tzinfo=dt.UTC)
    assert period.end == dt.datetime(2026, 12, 6, 22, 0, tzinfo=dt.UTC)


def test_a_week_across_the_daylight_saving_change_keeps_its_wall_clock_bounds() -> None:
    # 2026-W13: Monday 23 March to Monday 30 March; clocks go forward on Sunday 29 March.
    period = parse_period("2026-W13", HELSINKI)
    assert period.start.astimezone(HELSINKI).hour == 0
    assert period.end.astimezone(HELSINKI).hour == 0
    assert period.end - period.start == dt.timedelta(days=7, hours=-1)


def test_week_53_exists_only_in_long_years() -> None:
    assert parse_period("2026-W53", HELSINKI).label == "2026-W53"
    with pytest.raises(PeriodError, match="2025 has ISO weeks 01 to 52"):
        parse_period("2025-W53", HELSINKI)


def test_december_ends_at_the_next_new_year() -> None:
    period = parse_period("2026-12", HELSINKI)
    assert period.kind is PeriodKind.MONTH
    assert period.start == dt.datetime(2026, 11, 30, 22, 0, tzinfo=dt.UTC)
    assert period.end == dt.datetime(2026, 12, 31, 22, 0, tzinfo=dt.UTC)


def test_the_zone_decides_the_bounds() -> None:
    period = parse_period("2026-11", ZoneInfo("UTC"))
    assert (period.start, period.end) == (
        dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
    )


@pytest.mark.parametrize(
    "text",
    [
        "2026-W54",
        "2026-W00",
        "2026-13",
        "2026-00",
        "2026-1",
        "2026-W1",
        "26-W10",
        "2026W10",
        "2026-w10",
        "2026-11-01",
        "week 49",
        "",
        "\x00",
        "\uff12\uff10\uff12\uff16-11",  # full-width digits
        "1999-W10",
        "9999-12",
        "x" * 10_000,
    ],
)
def test_nasty_periods_are_refused_with_the_field_named(text: str) -> None:
    with pytest.raises(PeriodError) as caught:
        parse_period(text, HELSINKI)
    assert caught.value.field == "period"
    assert caught.value.http_status == 422
    assert len(caught.value.message) < 200
