"""The parts one running recarchive process shares: settings, catalogue, store.

Built once by an entry point (CLI command, API server, scheduler) from the
settings, and handed to the services. Connections are opened lazily.
"""

from __future__ import annotations

import functools

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from recarchive.access.audit import AuditWriter
from recarchive.catalogue.database import create_catalogue_engine, session_factory
from recarchive.config import Settings
from recarchive.storage.interfaces import ObjectStore
from recarchive.storage.services import open_store


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @functools.cached_property
    def engine(self) -> Engine:
        catalogue = self.settings.catalogue
        return create_catalogue_engine(
            self.settings.catalogue_url,
            pool_size=catalogue.pool_size,
            connect_timeout_s=catalogue.connect_timeout_s,
            echo=catalogue.echo,
        )

    @functools.cached_property
    def sessions(self) -> sessionmaker[Session]:
        return session_factory(self.engine)

    @functools.cached_property
    def audit(self) -> AuditWriter:
        """Appends the audit entries of reads, many per commit when many arrive at once."""
        return AuditWriter(self.sessions)

    @functools.cached_property
    def store(self) -> ObjectStore:
        return open_store(self.settings)

    def close(self) -> None:
        if "audit" in self.__dict__:
            self.audit.close()
        if "engine" in self.__dict__:
            self.engine.dispose()
