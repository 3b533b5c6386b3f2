"""One error shape for every API answer: ``{"error": {"code", "message", "field"?}}``.

Each recarchive error maps to one status. Messages come from the errors
themselves, which never carry personal data; a 401 or 403 is decided before
any lookup, so neither says whether a recording exists.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from recarchive.api import refusals
from recarchive.api.auth import Unauthenticated
from recarchive.api.refusals import RefusalAuditor
from recarchive.errors import RecArchiveError, RefusedError

logger = logging.getLogger(__name__)


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def _json(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse(error_body(code, message, **extra), status_code=status)


def _field_of(loc: Sequence[Any]) -> str:
    parts = [str(part) for part in loc if part not in ("query", "path", "body", "header")]
    return ".".join(parts) or "request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Unauthenticated)
    async def _unauthenticated(request: Request, exc: Unauthenticated) -> JSONResponse:
        auditor: RefusalAuditor = request.app.state.refusals
        await run_in_threadpool(auditor.refused, refusals.unauthenticated(request.scope, exc))
        response = _json(401, "unauthenticated", exc.message)
        response.headers["WWW-Authenticate"] = 'Bearer realm="recarchive"'
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        field = _field_of(first.get("loc", ()))
        if first.get("type") == "json_invalid" or field.isdigit():
            field = "body"
        message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        return _json(422, "invalid_request", f"{field}: {message}", field=field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # a body that cannot be parsed (not UTF-8, not a form)
            return _json(422, "invalid_request", f"body: {exc.detail}", field="body")
        codes = {404: "not_found", 405: "method_not_allowed", 414: "uri_too_long"}
        response = _json(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(RecArchiveError)
    async def _domain(request: Request, exc: RecArchiveError) -> JSONResponse:
        if isinstance(exc, RefusedError):
            auditor: RefusalAuditor = request.app.state.refusals
            principal = getattr(request.state, "principal", None)
            refusal = refusals.forbidden(request.scope, exc, principal)
            await run_in_threadpool(auditor.refused, refusal)
        return domain_response(exc)

    @app.exception_handler(OperationalError)
    async def _database(_request: Request, exc: OperationalError) -> JSONResponse:
        logger.error("catalogue_unavailable", extra={"error": type(exc.orig).__name__})
        return _json(503, "unavailable", "the catalogue database is unavailable")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return unexpected_response(request.scope, exc)


def log_unexpected(scope: Scope, exc: BaseException) -> str:
    """Log an unexpected failure of a request; return the error id the log line carries.

    The line names the error id, the exception class, the method and route
    template, and the frames (file, line, code). Never the exception's
    message, the query string or the body: a message can quote SQL
    parameters or the input (numbers, names, identity codes).
    """
    error_id = uuid.uuid4().hex[:16]
    route = getattr(scope.get("route"), "path", None) or "unmatched"
    logger.error(
        "request_failed",
        extra={
            "error_id": error_id,
            "type": type(exc).__name__,
            "method": scope.get("method"),
            "route": route,
            "trace": "".join(traceback.format_tb(exc.__traceback__)),
        },
    )
    return error_id


def unexpected_response(scope: Scope, exc: BaseException) -> JSONResponse:
    """The 500 answer to an unexpected failure, logged by :func:`log_unexpected`."""
    error_id = log_unexpected(scope, exc)
    message = f"the request failed; the server log has the details under error id {error_id}"
    return _json(500, "internal_error", message, error_id=error_id)


def domain_response(exc: RecArchiveError) -> JSONResponse:
    """The answer for a recarchive error raised by a service: its category decides.

    The status, the code and the extra fields come from the error's class
    (see :mod:`recarchive.errors`); a fault (500, or an error marked with a
    log event) is logged without personal data, and a 500 that belongs to no
    category answers with a generic message rather than the error's.
    """
    if exc.log_event is not None or exc.http_status >= 500:
        logger.error(
            exc.log_event or "request_failed",
            extra={"error": exc.message, "type": type(exc).__name__},
        )
    message = exc.message
    if exc.code == "internal_error":
        message = "the request failed; the server log has the details"
    response = _json(exc.http_status, exc.code, message, **exc.details())
    response.headers.update(exc.headers())
    return response
