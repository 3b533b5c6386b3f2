"""The parts of a running process a use case needs, named by what it uses.

A service takes the narrowest of these its work needs: most read and write
the catalogue (:class:`Sessions`), some also follow the settings
(:class:`Catalogue`) or move objects (:class:`Archive`); the few that need
more (the engine, the key provider, the deletion record, the audit writer)
take the whole :class:`~recarchive.runtime.Runtime`. ``Runtime`` provides
every part; a test can hand a service an object with only the parts its
type names, and a reader sees from a signature what a use case touches.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from recarchive.config import Settings
from recarchive.storage.interfaces import ObjectStore


class Sessions(Protocol):
    """The catalogue's sessions (which seal and anchor the audit entries they append)."""

    @property
    def sessions(self) -> sessionmaker[Session]: ...


class Catalogue(Sessions, Protocol):
    """The catalogue's sessions and the settings."""

    @property
    def settings(self) -> Settings: ...


class Archive(Catalogue, Protocol):
    """The catalogue's sessions, the settings and the object store."""

    @property
    def store(self) -> ObjectStore: ...
