"""A search's statement is built once per shape and holds none of the search's values."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.dialects import postgresql, sqlite

from recarchive.access.models import Role
from recarchive.catalogue.models import Direction
from recarchive.lookup import search_sql
from recarchive.lookup.filters import Cursor, SearchFilters

NOW = dt.datetime(2026, 12, 6, 12, tzinfo=dt.UTC)
HANDLER = Role.DISPUTE_HANDLER


def test_searches_of_one_shape_share_one_statement_and_differ_only_in_their_values() -> None:
    first, first_values = search_sql.search_statement(
        SearchFilters(customer_id="C-1001", reasons=("billing",)),
        NOW,
        Role.DISPUTE_HANDLER,
        None,
        50,
    )
    second, second_values = search_sql.search_statement(
        SearchFilters(customer_id="C-2002", reasons=("moving", "meter")),
        NOW,
        Role.DISPUTE_HANDLER,
        None,
        50,
    )
    assert first is second
    assert first_values == {"customer_id": "C-1001", "reasons": ["billing"]}
    assert second_values == {"customer_id": "C-2002", "reasons": ["moving", "meter"]}


def test_each_shape_has_its_own_statement() -> None:
    base = SearchFilters(customer_id="C-1001")
    shapes = [
        (base, Role.DISPUTE_HANDLER, None, 50),
        (SearchFilters(number="+358401234567"), Role.DISPUTE_HANDLER, None, 50),
        (base, Role.ADMIN, None, 50),
        (base, Role.DISPUTE_HANDLER, None, 20),
        (base, Role.DISPUTE_HANDLER, Cursor(NOW, uuid.uuid4()), 50),
        (SearchFilters(customer_id="C-1001", held=True), Role.DISPUTE_HANDLER, None, 50),
        (SearchFilters(customer_id="C-1001", held=False), Role.DISPUTE_HANDLER, None, 50),
        (SearchFilters(customer_id="C-1001", oldest_first=True), Role.DISPUTE_HANDLER, None, 50),
        (SearchFilters(customer_id="C-1001", every_part=True), Role.DISPUTE_HANDLER, None, 50),
    ]
    statements = [search_sql.search_statement(f, NOW, r, a, n)[0] for f, r, a, n in shapes]
    assert len({id(statement) for statement in statements}) == len(shapes)


def test_values_are_bound_never_written_into_the_cached_sql() -> None:
    """Cached statements outlive the request: no customer, number or agent stays in them."""
    after = Cursor(NOW - dt.timedelta(days=1), uuid.uuid4())
    filters = SearchFilters(
        customer_id="C-7731",
        number="+358409876543",
        identity_hash="f" * 64,
        started_from=NOW - dt.timedelta(days=30),
        started_to=NOW,
        reasons=("billing",),
        agent="agent-8842",
        queue="queue-moves",
        direction=Direction.INBOUND,
        min_duration_s=12.5,
        max_duration_s=600,
        held=False,
    )
    statement, values = search_sql.search_statement(filters, NOW, Role.DISPUTE_HANDLER, after, 50)
    secrets = ("C-7731", "358409876543", "f" * 64, "agent-8842", "queue-moves", "billing")
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        compiled = statement.compile(dialect=dialect)
        held = " ".join(str(value) for value in compiled.params.values())
        assert not [secret for secret in secrets if secret in held]
    assert values["min_duration_s"] == 12_500
    assert values["max_duration_s"] == 600_000
    assert values["now"] == NOW
    assert (values["after_started_at"], values["after_id"]) == (
        after.started_at,
        after.recording_id,
    )
    assert set(values) == {*search_sql._BOUND, "now", "after_started_at", "after_id"}
