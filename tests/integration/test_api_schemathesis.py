"""A bounded schemathesis run against the API on SQLite, with data: no 500, documented statuses.

The OpenAPI document is read at import from an application that never opens
its catalogue or store (it only describes itself): schemathesis's lazy
``from_fixture`` loader does not work with pytest 9 (it sets ``node._nodeid``).
Every generated request then goes, through ``call_and_validate(app=...)``, to
the application of :func:`fuzzed`, which has users, a customer, recordings
with real audio and a hold. About half of the generated recording ids are
replaced by real ones so that metadata, audio (Range, formats, purposes) and
reason corrections are reached past the 404. Reproducible: Hypothesis is
derandomised and keeps no example database.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance

from recarchive.access.models import Role
from recarchive.api.app import create_app
from recarchive.config import load_settings
from recarchive.retention.holds import place_hold
from recarchive.runtime import Runtime
from tests.actors import staff
from tests.api_fixtures import (
    add_customer,
    add_recording,
    bearer,
    build_runtime,
    close_runtime,
    tokens,
)

#: Ids of the recordings in the fuzzed catalogue (fixed, so that a strategy can name them).
REAL_IDS = [uuid.UUID(int=n) for n in range(1, 4)]
#: Examples per operation and role: the whole file stays well under a minute and a half.
EXAMPLES = 25


def _describing_app() -> FastAPI:
    """An application to read ``/openapi.json`` from (its runtime is never opened)."""
    return create_app(Runtime(load_settings(env={})))


schema = schemathesis.openapi.from_asgi("/openapi.json", _describing_app())


@dataclasses.dataclass
class Fuzzed:
    runtime: Runtime
    app: FastAPI
    role_tokens: dict[Role, str]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    path = tmp_path_factory.mktemp("fuzz")
    runtime = build_runtime(f"sqlite:///{path / 'catalogue.db'}", path / "var")
    role_tokens = tokens(runtime)
    add_customer(runtime, "C-1", "Maija Meikäläinen", ["040 123 4567"], identity_code="131052-308T")
    start = dt.datetime(2025, 3, 10, 9, 0, tzinfo=dt.UTC)
    for index, rid in enumerate(REAL_IDS):
        add_recording(
            runtime, recording_id=rid, started_at=start + dt.timedelta(hours=index),
            customer_id="C-1", caller_number="040 123 4567", reasons=["billing"],
            agent="agent-1", queue="queue-1", channels=1 + index % 2,
        )  # fmt: skip
    place_hold(
        runtime, case_ref="D-1", reason="dispute", actor=staff("setup"), recording_ids=REAL_IDS[:1]
    )
    yield Fuzzed(runtime, create_app(runtime), role_tokens)
    close_runtime(runtime)


def _call(case: schemathesis.Case, real_id: uuid.UUID | None, app: FastAPI, token: str) -> None:
    if real_id is not None and "recording_id" in (case.path_parameters or {}):
        case.path_parameters["recording_id"] = str(real_id)
    case.call_and_validate(
        app=app, headers=bearer(token), checks=[not_a_server_error, status_code_conformance]
    )


SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, print_blob=False
)
REAL_ID = st.sampled_from([None, None, None, *REAL_IDS])


@schema.parametrize()
@schema.given(real_id=REAL_ID)
@SETTINGS
def test_as_dispute_handler(
    case: schemathesis.Case, real_id: uuid.UUID | None, fuzzed: Fuzzed
) -> None:
    _call(case, real_id, fuzzed.app, fuzzed.role_tokens[Role.DISPUTE_HANDLER])


@schema.parametrize()
@schema.given(real_id=REAL_ID)
@SETTINGS
def test_as_qa_trainer(case: schemathesis.Case, real_id: uuid.UUID | None, fuzzed: Fuzzed) -> None:
    _call(case, real_id, fuzzed.app, fuzzed.role_tokens[Role.QA_TRAINER])
