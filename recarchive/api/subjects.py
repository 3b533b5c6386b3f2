"""``/api/v1/subjects``: data-subject rights for privacy officers.

Subjects are named in request bodies (never in URLs, which end up in proxy
logs): exactly one of ``customer_id``, ``number``, ``identity_code``.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from recarchive.access.policy import Action, require
from recarchive.api.deps import ClientDep, PrincipalDep, RuntimeDep
from recarchive.api.schemas import COMMON_ERRORS, ErrorOut, RequestBody
from recarchive.privacy.erasure import erase_subject
from recarchive.privacy.export import export_subject
from recarchive.privacy.models import RequestKind, RequestStatus
from recarchive.privacy.restrictions import (
    lift_restriction,
    list_restrictions,
    object_to_training,
    relink_recording,
    restrict,
)
from recarchive.privacy.shared import SharedDecisions
from recarchive.privacy.subjects import (
    SubjectQuery,
    list_requests,
    request_dict,
    restriction_dict,
    show_subject,
)
from recarchive.private_files import make_private_dir

router = APIRouter(prefix="/api/v1", tags=["data subjects"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    **COMMON_ERRORS,
    403: {"model": ErrorOut, "description": "Only privacy officers handle subject requests."},
    404: {"model": ErrorOut, "description": "The archive holds nothing about the subject."},
    409: {"model": ErrorOut, "description": "Several customers match: name the exact one."},
}


class SubjectIn(RequestBody):
    customer_id: str | None = Field(default=None, min_length=1, max_length=64)
    number: str | None = Field(default=None, min_length=1, max_length=64)
    identity_code: str | None = Field(default=None, min_length=1, max_length=64)

    def query(self) -> SubjectQuery:
        return SubjectQuery(self.customer_id, self.number, self.identity_code)


class SharedIn(SubjectIn):
    """A request that may take calls from a number the customer shares with others."""

    #: Calls from a shared number (``shared_calls`` of the subject's overview) to take.
    include_shared: list[uuid.UUID] = Field(default_factory=list, max_length=10000)
    #: Calls from a shared number to leave out (decided: not this subject's).
    leave_out_shared: list[uuid.UUID] = Field(default_factory=list, max_length=10000)

    def decisions(self) -> SharedDecisions:
        return SharedDecisions(frozenset(self.include_shared), frozenset(self.leave_out_shared))


class EraseIn(SharedIn):
    note: str | None = Field(default=None, max_length=2000)


class ScopeIn(RequestBody):
    """A subject (customer-wide, future calls included) or named recordings."""

    subject: SubjectIn | None = None
    recording_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1000)
    note: str | None = Field(default=None, max_length=2000)

    def query(self) -> SubjectQuery | None:
        return self.subject.query() if self.subject else None


class RestrictIn(ScopeIn):
    purpose: Literal["dispute", "data_subject_request", "training"]
    case_ref: str | None = Field(default=None, max_length=128)


class LiftIn(RequestBody):
    reason: str = Field(min_length=1, max_length=2000)


class RelinkIn(RequestBody):
    customer_id: str | None = Field(max_length=64, description="null: linked to nobody.")
    reason: str = Field(min_length=1, max_length=2000)


class ErasureOut(BaseModel):
    request_id: uuid.UUID
    status: str
    message: str
    erased: list[uuid.UUID]
    waiting: dict[str, list[dict[str, str]]]
    failed: dict[str, str]
    #: Calls from a shared number: ``shared_included``, ``shared_left_out``, ``shared_undecided``.
    shared: dict[str, list[str]] = {}


class RestrictionOut(BaseModel):
    request_id: uuid.UUID | None
    restrictions: list[dict[str, Any]]


@router.post("/subjects/find", responses=_ERRORS)
def subject_find(
    body: SubjectIn, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> dict[str, Any]:
    """What the archive holds about the subject: recordings, holds, restrictions, requests."""
    require(principal.role, Action.SUBJECT)
    return show_subject(runtime, principal, body.query(), client_addr=client).as_dict()


@router.post(
    "/subjects/export",
    responses={**_ERRORS, 200: {"content": {"application/zip": {}}}},
    response_class=FileResponse,
)
def subject_export(
    body: SharedIn, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> FileResponse:
    """A zip of every recording of the subject, the manifest, checksums and summaries."""
    require(principal.role, Action.SUBJECT)
    work = runtime.settings.work_dir
    make_private_dir(work)
    fd, name = tempfile.mkstemp(prefix="subject-export-", suffix=".zip", dir=work)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as stream:
            report = export_subject(
                runtime,
                principal,
                body.query(),
                stream,
                client_addr=client,
                shared=body.decisions(),
            )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return FileResponse(
        path,
        media_type="application/zip",
        filename=f"subject-export-{report.request_id}.zip",
        headers={"Cache-Control": "private, no-store"},
        background=BackgroundTask(path.unlink, missing_ok=True),
    )


@router.post("/subjects/erase", response_model=ErasureOut, responses=_ERRORS)
def subject_erase(
    body: EraseIn, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> ErasureOut:
    """Erase every recording of the subject now; held ones wait and the answer says why."""
    require(principal.role, Action.SUBJECT)
    report = erase_subject(
        runtime,
        principal,
        body.query(),
        note=body.note,
        client_addr=client,
        shared=body.decisions(),
    )
    return ErasureOut(
        request_id=report.request_id,
        status=report.status.value,
        message=report.explain(),
        erased=sorted(report.erased),
        waiting={str(k): v for k, v in sorted(report.waiting.items())},
        failed={str(k): v for k, v in sorted(report.failed.items())},
        shared=report.shared,
    )


@router.post("/subjects/restrict", response_model=RestrictionOut, responses=_ERRORS)
def subject_restrict(
    body: RestrictIn, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> RestrictionOut:
    """Serve the recordings to nobody except for ``purpose`` (and ``case_ref``) until lifted."""
    require(principal.role, Action.SUBJECT)
    request, rows = restrict(
        runtime,
        principal,
        query=body.query(),
        recording_ids=body.recording_ids,
        allowed_purpose=body.purpose,
        case_ref=body.case_ref,
        note=body.note,
        client_addr=client,
    )
    return RestrictionOut(
        request_id=request.id if request else None,
        restrictions=[restriction_dict(r) for r in rows],
    )


@router.post("/subjects/object", response_model=RestrictionOut, responses=_ERRORS)
def subject_object(
    body: ScopeIn, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> RestrictionOut:
    """Exclude the recordings from training use at once (and a customer's later calls)."""
    require(principal.role, Action.SUBJECT)
    request, rows = object_to_training(
        runtime,
        principal,
        query=body.query(),
        recording_ids=body.recording_ids,
        note=body.note,
        client_addr=client,
    )
    return RestrictionOut(
        request_id=request.id if request else None,
        restrictions=[restriction_dict(r) for r in rows],
    )


@router.get("/restrictions", responses=_ERRORS)
def restrictions(
    runtime: RuntimeDep, principal: PrincipalDep, include_lifted: bool = False
) -> dict[str, Any]:
    """Restrictions and objections in force (and lifted ones if asked)."""
    require(principal.role, Action.SUBJECT)
    return {"items": list_restrictions(runtime, include_lifted=include_lifted)}


@router.post("/restrictions/{restriction_id}/lift", responses=_ERRORS)
def restriction_lift(
    restriction_id: uuid.UUID,
    body: LiftIn,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    client: ClientDep,
) -> dict[str, Any]:
    """Lift a restriction or objection (audited with the reason)."""
    require(principal.role, Action.SUBJECT)
    row = lift_restriction(
        runtime, principal, restriction_id, reason=body.reason, client_addr=client
    )
    return restriction_dict(row)


@router.post("/recordings/{recording_id}/customer", responses=_ERRORS, tags=["recordings"])
def recording_relink(
    recording_id: uuid.UUID,
    body: RelinkIn,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    client: ClientDep,
) -> dict[str, Any]:
    """Rectify the customer a recording is linked to; the old link stays in the audit log."""
    require(principal.role, Action.SUBJECT)
    change = relink_recording(
        runtime,
        principal,
        recording_id,
        customer_id=body.customer_id,
        reason=body.reason,
        client_addr=client,
    )
    return {
        "id": str(recording_id),
        "before": change.before,
        "after": change.after,
        "candidates_before": list(change.candidates),
        "changed": change.changed,
    }


@router.get("/subject-requests", responses=_ERRORS)
def subject_requests(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    kind: Literal["access", "rectification", "erasure", "restriction", "objection"] | None = None,
    status: Literal["received", "pending", "completed", "rejected"] | None = None,
) -> dict[str, Any]:
    """Every registered data-subject request, newest first."""
    require(principal.role, Action.SUBJECT)
    requests = list_requests(
        runtime,
        kind=RequestKind(kind) if kind else None,
        status=RequestStatus(status) if status else None,
    )
    return {"items": [request_dict(r) for r in requests]}
