"""QA reports without a catalogue: the range of periods and the CSV's formula guard."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from recarchive.qa.report_csv import neutralise
from recarchive.qa.reports import MAX_PERIODS, ReportRangeError, report_periods

HELSINKI = ZoneInfo("Europe/Helsinki")
#: Sunday 6 December 2026 23:30 in Helsinki: still week 49 there, Monday nowhere yet.
NOW = dt.datetime(2026, 12, 6, 21, 30, tzinfo=dt.UTC)


def labels(*args: object) -> list[str]:
    return [p.label for p in report_periods(*args)]  # type: ignore[arg-type]


def test_by_default_the_last_six_periods_up_to_the_current_one() -> None:
    assert labels("week", None, None, HELSINKI, NOW) == [f"2026-W{n}" for n in range(44, 50)]
    assert labels("month", None, None, HELSINKI, NOW) == [f"2026-{n:02d}" for n in range(7, 13)]
    # 22:30 UTC is Monday 00:30 in Helsinki: week 50 has begun there.
    later = NOW + dt.timedelta(hours=1)
    assert labels("week", None, None, HELSINKI, later)[-1] == "2026-W50"


def test_a_range_crosses_years_and_defaults_its_start_from_its_end() -> None:
    assert labels("week", "2026-W52", "2027-W02", HELSINKI, NOW) == [
        "2026-W52", "2026-W53", "2027-W01", "2027-W02",
    ]  # fmt: skip
    assert labels("week", None, "2027-W02", HELSINKI, NOW)[0] == "2026-W50"
    assert labels("month", "2026-11", "2027-02", HELSINKI, NOW) == [
        "2026-11", "2026-12", "2027-01", "2027-02",
    ]  # fmt: skip
    assert labels("week", "2020-W53", "2020-W53", HELSINKI, NOW) == ["2020-W53"]


def test_the_range_is_bounded() -> None:
    assert len(labels("month", "2020-01", "2028-08", HELSINKI, NOW)) == MAX_PERIODS
    with pytest.raises(ReportRangeError, match="at most 104") as exc:
        report_periods("month", "2020-01", "2028-09", HELSINKI, NOW)
    assert exc.value.field == "from"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("=SUM(A1:A9)", "'=SUM(A1:A9)"),
        ("+358401234", "'+358401234"),
        ("-2+3", "'-2+3"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("agent-7", "agent-7"),
        ("", ""),
        ("a=b", "a=b"),
    ],
)
def test_a_cell_a_spreadsheet_would_run_is_quoted(text: str, expected: str) -> None:
    assert neutralise(text) == expected
