"""Linking recordings to a dispute case, by hand or from a search, and unlinking them.

The case's recordings are exactly those its hold names: the first link
places the hold (``retention/holds.py: place_hold``, with the case's id),
later links extend the same hold and unlinks reduce it, each in the
transaction that writes the case's links and its audit entry (``case.link``,
``case.unlink``). The hold's rules apply: under the catalogue's write lock,
a recording an expiry or erasure has claimed is refused, naming it, and
nothing is linked; a recording freed by an unlink gets its retention class
back unless another hold covers it.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from recarchive.access.actors import Actor
from recarchive.access.policy import Action
from recarchive.access.services import Principal
from recarchive.catalogue.database import lock_for_write, transaction, utcnow
from recarchive.disputes.cases import (
    CaseChanged,
    CaseInputError,
    CaseKey,
    CaseNotFound,
    audit_change,
    case_detail,
    load_case,
    require_open,
)
from recarchive.disputes.models import CaseRecording
from recarchive.disputes.views import CaseDetail
from recarchive.errors import InvalidInputError
from recarchive.lookup.filters import MAX_LIMIT, SearchFilters
from recarchive.lookup.services import search
from recarchive.retention.holds import extend_hold, place_hold, reduce_hold
from recarchive.retention.models import Hold
from recarchive.runtime import Runtime

#: Most recordings one search may link: a broader search is a mistake, not a case.
MAX_SEARCH_LINKS = 500
#: Most recordings one request may name.
MAX_LINKS = 1000


class TooManyMatches(InvalidInputError):
    """the search matches too many recordings to link; narrow it"""

    field = "search"


def link_recordings(
    runtime: Runtime,
    key: CaseKey,
    recording_ids: Sequence[uuid.UUID],
    *,
    actor: Actor,
    by_search: bool = False,
) -> CaseDetail:
    """Link recordings to an open case and hold them under its hold (audited ``case.link``).

    Linking a recording the case has already changes nothing. Refused
    (nothing linked) for a closed case, an unknown recording or one being
    deleted (:class:`~recarchive.retention.holds.HoldError`, naming them).
    """
    actor.require(Action.CASE_MANAGE)
    ids = list(dict.fromkeys(recording_ids))
    if not ids:
        raise CaseInputError("recording_ids", "give at least one recording")
    if len(ids) > MAX_LINKS:
        raise CaseInputError("recording_ids", f"at most {MAX_LINKS} recordings at a time")
    try:
        _link(runtime, key, ids, actor=actor, by_search=by_search)
    except CaseChanged:
        # Another first link placed the case's hold meanwhile: this one extends it now.
        _link(runtime, key, ids, actor=actor, by_search=by_search)
    return case_detail(runtime, key, actor=actor)


def _link(
    runtime: Runtime, key: CaseKey, ids: list[uuid.UUID], *, actor: Actor, by_search: bool
) -> None:
    """Link ``ids`` under the case's hold: placed by the first link, extended by the others."""
    with runtime.sessions() as session:
        found = load_case(session, key)
        require_open(found)
        case_id, hold_id = found.id, found.hold_id
        reference, kind = found.reference, found.kind.value

    def link(session: Session, hold: Hold) -> None:
        case = load_case(session, case_id, lock=True)
        require_open(case)
        if case.hold_id not in (None, hold.id):
            raise CaseChanged(f"case {case.reference} changed meanwhile; try again")
        case.hold_id = hold.id
        linked = set(
            session.scalars(
                select(CaseRecording.recording_id).where(CaseRecording.case_id == case_id)
            )
        )
        added = [rid for rid in ids if rid not in linked]
        now = utcnow()
        session.add_all(
            CaseRecording(case_id=case_id, recording_id=rid, added_by=actor.name, added_at=now)
            for rid in added
        )
        session.flush()
        if added:
            details = {
                "recordings_added": len(added),
                "by_search": by_search,
                "recording_ids": [str(rid) for rid in added],
            }
            audit_change(session, case, actor, "case.link", details)

    if hold_id is None:
        place_hold(
            runtime,
            case_ref=reference,
            reason=f"dispute case ({kind})",
            actor=actor,
            recording_ids=ids,
            case_id=case_id,
            also=link,
        )
    else:
        extend_hold(runtime, hold_id, ids, actor=actor, also=link)


def matching_ids(runtime: Runtime, filters: SearchFilters, *, actor: Actor) -> list[uuid.UUID]:
    """Every recording ``filters`` match (each part of a call), through the audited search.

    :class:`TooManyMatches` past :data:`MAX_SEARCH_LINKS`; :class:`CaseInputError`
    when nothing matches.
    """
    actor.require(Action.CASE_MANAGE)
    principal = _principal(actor)
    every = dataclasses.replace(filters, every_part=True)
    found: list[uuid.UUID] = []
    cursor: str | None = None
    while True:
        page = search(
            runtime, principal, every, cursor=cursor, limit=MAX_LIMIT, client_addr=actor.client_addr
        )
        found.extend(item.id for item in page.items)
        if len(found) > MAX_SEARCH_LINKS:
            raise TooManyMatches(
                f"the search matches more than {MAX_SEARCH_LINKS} recordings; narrow it "
                "(a time range, an agent, a customer)"
            )
        cursor = page.next_cursor
        if cursor is None:
            break
    if not found:
        raise CaseInputError("search", "no recording matches the search; nothing was linked")
    return list(dict.fromkeys(found))


def _principal(actor: Actor) -> Principal:
    """The search's caller: the actor, whose role the search checks again."""
    assert actor.role is not None  # require() refused the system
    return Principal(actor.user_id or uuid.UUID(int=0), actor.name, actor.role)


def link_search(
    runtime: Runtime, key: CaseKey, filters: SearchFilters, *, actor: Actor
) -> CaseDetail:
    """Link every recording a search finds (at most :data:`MAX_SEARCH_LINKS`)."""
    actor.require(Action.CASE_MANAGE)
    with runtime.sessions() as session:
        require_open(load_case(session, key))  # before the search: nothing read for nothing
    ids = matching_ids(runtime, filters, actor=actor)
    return link_recordings(runtime, key, ids, actor=actor, by_search=True)


def unlink_recording(
    runtime: Runtime, key: CaseKey, recording_id: uuid.UUID, *, actor: Actor
) -> CaseDetail:
    """Take a recording out of an open case and its hold (audited ``case.unlink``).

    The recording stays held if another hold covers it; otherwise it is freed.
    :class:`CaseNotFound` when the case does not link it.
    """
    actor.require(Action.CASE_MANAGE)
    with runtime.sessions() as session:
        found = load_case(session, key)
        require_open(found)
        case_id, hold_id = found.id, found.hold_id
        linked = session.get(CaseRecording, (case_id, recording_id))
        if linked is None:
            raise CaseNotFound(f"case {found.reference} does not link recording {recording_id}")

    def unlink(session: Session, hold: Hold | None) -> None:
        case = load_case(session, case_id, lock=True)
        require_open(case)
        link = session.get(CaseRecording, (case_id, recording_id))
        if link is None:
            raise CaseNotFound(f"case {case.reference} does not link recording {recording_id}")
        session.delete(link)
        session.flush()
        audit_change(session, case, actor, "case.unlink", recording_id=recording_id)

    if hold_id is None:  # linked before the case had a hold: nothing holds it for the case
        with transaction(runtime.sessions) as session:
            lock_for_write(session)
            unlink(session, None)
    else:
        reduce_hold(runtime, hold_id, [recording_id], actor=actor, also=unlink)
    return case_detail(runtime, case_id, actor=actor)
