"""``/api/v1/cases``: dispute cases for dispute handlers and privacy officers.

Cases are addressed by id. Every route checks the role before it reads the
body or the case (a refusal says nothing about either) and answers with the
case as it stands; the change itself is the audit entry of that answer,
opening a case is audited as ``case.view``, its custody as ``case.custody``.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, JSONResponse
from starlette.background import BackgroundTask

from recarchive.access.actors import Actor
from recarchive.access.policy import Action
from recarchive.api.cases_schemas import (
    CaseCloseIn,
    CaseDetailOut,
    CaseIn,
    CaseLinkIn,
    CaseListOut,
    CaseNoteIn,
    CustodyOut,
)
from recarchive.api.deps import ClientDep, PrincipalDep, RuntimeDep
from recarchive.api.recordings import search_filters
from recarchive.api.schemas import COMMON_ERRORS, ErrorOut
from recarchive.disputes.case_export import export_case
from recarchive.disputes.cases import (
    CaseInputError,
    add_note,
    close_case,
    list_cases,
    open_case,
    show_case,
)
from recarchive.disputes.keeping import custody
from recarchive.disputes.linking import link_recordings, link_search, unlink_recording
from recarchive.disputes.views import CaseDetail
from recarchive.private_files import make_private_dir

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])

_ERRORS = COMMON_ERRORS
_ONE: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    404: {"model": ErrorOut, "description": "No such case."},
}
_CHANGE: dict[int | str, dict[str, Any]] = {
    **_ONE,
    409: {"model": ErrorOut, "description": "The case is closed, or a recording is refused."},
}


def _out(detail: CaseDetail) -> JSONResponse:
    return JSONResponse(detail.as_dict())


def _actor(principal: Any, client: str | None, action: Action) -> Actor:
    actor = Actor.staff(principal, client)
    actor.require(action)  # before the body or the case is looked at: a refusal says nothing
    return actor


@router.get("", response_model=CaseListOut, responses=_ERRORS, summary="List cases")
def cases_list(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    client: ClientDep,
    status: Literal["open", "closed", "all"] = Query(default="open"),
) -> JSONResponse:
    """Cases, newest first: the open ones unless ``status`` says otherwise."""
    actor = _actor(principal, client, Action.CASE_VIEW)
    found = list_cases(runtime, actor=actor, status=status)
    return JSONResponse({"cases": [summary.as_dict() for summary in found]})


@router.post(
    "",
    response_model=CaseDetailOut,
    status_code=201,
    responses={**_ERRORS, 409: {"model": ErrorOut, "description": "The reference is taken."}},
    summary="Open a case",
)
def cases_open(
    body: CaseIn, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> JSONResponse:
    """Open a dispute case (audited ``case.open``); its recordings are linked afterwards."""
    actor = _actor(principal, client, Action.CASE_MANAGE)
    detail = open_case(
        runtime,
        reference=body.reference,
        kind=body.kind,
        actor=actor,
        customer_id=body.customer_id,
        document_ref=body.document_ref,
        handler=body.handler,
    )
    return JSONResponse(detail.as_dict(), status_code=201)


@router.get("/{case_id}", response_model=CaseDetailOut, responses=_ONE, summary="Open a case")
def cases_show(
    case_id: uuid.UUID, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> JSONResponse:
    """The whole case: recordings, hold, notes, exports (audited ``case.view``)."""
    actor = _actor(principal, client, Action.CASE_VIEW)
    return _out(show_case(runtime, case_id, actor=actor))


@router.post(
    "/{case_id}/recordings",
    response_model=CaseDetailOut,
    responses=_CHANGE,
    summary="Link recordings",
)
def cases_link(
    case_id: uuid.UUID,
    body: CaseLinkIn,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    client: ClientDep,
) -> JSONResponse:
    """Link recordings by id, or every match of a search (422 past 500); they are held."""
    actor = _actor(principal, client, Action.CASE_MANAGE)
    if bool(body.recording_ids) == (body.search is not None):
        raise CaseInputError("recording_ids", "give recording_ids or search (one of them)")
    if body.search is not None:
        filters = search_filters(runtime, body.search)
        return _out(link_search(runtime, case_id, filters, actor=actor))
    return _out(link_recordings(runtime, case_id, body.recording_ids, actor=actor))


@router.delete(
    "/{case_id}/recordings/{recording_id}",
    response_model=CaseDetailOut,
    responses=_CHANGE,
    summary="Unlink a recording",
)
def cases_unlink(
    case_id: uuid.UUID,
    recording_id: uuid.UUID,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    client: ClientDep,
) -> JSONResponse:
    """Take a recording out of the case and its hold (held still if another hold covers it)."""
    actor = _actor(principal, client, Action.CASE_MANAGE)
    return _out(unlink_recording(runtime, case_id, recording_id, actor=actor))


@router.post(
    "/{case_id}/notes", response_model=CaseDetailOut, responses=_CHANGE, summary="Add a note"
)
def cases_note(
    case_id: uuid.UUID,
    body: CaseNoteIn,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    client: ClientDep,
) -> JSONResponse:
    """Add a note (audited ``case.note``; the text is not copied into the log)."""
    actor = _actor(principal, client, Action.CASE_MANAGE)
    return _out(add_note(runtime, case_id, body.text, actor=actor))


@router.post(
    "/{case_id}/close",
    response_model=CaseDetailOut,
    responses={**_ONE, 409: {"model": ErrorOut, "description": "Already closed."}},
    summary="Close a case",
)
def cases_close(
    case_id: uuid.UUID,
    body: CaseCloseIn,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    client: ClientDep,
) -> JSONResponse:
    """Close the case and release its own hold only; its record is kept for the keep period."""
    actor = _actor(principal, client, Action.CASE_MANAGE)
    return _out(close_case(runtime, case_id, reason=body.reason, actor=actor))


@router.get(
    "/{case_id}/custody", response_model=CustodyOut, responses=_ONE, summary="Custody record"
)
def cases_custody(
    case_id: uuid.UUID, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> JSONResponse:
    """Every audit entry about the case and its recordings, oldest first (audited)."""
    actor = _actor(principal, client, Action.CASE_VIEW)
    return JSONResponse({"entries": custody(runtime, case_id, actor=actor)})


@router.post(
    "/{case_id}/export",
    responses={
        **_ONE,
        200: {"content": {"application/zip": {}}, "description": "The evidence package."},
        409: {"model": ErrorOut, "description": "No archived recording to export."},
        503: {"model": ErrorOut, "description": "The time-stamping authority failed."},
    },
    response_class=FileResponse,
    summary="Export the evidence package",
)
def cases_export(
    case_id: uuid.UUID, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> FileResponse:
    """The case's evidence package (a zip), built in full before the first byte is sent.

    Audited ``case.export`` (and an ``export`` per recording); kept in the case's exports.
    """
    actor = _actor(principal, client, Action.CASE_EXPORT)
    work = runtime.settings.work_dir
    make_private_dir(work)
    folder = Path(tempfile.mkdtemp(prefix="evidence-", dir=work))
    target = folder / "evidence.zip"
    try:
        result = export_case(runtime, case_id, target, actor=actor)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(
        target,
        media_type="application/zip",
        filename=f"evidence-{_safe_name(result.reference)}.zip",
        headers={"Cache-Control": "private, no-store"},
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )


def _safe_name(reference: str) -> str:
    """The reference as a file name: letters, digits, ``-``, ``_`` and ``.`` only."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in reference)
