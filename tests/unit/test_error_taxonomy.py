"""Errors carry their category; the API answers by it: no domain error is a 500 unnoticed."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import recarchive
from recarchive.api.errors import domain_response
from recarchive.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    RecArchiveError,
    RefusedError,
    UnavailableError,
)

#: Errors of the packages staff reach through the API and the CLI.
DOMAINS = ("recarchive.access", "recarchive.lookup", "recarchive.privacy", "recarchive.retention")
#: Deliberate faults of the archive itself (500 with a log line).
FAULTS = {"ExportError", "LookupFailed", "AuditChainBroken", "AnchorInvalid"}


def every_error() -> list[type[RecArchiveError]]:
    for module in pkgutil.walk_packages(recarchive.__path__, "recarchive."):
        if ".migrations" not in module.name and not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    found: list[type[RecArchiveError]] = []
    pending = [RecArchiveError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def test_every_domain_error_has_a_category_or_is_a_declared_fault() -> None:
    uncategorised = [
        f"{cls.__module__}.{cls.__name__}"
        for cls in every_error()
        if cls.__module__.startswith(DOMAINS)
        and cls.http_status >= 500
        and cls.__name__ not in FAULTS
    ]
    assert not uncategorised, f"give these a category in recarchive.errors: {uncategorised}"


@pytest.mark.parametrize(
    ("category", "status", "code"),
    [
        (NotFoundError, 404, "not_found"),
        (ConflictError, 409, "conflict"),
        (RefusedError, 403, "forbidden"),
        (InvalidInputError, 422, "invalid_request"),
        (UnavailableError, 503, "unavailable"),
    ],
)
def test_a_new_error_is_answered_as_its_category_says(
    category: type[RecArchiveError], status: int, code: str
) -> None:
    class BrandNew(category):  # type: ignore[misc, valid-type]
        """a brand-new error nobody listed in the API"""

    response = domain_response(BrandNew())
    assert response.status_code == status
    assert code.encode() in response.body
    assert b"a brand-new error nobody listed" in response.body


def test_an_uncategorised_error_is_a_500_that_hides_its_message() -> None:
    response = domain_response(RecArchiveError("row 12 of table x: +358401234567"))
    assert response.status_code == 500
    assert b"358401234567" not in response.body
