"""A member of staff's own preferences: the web pages' language.

The language chosen with the pages' FI | EN switch is kept with the user
(``users.language``), so that it follows them to another browser: signing
in gives the browser the user's language (``api/player.py:
set_session_cookie``). It is their own choice, not an access to anything:
not audited.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select, update

from recarchive.access.interfaces import AccessContext
from recarchive.access.models import User
from recarchive.catalogue.database import transaction

__all__ = ["LANGUAGES", "remember_language", "user_language"]

#: The languages the pages speak.
LANGUAGES = ("fi", "en")


def user_language(runtime: AccessContext, user_id: uuid.UUID) -> str | None:
    """The language the user chose last, or None (never chose, or not one of ours)."""
    with runtime.sessions() as session:
        chosen = session.scalar(select(User.language).where(User.id == user_id))
    return chosen if chosen in LANGUAGES else None


def remember_language(runtime: AccessContext, user_id: uuid.UUID, language: str) -> None:
    """Keep ``language`` as the user's choice (anything but ``fi`` or ``en`` is ignored)."""
    if language not in LANGUAGES:
        return
    with transaction(runtime.sessions) as session:
        session.execute(update(User).where(User.id == user_id).values(language=language))
