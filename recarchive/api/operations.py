"""Holds, the audit log, who-am-I, health and metrics."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from recarchive.access.actors import Actor
from recarchive.access.audit_reads import PAGE_MAX, AuditQuery, read_audit
from recarchive.access.policy import PURPOSES, SEES_IDENTITY, Action
from recarchive.api.deps import ClientDep, PrincipalDep, RuntimeDep
from recarchive.api.schemas import (
    COMMON_ERRORS,
    AuditPageOut,
    ErrorOut,
    HealthOut,
    HoldIn,
    HoldListOut,
    HoldOut,
    HoldReleaseIn,
    MeOut,
)
from recarchive.errors import CatalogueReplaced, RecArchiveError
from recarchive.lookup.filters import FilterError, parse_time
from recarchive.retention.holds import list_holds, place_hold, release_hold
from recarchive.retention.models import Hold
from recarchive.runtime import Runtime

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["operations"])
health_router = APIRouter(tags=["health"])

_ERRORS = COMMON_ERRORS


def _hold_out(hold: Hold, recordings: int) -> HoldOut:
    return HoldOut(
        id=hold.id,
        case_ref=hold.case_ref,
        reason=hold.reason,
        customer_id=hold.customer_id,
        placed_by=hold.placed_by,
        placed_at=hold.placed_at,
        until=hold.until,
        released_at=hold.released_at,
        released_by=hold.released_by,
        case_id=hold.case_id,
        recordings=recordings,
    )


@router.get("/me", response_model=MeOut, responses=_ERRORS)
def who_am_i(principal: PrincipalDep) -> MeOut:
    """The caller's user name, role and the purposes the role may play recordings for."""
    return MeOut(
        user=principal.user_name,
        role=principal.role.value,
        purposes=sorted(p.value for p in PURPOSES[principal.role]),
        sees_identity=principal.role in SEES_IDENTITY,
    )


@router.get("/holds", response_model=HoldListOut, responses=_ERRORS, tags=["holds"])
def holds_list(
    runtime: RuntimeDep, principal: PrincipalDep, include_released: bool = False
) -> HoldListOut:
    """Open holds (and released ones if asked), newest first."""
    holds = list_holds(runtime, Actor.staff(principal), include_released=include_released)
    return HoldListOut(items=[_hold_out(hold, count) for hold, count in holds])


@router.post(
    "/holds",
    response_model=HoldOut,
    status_code=201,
    responses={**_ERRORS, 409: {"model": ErrorOut, "description": "The hold was refused."}},
    tags=["holds"],
)
def holds_place(
    body: HoldIn, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> HoldOut:
    """Place a hold on recordings or on every recording of a customer (audited)."""
    actor = Actor.staff(principal, client)
    actor.require(Action.HOLD_PLACE)  # before the body is looked at: a refusal says nothing
    if bool(body.recording_ids) == bool(body.customer_id):
        raise FilterError("recording_ids", "give recording_ids or customer_id (one of them)")
    until = parse_time("until", body.until, runtime.settings.tz)
    summary = place_hold(
        runtime,
        case_ref=body.case_ref,
        reason=body.reason,
        actor=actor,
        recording_ids=list(dict.fromkeys(body.recording_ids)),
        customer_id=body.customer_id,
        until=until,
    )
    return _hold_out(summary.hold, summary.recordings)


@router.post(
    "/holds/{hold_id}/release",
    response_model=HoldOut,
    responses={
        **_ERRORS,
        404: {"model": ErrorOut, "description": "No such hold."},
        409: {"model": ErrorOut, "description": "Already released."},
    },
    tags=["holds"],
)
def holds_release(
    hold_id: uuid.UUID,
    body: HoldReleaseIn,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    client: ClientDep,
) -> HoldOut:
    """Release a hold (audited); recordings past retention go at the next expiry run."""
    summary = release_hold(
        runtime, hold_id, actor=Actor.staff(principal, client), reason=body.reason
    )
    return _hold_out(summary.hold, summary.recordings)


@router.get("/audit", response_model=AuditPageOut, responses=_ERRORS, tags=["audit"])
def audit_entries(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    client: ClientDep,
    from_: Annotated[str | None, Query(alias="from", max_length=64)] = None,
    to: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=128)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    recording_id: uuid.UUID | None = None,
    cursor: Annotated[int | None, Query(ge=0, le=2**62, description="Last seq seen.")] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 100,
) -> AuditPageOut:
    """Audit entries in order, with their hashes (auditors only; the query is itself audited)."""
    reader = Actor.staff(principal, client)
    reader.require(Action.AUDIT_READ)  # before the parameters are looked at
    tz = runtime.settings.tz
    query = AuditQuery(
        start=parse_time("from", from_, tz),
        end=parse_time("to", to, tz),
        actor=actor,
        action=action,
        recording_id=recording_id,
    )
    page = read_audit(runtime, reader, query, cursor=cursor, limit=limit)
    next_cursor = str(page.next_cursor) if page.next_cursor is not None else None
    return AuditPageOut.model_validate({"items": page.items, "next_cursor": next_cursor})


@health_router.get(
    "/healthz",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "A check failed; its field says which."}},
)
def healthz(request: Request) -> Any:
    """Readiness: the catalogue is the one this process opened and takes a write (a
    heartbeat is committed), the audit log can commit, and the store is reachable.

    Each field is ``ok``, ``replaced`` (the catalogue opened is gone or another took
    its place: restart the process) or ``unavailable``; the reason is in the log.
    """
    runtime: Runtime = request.app.state.runtime  # not RuntimeDep: it would refuse first
    checks: dict[str, Callable[[], None]] = {
        "catalogue": lambda: runtime.catalogue_guard.check_writable(),
        "audit": lambda: runtime.audit.check_ready(),
        "store": lambda: runtime.store.check(),
    }
    body: dict[str, str] = {}
    for name, check in checks.items():
        try:
            check()
        except CatalogueReplaced as exc:
            body[name] = "replaced"
            logger.error("healthz_failed", extra={"check": name, "error": exc.message})
        except RecArchiveError as exc:
            body[name] = "unavailable"
            logger.error("healthz_failed", extra={"check": name, "error": exc.message})
        else:
            body[name] = "ok"
    ok = all(value == "ok" for value in body.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", **body}, 200 if ok else 503)


@health_router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text format: request counts and latencies, catalogue gauges."""
    body, content_type = request.app.state.metrics.render()
    return PlainTextResponse(body, media_type=content_type)
