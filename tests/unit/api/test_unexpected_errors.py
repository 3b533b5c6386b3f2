"""An unexpected failure answers 500 with an error id and logs no message, query or body.

The exception is not re-raised: uvicorn would log it ("Exception in ASGI
application") with its message, which can quote SQL parameters or the input.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from starlette.exceptions import StarletteDeprecationWarning

from recarchive.api.app import create_app
from recarchive.config import load_settings
from recarchive.logs import JsonFormatter
from recarchive.runtime import Runtime

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

SECRET = "Maija Meikäläinen +358401234567"


def _boom() -> None:
    raise RuntimeError(f"INSERT failed with parameters ({SECRET!r})")


def _broken_stream() -> StreamingResponse:
    def chunks() -> Iterator[bytes]:
        yield b"first part"
        raise RuntimeError(SECRET)

    return StreamingResponse(chunks(), media_type="text/plain")


@pytest.fixture
def app() -> FastAPI:
    app = create_app(Runtime(load_settings(env={})))  # never opens its catalogue
    app.add_api_route("/boom/{item}", _boom, methods=["POST"])
    app.add_api_route("/stream", _broken_stream)
    return app


def test_a_failure_answers_500_with_an_error_id_and_logs_no_message(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="recarchive"),
        TestClient(app, raise_server_exceptions=True) as client,  # nothing is re-raised
    ):
        response = client.post("/boom/1?number=0401234567", json={"name": SECRET})
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "internal_error"
    assert error["error_id"] in error["message"]
    [record] = [r for r in caplog.records if r.getMessage() == "request_failed"]
    assert (record.error_id, record.type, record.route, record.method) == (  # type: ignore[attr-defined]
        error["error_id"], "RuntimeError", "/boom/{item}", "POST",
    )  # fmt: skip
    logged = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    for value in ("0401234567", "Meik", "+358"):
        assert value not in logged
    assert "parameters ('" not in logged  # the frames show the code, not the message


def test_a_failure_after_the_answer_began_is_logged_not_raised(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="recarchive"),
        TestClient(app, raise_server_exceptions=True) as client,
    ):
        response = client.get("/stream")
    assert response.status_code == 200
    [record] = [r for r in caplog.records if r.getMessage() == "request_failed"]
    assert record.route == "/stream"  # type: ignore[attr-defined]
    assert SECRET not in json.dumps(record.__dict__, default=str)
