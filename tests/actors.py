"""Actors for tests that call the services directly (the adapters authenticate; services trust)."""

from __future__ import annotations

from recarchive.access.actors import Actor
from recarchive.access.models import Role


def staff(name: str, role: Role = Role.DISPUTE_HANDLER) -> Actor:
    """A member of staff as the API or the CLI would hand them to a service."""
    return Actor(name, role, "test")


#: An admin, who manages users and tokens (recarchive.access.users).
ADMIN = Actor("test-admin", Role.ADMIN, "test")
