"""The web player's QA pages for trainers, in Finnish and English.

``/player/qa`` is the QA home: sampling plans (list, create) and, for a plan
and a period, its sample (drawn here, or the stored one shown) with a link
to evaluate each pick. ``/player/qa/calls/{recording_id}`` plays one call
with the trainer's notes on the seek bar beside the scorecard form, and cuts
clips, and attaches notes to the evaluation. ``/player/qa/library`` is the
training library, ``/player/qa/forms`` the scorecard forms (read only) and
``/player/qa/reports`` the QA reports per agent and period, with their CSVs.

The pages are shells under the player's Content-Security-Policy; their
scripts (``static/qa_*.js``) work through ``/api/v1/qa`` with the sign-in
session, so the API alone decides and audits. A role a page is not for gets
the refusal page (403, audited as ``access.refused``). Frame and texts:
:mod:`recarchive.api.staff_pages`, :mod:`recarchive.api.i18n`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response

from recarchive.access.policy import Action
from recarchive.api.staff_pages import role_page
from recarchive.catalogue.database import utcnow
from recarchive.qa.reports import report_periods

router = APIRouter(tags=["player"], include_in_schema=False)
#: What the QA pages' scripts say themselves (the rest is in the templates).
SCRIPT_PREFIXES: tuple[str, ...] = ("qa.",)


def last_finished_periods(now: dt.datetime, zone: ZoneInfo) -> dict[str, str]:
    """The last whole ISO week and month before ``now`` in ``zone``: the pickers' defaults."""
    today = now.astimezone(zone).date()
    week = (today - dt.timedelta(days=7)).isocalendar()
    first = today.replace(day=1) - dt.timedelta(days=1)
    return {"week": f"{week.year}-W{week.week:02d}", "month": f"{first.year}-{first.month:02d}"}


def default_report_ranges(now: dt.datetime, zone: ZoneInfo) -> dict[str, str]:
    """The reports page's default ranges: the last six finished weeks, and months."""
    ranges: dict[str, str] = {}
    for kind, last in last_finished_periods(now, zone).items():
        periods = report_periods(kind, None, last, zone, now)
        ranges[f"{kind}_from"], ranges[f"{kind}_to"] = periods[0].label, periods[-1].label
    return ranges


def _qa_page(
    request: Request,
    action: Action,
    name: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    """A QA trainer's page (:func:`~recarchive.api.staff_pages.role_page`)."""
    return role_page(
        request,
        action,
        name,
        refusal_key="qa.refused.body",
        prefixes=SCRIPT_PREFIXES,
        context=context,
        status_code=status_code,
    )


@router.get("/player/qa", response_model=None)
def qa_home_page(request: Request) -> Response:
    """Sampling plans and a period's sample; the data comes from the API in the page."""
    zone = request.app.state.runtime.settings.tz
    return _qa_page(
        request, Action.QA_SAMPLE, "qa_home.html", last_finished_periods(utcnow(), zone)
    )


@router.get("/player/qa/calls/{recording_id}", response_model=None)
def qa_call_page(request: Request, recording_id: str) -> Response:
    """One call: the player with notes, the scorecard form and clip cutting."""
    try:
        parsed = uuid.UUID(recording_id)
    except ValueError:
        keys = {"title_key": "qa.notfound.title", "body_key": "qa.notfound.body"}
        return _qa_page(request, Action.QA_EVALUATE, "case_refused.html", keys, 404)
    context = {"recording_id": str(parsed)}
    return _qa_page(request, Action.QA_EVALUATE, "qa_call.html", context)


@router.get("/player/qa/library", response_model=None)
def qa_library_page(request: Request) -> Response:
    """The training library: clips, playing one, deleting one (confirmed)."""
    return _qa_page(request, Action.QA_LIBRARY, "qa_library.html")


@router.get("/player/qa/forms", response_model=None)
def qa_forms_page(request: Request) -> Response:
    """The scorecard forms and their versions, read only."""
    return _qa_page(request, Action.QA_FORM, "qa_forms.html")


@router.get("/player/qa/reports", response_model=None)
def qa_reports_page(request: Request) -> Response:
    """The QA reports: per agent a table of periods, the sections' averages, the CSVs."""
    zone = request.app.state.runtime.settings.tz
    return _qa_page(
        request, Action.QA_REPORT, "qa_reports.html", default_report_ranges(utcnow(), zone)
    )
