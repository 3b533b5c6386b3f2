"""The periods a plan samples: an ISO week (``2026-W49``) or a month (``2026-11``).

A period runs from its first midnight to the next period's first midnight
in the installation's time zone (``general.timezone``), so a week starting
on a daylight-saving change is still Monday to Monday on the wall clock.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from zoneinfo import ZoneInfo

from recarchive.errors import InvalidInputError
from recarchive.qa.models import PeriodKind

__all__ = ["Period", "PeriodError", "parse_period"]

_WEEK = re.compile(r"([0-9]{4})-W([0-9]{2})")
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
#: Years a period may lie in: a typo outside them is refused, not searched.
_YEARS = range(2000, 10000 - 1)


class PeriodError(InvalidInputError):
    """not a period: give an ISO week like 2026-W49 or a month like 2026-11"""

    field = "period"


@dataclasses.dataclass(frozen=True)
class Period:
    """A week or a month, with its bounds as aware UTC times (start included, end not)."""

    label: str
    kind: PeriodKind
    start: dt.datetime
    end: dt.datetime


def _midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC)


def parse_period(text: str, zone: ZoneInfo) -> Period:
    """The period ``text`` names, in ``zone``; :class:`PeriodError` naming what is wrong."""
    text = text.strip()
    if week := _WEEK.fullmatch(text):
        year, number = int(week[1]), int(week[2])
        if year not in _YEARS:
            raise PeriodError(f"period {text!r}: year {year} is out of range")
        try:
            monday = dt.date.fromisocalendar(year, number, 1)
        except ValueError:
            last = dt.date(year, 12, 28).isocalendar().week
            raise PeriodError(f"period {text!r}: {year} has ISO weeks 01 to {last:02d}") from None
        start = _midnight(monday, zone)
        end = _midnight(monday + dt.timedelta(days=7), zone)
        return Period(f"{year}-W{number:02d}", PeriodKind.WEEK, start, end)
    if month := _MONTH.fullmatch(text):
        year, number = int(month[1]), int(month[2])
        if year not in _YEARS:
            raise PeriodError(f"period {text!r}: year {year} is out of range")
        if not 1 <= number <= 12:
            raise PeriodError(f"period {text!r}: months are 01 to 12")
        first = dt.date(year, number, 1)
        following = dt.date(year + number // 12, number % 12 + 1, 1)
        return Period(
            f"{year}-{number:02d}",
            PeriodKind.MONTH,
            _midnight(first, zone),
            _midnight(following, zone),
        )
    raise PeriodError(
        f"not a period: {text[:32]!r}; give an ISO week like 2026-W49 or a month like 2026-11"
    )
