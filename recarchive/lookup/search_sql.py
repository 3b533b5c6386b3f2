"""The statement of a search, built once per shape and run with the search's values bound.

A search's SQL depends only on which filters are given (and the role, the
order, the page size, whether a cursor is followed), not on their values, so
:func:`search_statement` builds each shape once and binds the values. Building
the statement, and adapting its conditions to the earlier parts of a call
(:func:`~recarchive.lookup.parts.page_statement`), for every request cost more
than running it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from typing import Any

from sqlalchemy import BindParameter, Select, bindparam, exists, or_, select

from recarchive.access.models import Role
from recarchive.catalogue.database import UTCDateTime
from recarchive.catalogue.models import Customer, Recording, RecordingReason, RecordingStatus
from recarchive.lookup.filters import Cursor, SearchFilters
from recarchive.lookup.parts import page_statement
from recarchive.privacy.visibility import visible_condition
from recarchive.retention.rules import held_condition

_NOW = bindparam("now", type_=UTCDateTime())

#: What a search reads of each recording: plain columns, no ORM objects to build.
_COLUMNS = (
    Recording.id,
    Recording.started_at,
    Recording.duration_ms,
    Recording.direction,
    Recording.agent,
    Recording.queue,
    Recording.format,
    Recording.codec,
    Recording.channels,
    Recording.sample_rate,
    Recording.size_bytes,
    Recording.sha256,
    Recording.retention_class,
    Recording.retention_rule,
    Recording.retain_until,
    Recording.customer_id,
    Recording.customer_match,
    Recording.caller_number,
    Recording.called_number,
    Recording.linked_call_id,
)


#: The filters whose values are bound: a search's statement depends only on which are given.
_BOUND = (
    "customer_id",
    "number",
    "identity_hash",
    "started_from",
    "started_to",
    "reasons",
    "agent",
    "queue",
    "direction",
    "min_duration_s",
    "max_duration_s",
)


def _parameters(filters: SearchFilters, now: dt.datetime) -> dict[str, Any]:
    """The bound values of :func:`_search_statement` for ``filters``."""
    values: dict[str, Any] = {}
    for name in _BOUND:
        value = getattr(filters, name)
        if value is None or value == ():
            continue
        if name == "reasons":
            value = list(value)
        elif name in ("min_duration_s", "max_duration_s"):
            value = round(value * 1000)
        values[name] = value
    if filters.held is not None:
        values["now"] = now
    return values


@functools.lru_cache(maxsize=256)
def _statement(
    given: frozenset[str], filters: SearchFilters, role: Role, paged: bool, page_size: int
) -> Select[Any]:
    """The page statement of a search's shape, built once: which filters are ``given`` (their
    values are bound, :func:`_parameters`), ``held``, the order, the role, a cursor.

    Building it (and adapting it for the earlier parts of a call,
    :func:`~recarchive.lookup.parts.page_statement`) for each request cost more
    than running it. ``filters`` is a copy with every bound value cleared.
    """
    statement: Select[Any] = select(*_COLUMNS).where(  # type: ignore[assignment]
        Recording.status == RecordingStatus.ACTIVE
    )
    if "customer_id" in given:
        statement = statement.where(Recording.customer_id == bindparam("customer_id"))
    if "number" in given:
        number: BindParameter[str] = bindparam("number")
        statement = statement.where(
            or_(Recording.caller_number == number, Recording.called_number == number)
        )
    if "identity_hash" in given:
        customers = select(Customer.customer_id).where(
            Customer.identity_hash == bindparam("identity_hash")
        )
        statement = statement.where(Recording.customer_id.in_(customers.scalar_subquery()))
    if "started_from" in given:
        statement = statement.where(Recording.started_at >= bindparam("started_from"))
    if "started_to" in given:
        statement = statement.where(Recording.started_at < bindparam("started_to"))
    if "reasons" in given:
        statement = statement.where(
            exists().where(
                RecordingReason.recording_id == Recording.id,
                RecordingReason.code.in_(bindparam("reasons", expanding=True)),
            )
        )
    for name in ("agent", "queue", "direction"):
        if name in given:
            statement = statement.where(getattr(Recording, name) == bindparam(name))
    if "min_duration_s" in given:
        statement = statement.where(Recording.duration_ms >= bindparam("min_duration_s"))
    if "max_duration_s" in given:
        statement = statement.where(Recording.duration_ms <= bindparam("max_duration_s"))
    if filters.held is True:
        statement = statement.where(held_condition(_NOW))
    elif filters.held is False:
        statement = statement.where(~held_condition(_NOW))
    statement = statement.where(visible_condition(role))
    return page_statement(statement, filters, paged, page_size)


def search_statement(
    filters: SearchFilters, now: dt.datetime, role: Role, after: Cursor | None, page_size: int
) -> tuple[Select[Any], dict[str, Any]]:
    """The page statement of a search (one row more than ``page_size``) and its values."""
    values = _parameters(filters, now)
    cleared: dict[str, Any] = {name: () if name == "reasons" else None for name in _BOUND}
    shape = dataclasses.replace(filters, **cleared)
    statement = _statement(frozenset(values), shape, role, after is not None, page_size)
    if after is not None:
        values.update(after_started_at=after.started_at, after_id=after.recording_id)
    return statement, values
