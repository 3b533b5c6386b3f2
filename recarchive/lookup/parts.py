"""The recordings of one call: a transfer's parts share ``recordings.linked_call_id``.

A search finds a call once: :func:`page_statement` keeps, of the recordings
that match (and that the role may see), the earliest of each call: a
recording is left out when an earlier part of its call matches the same
search (a correlated ``NOT EXISTS``, independent of the page), so that the
same recording stands for its call on every page and pages neither repeat
nor skip a call. A recording with no link is a call of its own.
:func:`parts_of` lists a call's other recordings that the role may see, by
the same rules as the search (active, and for QA trainers neither
restricted nor objected to): a hidden part is left out, not even counted.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Select, and_, bindparam, exists, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.util import ClauseAdapter

from recarchive.access.models import Role
from recarchive.catalogue.models import Recording, RecordingStatus
from recarchive.lookup.filters import SearchFilters
from recarchive.lookup.views import PartView
from recarchive.privacy.visibility import visible_condition

#: Linked call ids looked up per query.
_CHUNK = 500


def _no_earlier_matching_part(matching: Select[Any]) -> ColumnElement[bool]:
    """SQL: the recording is the earliest of its call's recordings that match ``matching``.

    The search's own conditions (filters, visibility, the reason and
    restriction subqueries) are adapted to another alias of ``recordings``,
    so that "an earlier part" means an earlier part that matches too. Each
    candidate row costs one lookup by the ``linked_call_id`` index, and the
    page is still read in index order and stops at its limit: a broad search
    does not number every match first.
    """
    earlier = Recording.__table__.alias("earlier_part")
    criteria = matching.whereclause
    conditions: list[ColumnElement[bool]] = [
        earlier.c.linked_call_id == Recording.linked_call_id,
        or_(
            earlier.c.started_at < Recording.started_at,
            and_(earlier.c.started_at == Recording.started_at, earlier.c.id < Recording.id),
        ),
    ]
    if criteria is not None:
        conditions.append(ClauseAdapter(earlier).traverse(criteria))
    return or_(
        Recording.linked_call_id.is_(None),
        ~exists(select(earlier.c.id).where(*conditions)),
    )


def page_statement(
    matching: Select[Any], filters: SearchFilters, paged: bool, page_size: int
) -> Select[Any]:
    """One page (and one row more) of ``matching``, each call once unless every part is asked.

    ``paged``: the page starts after a cursor, bound as ``after_started_at`` and ``after_id``.
    """
    statement = matching
    if not filters.every_part:
        statement = statement.where(_no_earlier_matching_part(matching))
    started_at, recording_id = Recording.started_at, Recording.id
    if paged:
        after_started_at: BindParameter[dt.datetime] = bindparam("after_started_at")
        after_id: BindParameter[uuid.UUID] = bindparam("after_id")
        later = filters.oldest_first
        statement = statement.where(
            or_(
                started_at > after_started_at if later else started_at < after_started_at,
                and_(
                    started_at == after_started_at,
                    recording_id > after_id if later else recording_id < after_id,
                ),
            )
        )
    order = (
        (started_at.asc(), recording_id.asc())
        if filters.oldest_first
        else (started_at.desc(), recording_id.desc())
    )
    return statement.order_by(*order).limit(page_size + 1)


def parts_by_call(
    session: Session, linked_call_ids: Iterable[str | None], role: Role
) -> dict[str, list[tuple[uuid.UUID, PartView]]]:
    """The recordings of each call the role may see, oldest first, by linked call id."""
    wanted = sorted({linked for linked in linked_call_ids if linked})
    found: dict[str, list[tuple[uuid.UUID, PartView]]] = {}
    for start in range(0, len(wanted), _CHUNK):
        rows = session.execute(
            select(
                Recording.linked_call_id,
                Recording.id,
                Recording.started_at,
                Recording.duration_ms,
                Recording.agent,
                Recording.queue,
            )
            .where(
                Recording.linked_call_id.in_(wanted[start : start + _CHUNK]),
                Recording.status == RecordingStatus.ACTIVE,
                visible_condition(role),
            )
            .order_by(Recording.started_at, Recording.id)
        )
        for row in rows:
            part = PartView(row.id, row.started_at, row.duration_ms, row.agent, row.queue)
            found.setdefault(row.linked_call_id, []).append((row.id, part))
    return found


def parts_of(
    found: dict[str, list[tuple[uuid.UUID, PartView]]],
    recording_id: uuid.UUID,
    linked_call_id: str | None,
) -> Sequence[PartView]:
    """The other parts of a recording's call, from :func:`parts_by_call`'s answer."""
    if not linked_call_id:
        return ()
    return [part for part_id, part in found.get(linked_call_id, []) if part_id != recording_id]
