"""The recarchive HTTP service: the lookup API under ``/api/v1`` and the web player.

``create_app(runtime)`` builds the FastAPI application around one
:class:`~recarchive.runtime.Runtime`. Every request is timed and counted by
route template; the access log names the route template, status and time,
never the query string (it can hold a phone number or an identity code).
"""

from __future__ import annotations

import functools
import gc
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Depends, FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recarchive import __version__
from recarchive.api.auth import TokenCache
from recarchive.api.case_pages import router as case_pages_router
from recarchive.api.cases import router as cases_router
from recarchive.api.docs import router as docs_router
from recarchive.api.errors import (
    domain_response,
    error_body,
    install_error_handlers,
    log_unexpected,
    unexpected_response,
)
from recarchive.api.metrics import ApiMetrics
from recarchive.api.operations import health_router
from recarchive.api.operations import router as operations_router
from recarchive.api.origin import check_origin
from recarchive.api.player import router as player_router
from recarchive.api.proxies import ForwardedClient, TrustedProxies
from recarchive.api.qa import router as qa_router
from recarchive.api.qa_agent_pages import router as qa_agent_pages_router
from recarchive.api.qa_agents import router as qa_agents_router
from recarchive.api.qa_clips import router as qa_clips_router
from recarchive.api.qa_notes import router as qa_notes_router
from recarchive.api.qa_pages import router as qa_pages_router
from recarchive.api.qa_reports import router as qa_reports_router
from recarchive.api.qa_scores import router as qa_scores_router
from recarchive.api.recordings import router as recordings_router
from recarchive.api.refusals import RefusalAuditor, RefusalLimiter
from recarchive.api.single_sign_on import router as single_sign_on_router
from recarchive.api.subjects import router as subjects_router
from recarchive.api.users import router as users_router
from recarchive.catalogue.revision import require_current_schema
from recarchive.composition import compose
from recarchive.errors import RecArchiveError
from recarchive.runtime import Runtime

logger = logging.getLogger("recarchive.api.access")

_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class _Guard:
    """Refuses oversized query strings (414); times, counts and logs every request.

    Any exception a request raises ends here: it is answered with a 500 (or,
    once the answer has begun, only logged) and not re-raised, so the server
    (uvicorn) never logs it with its message.
    """

    def __init__(self, app: ASGIApp, metrics: ApiMetrics, max_query_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_query_bytes = max_query_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        headers_at: float | None = None

        async def send_wrapper(message: Message) -> None:
            nonlocal status, headers_at
            if message["type"] == "http.response.start":
                status = message["status"]
                headers_at = time.perf_counter()
                headers = list(message.get("headers", []))
                present = {name for name, _ in headers}
                headers += [(n, v) for n, v in _SECURITY_HEADERS if n not in present]
                message = {**message, "headers": headers}
            await send(message)

        try:
            bad_field = _control_characters(scope.get("query_string", b""))
            if (
                bad_field is not None
                and len(scope.get("query_string", b"")) <= self.max_query_bytes
            ):
                message = f"{bad_field}: control characters are not allowed"
                body = error_body("invalid_request", message, field=bad_field)
                await _send_json(send_wrapper, 422, body)
                return
            if len(scope.get("query_string", b"")) > self.max_query_bytes:
                await _send_json(
                    send_wrapper,
                    414,
                    error_body(
                        "uri_too_long",
                        f"query string longer than {self.max_query_bytes} bytes",
                    ),
                )
                return
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:  # answered here: uvicorn would log its message and the input
            if headers_at is None:
                await unexpected_response(scope, exc)(scope, receive, send_wrapper)
            elif (cut := _cut_on_purpose(exc)) is not None:
                # The answer has begun and a service cut it on purpose (a stream that failed
                # its integrity check): its event, and the server closes the connection.
                logger.error(
                    cut.log_event, extra={"error": cut.message, "type": type(cut).__name__}
                )
            else:  # the answer has begun: log, and let the server close the connection
                log_unexpected(scope, exc)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            elapsed = (headers_at or time.perf_counter()) - started
            self.metrics.observe(scope["method"], template, status, elapsed)
            logger.info(
                "http_request",
                extra={
                    "method": scope["method"],
                    "route": template,
                    "status": status,
                    "ms": round(elapsed * 1000, 1),
                },
            )


def _cut_on_purpose(exc: BaseException) -> RecArchiveError | None:
    """The recarchive error with a log event that ended an answer already begun, if it was one.

    Starlette re-raises an error that has a handler, once the answer has
    begun, as a ``RuntimeError`` caused by it.
    """
    for error in (exc, exc.__cause__):
        if isinstance(error, RecArchiveError) and error.log_event is not None:
            return error
    return None


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _control_characters(query: bytes) -> str | None:
    """The first query parameter holding a control character (NUL, newline...), if any.

    No parameter of the API is free text that could need one, and PostgreSQL
    refuses NUL in text: refusing them here answers 422 instead of a 500.
    """
    if not query:
        return None
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if _CONTROL.search(name) or _CONTROL.search(value):
            return name if not _CONTROL.search(name) else "query"
    return None


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def create_app_from_environment() -> FastAPI:
    """The application of one ``recarchive serve --workers N`` process (settings from
    ``RECARCHIVE_CONFIG`` and ``RECARCHIVE_*``, as the command saw them)."""
    from recarchive.config import load_settings
    from recarchive.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.general.log_level, settings.general.log_format)
    runtime = Runtime(settings)
    app = create_app(runtime, pending_check=functools.partial(startup_check, runtime))
    settle_heap()
    return app


def startup_check(runtime: Runtime) -> None:
    """The schema is the one this recarchive needs; record which catalogue this process serves."""
    require_current_schema(runtime.engine)
    runtime.check_catalogue()


def settle_heap() -> None:
    """Move everything built so far out of the garbage collector's sight (``gc.freeze``).

    The application, its routes, models and libraries live as long as the
    process; a full collection walked them all again and, under load, stopped
    every request thread for 80-250 ms. For the serving process only: tests
    build many applications and must be able to free them.
    """
    gc.collect()
    gc.freeze()


class _Ready:
    """Until the start-up check has passed once, each request runs it first; 503 while it fails.

    For a server started while the catalogue was down (``serve`` does not
    wait to listen): it answers, with 503 and ``Retry-After``, and serves as
    soon as the catalogue is back and its schema is the one this recarchive
    needs.
    """

    def __init__(self, app: ASGIApp, check: Callable[[], None]) -> None:
        self.app = app
        self.check: Callable[[], None] | None = check

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        check = self.check
        # Only the API needs the catalogue: the player's pages, the OpenAPI
        # document and /healthz (which reports the outage itself) answer as usual.
        if check is not None and scope["type"] == "http" and scope["path"].startswith("/api/"):
            try:
                await run_in_threadpool(check)
            except RecArchiveError as exc:
                await domain_response(exc)(scope, receive, send)
                return
            self.check = None
        await self.app(scope, receive, send)


def create_app(runtime: Runtime, *, pending_check: Callable[[], None] | None = None) -> FastAPI:
    """The application serving ``runtime``'s catalogue and store.

    ``pending_check``: the start-up check that could not pass yet (see
    :class:`_Ready`). Composes the process (:func:`~recarchive.composition.compose`).
    """
    compose()
    api = runtime.settings.api
    app = FastAPI(
        title="recarchive",
        version=__version__,
        summary="Call-recording archive: lookup, playback for a stated purpose, holds, audit.",
        openapi_url="/openapi.json",
        docs_url=None,  # served by recarchive.api.docs from installed files, not a CDN
        redoc_url=None,
        # Before any route's own dependencies: posts that carry the session cookie,
        # and every sign-in and sign-out, must come from this site.
        dependencies=[Depends(check_origin)],
    )
    app.state.runtime = runtime
    app.state.token_cache = TokenCache(api.token_cache_s)
    app.state.metrics = ApiMetrics(runtime)
    app.state.refusals = RefusalAuditor(runtime, RefusalLimiter(api.refusal_audit_per_minute))
    runtime.oidc  # noqa: B018 - a missing client secret stops the server here, not at a sign-in
    install_error_handlers(app)
    app.include_router(recordings_router)
    app.include_router(operations_router)
    app.include_router(subjects_router)
    app.include_router(cases_router)
    app.include_router(qa_router)
    app.include_router(qa_notes_router)
    app.include_router(qa_clips_router)
    app.include_router(qa_scores_router)
    app.include_router(qa_reports_router)
    app.include_router(qa_agents_router)
    app.include_router(users_router)
    app.include_router(health_router)
    app.include_router(player_router)
    app.include_router(case_pages_router)
    app.include_router(qa_pages_router)
    app.include_router(qa_agent_pages_router)
    app.include_router(single_sign_on_router)
    app.include_router(docs_router)
    if pending_check is not None:
        app.add_middleware(_Ready, check=pending_check)  # inside the others: logged and counted
    # Outermost last: the guard sees every request, after the client address is settled.
    app.add_middleware(ForwardedClient, proxies=TrustedProxies(api.trusted_proxies))
    app.add_middleware(_Guard, metrics=app.state.metrics, max_query_bytes=api.max_query_bytes)
    return app
