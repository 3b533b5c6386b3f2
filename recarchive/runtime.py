"""The parts one running recarchive process shares: settings, catalogue, store.

Built once by an entry point (CLI command, API server, scheduler) from the
settings, and handed to the services. Connections are opened lazily; the
first check of the catalogue (:meth:`Runtime.check_catalogue`) records which
catalogue the process opened, and every later one refuses another.
"""

from __future__ import annotations

import functools

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from recarchive.access.audit import AuditWriter
from recarchive.catalogue.database import create_catalogue_engine, session_factory
from recarchive.catalogue.guard import CatalogueGuard, CatalogueIdentity, read_identity
from recarchive.config import Settings
from recarchive.storage.interfaces import ObjectStore
from recarchive.storage.services import open_store


class Runtime:
    def __init__(self, settings: Settings, *, opened: CatalogueIdentity | None = None) -> None:
        """``opened``: the catalogue a parent process opened, for its worker processes."""
        self.settings = settings
        self._opened = opened

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
    def catalogue_guard(self) -> CatalogueGuard:
        """The catalogue this process opened (read on first use) and the check it still has it."""
        return CatalogueGuard(self.engine, self._opened or read_identity(self.engine))

    def check_catalogue(self, *, reread: bool = False) -> None:
        """Raise :class:`~recarchive.errors.CatalogueReplaced` if the catalogue opened is gone
        or was replaced: before a source is acknowledged, before anything is served."""
        self.catalogue_guard.check(reread=reread)

    @functools.cached_property
    def audit(self) -> AuditWriter:
        """Appends the audit entries of reads, many per commit when many arrive at once."""
        return AuditWriter(self.sessions, check=self.check_catalogue)

    @functools.cached_property
    def store(self) -> ObjectStore:
        return open_store(self.settings)

    def close(self) -> None:
        if "audit" in self.__dict__:
            self.audit.close()
        if "engine" in self.__dict__:
            self.engine.dispose()
