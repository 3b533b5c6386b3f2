"""A call recorded in several parts (a transfer) through the lookup API, on both catalogues.

The parts share ``linked_call_id``. A recording's metadata lists the call's
other parts the caller may see; a search finds the call once (its earliest
matching part) and pages over calls exactly; ``parts=all`` lists every part.
A part hidden from QA trainers (restricted) is neither listed nor counted for them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from recarchive.access.models import Role
from recarchive.catalogue.database import transaction
from recarchive.catalogue.models import Recording
from recarchive.catalogue.restrictions import ProcessingRestriction, RestrictionKind
from recarchive.runtime import Runtime
from tests.api_fixtures import (
    ApiClient,
    add_recording,
    build_runtime,
    close_runtime,
    tokens,
)

Q, D = Role.QA_TRAINER, Role.DISPUTE_HANDLER
RECORDINGS = "/api/v1/recordings"
#: The transfers live in January 2023; the paging calls in February 2023.
T0 = dt.datetime(2023, 1, 10, 9, 0, tzinfo=dt.UTC)
WINDOW = {"from": "2023-01-01", "to": "2023-02-01"}
PAGING = dt.datetime(2023, 2, 1, 8, 0, tzinfo=dt.UTC)


@dataclasses.dataclass
class World:
    runtime: Runtime
    api: ApiClient
    rec: dict[str, Recording]
    #: The paging calls: each call's parts, earliest first.
    calls: list[list[Recording]]


def _at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def _paging_calls(runtime: Runtime) -> list[list[Recording]]:
    """Twelve calls interleaved in time, some at the same second: every fourth is one
    recording with no link, the others one to three parts sharing a linked call id."""
    chooser = random.Random(20)
    calls: list[list[Recording]] = []
    for number in range(12):
        linked = f"1675238400.{number}" if number % 4 else None
        parts = [
            add_recording(
                runtime,
                started_at=PAGING + dt.timedelta(minutes=chooser.choice([0, 5, 5, 9]) + part * 7),
                queue="linked-paging-q",
                seconds=1,
                linked_call_id=linked,
            )
            for part in range(chooser.randint(1, 3) if linked else 1)
        ]
        calls.append(sorted(parts, key=lambda r: (r.started_at, r.id)))
    return calls


@pytest.fixture(scope="module")
def world(catalogue_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    runtime = build_runtime(catalogue_url, tmp_path_factory.mktemp("linked-world"))
    api = ApiClient(runtime, tokens(runtime))
    call, other = "1673341200.101", "1673344800.202"
    rec = {
        # One call transferred twice: answered in billing, then technical, then billing.
        "first": add_recording(runtime, started_at=_at(0), seconds=2, agent="agent-anna",
                               queue="billing-q", reasons=["billing"], linked_call_id=call),
        "second": add_recording(runtime, started_at=_at(4), seconds=3, agent="agent-bert",
                                queue="fault-q", reasons=["billing", "outage"],
                                linked_call_id=call),
        "third": add_recording(runtime, started_at=_at(9), seconds=1, agent="agent-anna",
                               queue="billing-q", reasons=["billing"], linked_call_id=call),
        # Another call whose first part is restricted (hidden from QA trainers).
        "hidden": add_recording(runtime, started_at=_at(60), seconds=2, agent="agent-cecilia",
                                reasons=["moving"], customer_id="C-9", linked_call_id=other),
        "shown": add_recording(runtime, started_at=_at(65), seconds=2, agent="agent-cecilia",
                               reasons=["moving"], linked_call_id=other),
        # A call in one recording, no link logged.
        "alone": add_recording(runtime, started_at=_at(120), seconds=2, reasons=["billing"]),
    }  # fmt: skip
    with transaction(runtime.sessions) as session:
        session.add(
            ProcessingRestriction(
                created_by="privacy-officer",
                kind=RestrictionKind.RESTRICTION,
                recording_id=rec["hidden"].id,
                allowed_purpose="dispute",
            )
        )
    yield World(runtime, api, rec, _paging_calls(runtime))
    api.close()
    close_runtime(runtime)


def _ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def _part_ids(item: dict[str, Any]) -> list[str]:
    return [part["id"] for part in item["parts"]]


def test_metadata_lists_the_other_parts_of_the_call(world: World) -> None:
    rec = world.rec
    body = world.api.as_role(D).get(f"{RECORDINGS}/{rec['second'].id}").json()
    assert body["linked_call_id"] == "1673341200.101"
    assert _part_ids(body) == [str(rec["first"].id), str(rec["third"].id)]
    assert body["parts"][0] == {
        "id": str(rec["first"].id),
        "started_at": "2023-01-10T09:00:00Z",
        "duration_s": 2.0,
        "agent": "agent-anna",
        "queue": "billing-q",
    }
    alone = world.api.as_role(D).get(f"{RECORDINGS}/{rec['alone'].id}").json()
    assert (alone["linked_call_id"], alone["parts"]) == (None, [])


def test_a_restricted_part_is_not_listed_for_a_trainer(world: World) -> None:
    rec = world.rec
    dispute = world.api.as_role(D).get(f"{RECORDINGS}/{rec['shown'].id}").json()
    assert _part_ids(dispute) == [str(rec["hidden"].id)]
    response = world.api.as_role(Q).get(f"{RECORDINGS}/{rec['shown'].id}")
    assert response.status_code == 200
    assert response.json()["parts"] == []
    assert str(rec["hidden"].id) not in response.text


def test_a_search_finds_a_call_once_by_its_earliest_matching_part(world: World) -> None:
    rec = world.rec
    dispute = world.api.as_role(D)
    query = {**WINDOW, "reason": "billing", "order": "oldest"}
    found = dispute.get(RECORDINGS, params=query)
    assert _ids(found) == [str(rec["first"].id), str(rec["alone"].id)]
    assert _part_ids(found.json()["items"][0]) == [str(rec["second"].id), str(rec["third"].id)]
    posted = dispute.post(f"{RECORDINGS}/search", json={**query, "reason": ["billing"]})
    assert _ids(posted) == _ids(found)
    # The earliest part that matches stands for the call, whichever part it is.
    outage = dispute.get(RECORDINGS, params={**WINDOW, "reason": "outage"})
    assert _ids(outage) == [str(rec["second"].id)]
    every = dispute.get(RECORDINGS, params={**query, "parts": "all"})
    assert _ids(every) == [str(rec[k].id) for k in ("first", "second", "third", "alone")]
    assert dispute.get(RECORDINGS, params={**query, "parts": "some"}).status_code == 422


def test_a_trainer_finds_the_call_by_the_part_they_may_see(world: World) -> None:
    rec = world.rec
    query = {**WINDOW, "agent": "agent-cecilia"}
    assert _ids(world.api.as_role(D).get(RECORDINGS, params=query)) == [str(rec["hidden"].id)]
    trainer = world.api.as_role(Q).get(RECORDINGS, params=query)
    assert _ids(trainer) == [str(rec["shown"].id)]
    assert trainer.json()["items"][0]["parts"] == []
    assert str(rec["hidden"].id) not in trainer.text


@pytest.mark.parametrize("order", ["oldest", "newest"])
@pytest.mark.parametrize("limit", [1, 2, 5])
def test_pages_over_linked_calls_are_exact(world: World, order: str, limit: int) -> None:
    firsts = sorted(
        (call[0] for call in world.calls),
        key=lambda r: (r.started_at, r.id),
        reverse=order == "newest",
    )
    assert len(firsts) < sum(len(call) for call in world.calls)  # some calls have parts
    dispute = world.api.as_role(D)
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(30):
        query: dict[str, Any] = {"queue": "linked-paging-q", "limit": limit, "order": order}
        if cursor:
            query["cursor"] = cursor
        response = dispute.get(RECORDINGS, params=query)
        seen += _ids(response)
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [str(r.id) for r in firsts]
