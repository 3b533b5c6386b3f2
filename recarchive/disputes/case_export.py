"""A case's evidence package: the case's facts and recordings, built by :mod:`.evidence`.

``recarchive case export`` and ``POST /api/v1/cases/{id}/export`` call
:func:`export_case`. The package holds the recordings linked to the case
that are still archived; one deleted since it was linked (its year ended
after the case closed, or an erasure) is named in the manifest's case facts
(``recordings_no_longer_archived``), never silently left out. Each export is
kept in the case's record (:class:`~recarchive.disputes.models.CaseExport`):
who made it, when, the manifest's SHA-256 and the timestamp's time. The
builder audits it (``case.export``, and an ``export`` entry per recording).
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select

from recarchive.access.actors import Actor
from recarchive.access.policy import Action
from recarchive.catalogue.database import transaction
from recarchive.catalogue.models import Recording, RecordingStatus
from recarchive.disputes.cases import CaseKey, load_case
from recarchive.disputes.evidence import EvidenceSummary, write_evidence_package
from recarchive.disputes.models import CaseExport, CaseRecording
from recarchive.errors import ConflictError
from recarchive.runtime import Runtime


class NothingToExport(ConflictError):
    """the case has no archived recording to export"""


@dataclasses.dataclass(frozen=True)
class CaseExportResult:
    case_id: uuid.UUID
    reference: str
    summary: EvidenceSummary
    #: Recordings linked to the case but no longer archived (named in the manifest).
    missing: tuple[uuid.UUID, ...]


def export_case(runtime: Runtime, key: CaseKey, target: Path, *, actor: Actor) -> CaseExportResult:
    """Write the case's evidence package to ``target`` (all or nothing) and record the export.

    Raises :class:`~recarchive.access.policy.Forbidden` unless ``actor`` may
    export evidence, :class:`~recarchive.disputes.cases.CaseNotFound`,
    :class:`NothingToExport` when none of the case's recordings is archived
    any more, ``FileExistsError`` when ``target`` exists, and what
    :func:`~recarchive.disputes.evidence.build_evidence_package` raises (a
    recording whose bytes no longer match, a TSA that fails).
    """
    actor.require(Action.CASE_EXPORT)
    case_id, facts, archived, missing = _gather(runtime, key)
    if not archived:
        raise NothingToExport(
            f"case {facts['reference']} has no archived recording to export"
            + (f" ({len(missing)} linked, since deleted)" if missing else "")
        )
    if missing:
        facts["recordings_no_longer_archived"] = [str(i) for i in missing]
    summary = write_evidence_package(
        runtime, target, recording_ids=archived, case=facts, actor=actor
    )
    with transaction(runtime.sessions) as session:
        session.add(
            CaseExport(
                case_id=case_id,
                made_by=actor.name,
                recordings=summary.recordings,
                manifest_sha256=summary.manifest_sha256,
                timestamped_at=summary.timestamped_at,
            )
        )
    return CaseExportResult(case_id, str(facts["reference"]), summary, tuple(missing))


def _gather(
    runtime: Runtime, key: CaseKey
) -> tuple[uuid.UUID, dict[str, Any], list[uuid.UUID], list[uuid.UUID]]:
    """The case's id and facts, its archived recordings' ids and the ids no longer archived."""
    with runtime.sessions() as session:
        case = load_case(session, key)
        linked = list(
            session.scalars(
                select(CaseRecording.recording_id)
                .where(CaseRecording.case_id == case.id)
                .order_by(CaseRecording.added_at, CaseRecording.recording_id)
            )
        )
        active = set(
            session.scalars(
                select(Recording.id).where(
                    Recording.id.in_(linked), Recording.status == RecordingStatus.ACTIVE
                )
            )
        )
        facts: dict[str, Any] = {
            "reference": case.reference,
            "kind": case.kind.value,
            "status": case.status.value,
            "customer_id": case.customer_id,
            "document_ref": case.document_ref,
            "handler": case.handler,
            "opened_at": case.opened_at,
            "closed_at": case.closed_at,
        }
        return (
            case.id,
            facts,
            [i for i in linked if i in active],
            [i for i in linked if i not in active],
        )
