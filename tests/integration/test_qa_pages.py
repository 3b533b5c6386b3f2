"""The QA pages' routes, on SQLite and PostgreSQL: a QA trainer gets them in Finnish (the
default) and English, under the CSP; every other role the refusal, on record; the cookie
works the QA routes the pages change, from this site only.

The pages' behaviour in a browser is tests/browser/test_qa_pages.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from recarchive.access.models import AuditEvent, Role
from recarchive.api.app import create_app
from recarchive.api.i18n import LANGUAGE_COOKIE
from recarchive.api.player import CONTENT_SECURITY_POLICY
from recarchive.api.qa_pages import default_report_ranges, last_finished_periods
from recarchive.catalogue.database import utcnow
from recarchive.runtime import Runtime
from tests.api_fixtures import TestClient, build_runtime, close_runtime, tokens

BASE = "http://testserver"
SAME_SITE = {"Origin": BASE}
FOREIGN = {"Origin": "https://evil.example"}
OTHER_ROLES = tuple(role for role in Role if role is not Role.QA_TRAINER)
#: Each page: its path, its script, its heading in Finnish and in English.
PAGES = (
    ("/player/qa", "qa_home.js", "Laadunvarmistus", "Quality assurance"),
    (f"/player/qa/calls/{uuid.uuid4()}", "qa_call.js", "Puhelun arviointi", "Evaluate a call"),
    ("/player/qa/library", "qa_library.js", "Koulutuskirjasto", "Training library"),
    ("/player/qa/forms", "qa_forms.js", "Arviointilomakkeet", "Scorecard forms"),
    ("/player/qa/reports", "qa_reports.js", "Laaturaportit", "QA reports"),
)


@dataclasses.dataclass
class World:
    runtime: Runtime
    tokens: dict[Role, str]


@pytest.fixture(scope="module")
def world(catalogue_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    runtime = build_runtime(catalogue_url, tmp_path_factory.mktemp("qa-pages"))
    yield World(runtime, tokens(runtime, prefix=f"qp-{uuid.uuid4().hex[:6]}-"))
    close_runtime(runtime)


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.runtime), follow_redirects=False) as client:
        yield client


def sign_in(client: TestClient, token: str) -> None:
    response = client.post("/session", data={"token": token}, headers=SAME_SITE)
    assert response.status_code == 303, response.text


def refusals_of(world: World, role: Role) -> list[AuditEvent]:
    with world.runtime.sessions() as session:
        query = select(AuditEvent).where(
            AuditEvent.action == "access.refused", AuditEvent.actor_role == role.value
        )
        # Other modules' pages refuse the same roles in the same catalogue meanwhile.
        events = session.scalars(query.order_by(AuditEvent.seq))
        return [e for e in events if e.details["route"].startswith("/player/qa")]


def test_a_trainer_gets_every_page_in_finnish_then_english(
    world: World, client: TestClient
) -> None:
    sign_in(client, world.tokens[Role.QA_TRAINER])
    assert 'href="/player/qa"' in client.get("/player").text
    for path, script, finnish, _english in PAGES:
        page = client.get(path)
        assert page.status_code == 200, path
        assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert '<html lang="fi">' in page.text
        assert f">{finnish}</h1>" in page.text, path
        assert f'src="/static/{script}' in page.text
        assert 'href="/player/qa/library"' in page.text
        assert 'href="/player/qa/reports"' in page.text
        assert 'href="/player/cases"' not in page.text  # not the trainer's
    client.cookies.set(LANGUAGE_COOKIE, "en")
    for path, _script, _finnish, english in PAGES:
        page = client.get(path)
        assert '<html lang="en">' in page.text
        assert f">{english}</h1>" in page.text, path


def test_the_call_page_names_its_call_and_the_home_its_default_periods(
    world: World, client: TestClient
) -> None:
    sign_in(client, world.tokens[Role.QA_TRAINER])
    recording_id = uuid.uuid4()
    page = client.get(f"/player/qa/calls/{recording_id}")
    assert f'data-recording-id="{recording_id}"' in page.text
    assert 'src="/static/player_notes.js' in page.text
    assert '"qa.notes.none": ' in page.text  # the notes' words come with the page
    wrong = client.get("/player/qa/calls/%3Cscript%3E")
    assert wrong.status_code == 404
    assert "Puhelua ei löydy" in wrong.text
    assert "<script>" not in wrong.text
    periods = last_finished_periods(dt.datetime(2026, 1, 3, 12, tzinfo=dt.UTC), ZoneInfo("UTC"))
    assert periods == {"week": "2025-W52", "month": "2025-12"}
    home = client.get("/player/qa").text
    assert 'data-last-week="' in home
    assert 'data-last-month="' in home


def test_the_reports_page_offers_the_last_six_finished_periods_and_the_csvs(
    world: World, client: TestClient
) -> None:
    now, utc = dt.datetime(2026, 1, 3, 12, tzinfo=dt.UTC), ZoneInfo("UTC")
    assert default_report_ranges(now, utc) == {
        "week_from": "2025-W47",
        "week_to": "2025-W52",
        "month_from": "2025-07",
        "month_to": "2025-12",
    }
    sign_in(client, world.tokens[Role.QA_TRAINER])
    ranges = default_report_ranges(utcnow(), world.runtime.settings.tz)
    for language, texts in (
        ("fi", ("Ensimmäinen jakso", "Näytä raportti")),
        ("en", ("First period", "Show the report")),
    ):
        client.cookies.set(LANGUAGE_COOKIE, language)
        page = client.get("/player/qa/reports").text
        assert f'<html lang="{language}">' in page
        for text in texts:
            assert text in page
        assert f'data-week-from="{ranges["week_from"]}"' in page
        assert f'data-month-to="{ranges["month_to"]}"' in page
        assert f'id="report-from" name="from" value="{ranges["week_from"]}"' in page
        assert 'href="/api/v1/qa/reports.csv?table=sections"' in page
        assert '"qa.reports.trend.up": ' in page  # the script's words come with the page


@pytest.mark.parametrize("role", OTHER_ROLES, ids=str)
def test_other_roles_get_the_refusal_on_record_and_nothing_else(
    world: World, client: TestClient, role: Role
) -> None:
    sign_in(client, world.tokens[role])
    assert 'href="/player/qa"' not in client.get("/player").text
    before = len(refusals_of(world, role))
    for path, script, _finnish, _english in PAGES:
        page = client.get(path)
        assert page.status_code == 403, path
        assert "Roolisi ei salli tätä" in page.text
        assert "laatu- ja koulutusvastaaville" in page.text
        assert script not in page.text
        assert "data-recording-id" not in page.text
    refused = refusals_of(world, role)[before:]
    assert [r.details["route"] for r in refused] == [
        "/player/qa",
        "/player/qa/calls/{recording_id}",
        "/player/qa/library",
        "/player/qa/forms",
        "/player/qa/reports",
    ]


def test_a_page_without_a_session_goes_to_sign_in(client: TestClient) -> None:
    for path, _script, _finnish, _english in PAGES:
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == "/"


def test_the_cookie_works_the_qa_routes_from_this_site_only(
    world: World, client: TestClient
) -> None:
    sign_in(client, world.tokens[Role.QA_TRAINER])
    plan = {"name": f"cookie-{uuid.uuid4().hex[:6]}", "calls_per_agent": 1, "period_kind": "week"}
    for headers in (FOREIGN, {}):
        assert client.post("/api/v1/qa/plans", json=plan, headers=headers).status_code == 403
    created = client.post("/api/v1/qa/plans", json=plan, headers=SAME_SITE)
    assert created.status_code == 201, created.text
    draw = f"/api/v1/qa/plans/{created.json()['id']}/samples"
    assert client.post(draw, json={"period": "2026-W01"}, headers=FOREIGN).status_code == 403
    drawn = client.post(draw, json={"period": "2026-W01"}, headers=SAME_SITE)
    assert drawn.status_code == 200, drawn.text
    unknown = str(uuid.uuid4())
    evaluation = {"recording_id": unknown, "form_version_id": unknown, "answers": {}}
    clip = {"recording_id": unknown, "start_ms": 0, "end_ms": 1000, "title": "t", "purpose": "p"}
    writes = [
        ("POST", "/api/v1/qa/evaluations", evaluation),
        ("PUT", f"/api/v1/qa/evaluations/{unknown}", {"answers": {}}),
        ("POST", "/api/v1/qa/clips", clip),
        ("DELETE", f"/api/v1/qa/clips/{unknown}", None),
    ]
    for method, path, body in writes:
        forged = client.request(method, path, json=body, headers=FOREIGN)
        assert forged.status_code == 403, (method, path)
        ours = client.request(method, path, json=body, headers=SAME_SITE)
        assert ours.status_code == 404, (method, path, ours.text)  # past the cookie: unknown ids
    # Forms stay with the CLI and the API's tokens: the cookie does not write them.
    form = {"name": "x", "sections": [{"id": "s", "questions": []}]}
    assert client.post("/api/v1/qa/forms", json=form, headers=SAME_SITE).status_code == 401
