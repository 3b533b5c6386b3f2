"""What the access services need of the process that calls them.

:class:`~recarchive.runtime.Runtime` is the one implementation. The runtime
holds access's audit writer, so it sits above access; the services here name
only this protocol: the settings (for the token pepper) and the catalogue's
sessions.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from recarchive.config import Settings

__all__ = ["AccessContext"]


class AccessContext(Protocol):
    """Settings and catalogue sessions, as one running process shares them."""

    @property
    def settings(self) -> Settings: ...

    @property
    def sessions(self) -> sessionmaker[Session]: ...
