"""The parts one running recarchive process shares: settings, catalogue, store.

Built once by an entry point (CLI command, API server, scheduler) from the
settings, and handed to the services. Connections are opened lazily; the
first check of the catalogue (:meth:`Runtime.check_catalogue`) records which
catalogue the process opened, and every later one refuses another.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from recarchive.access.anchoring import APPENDED_INFO, KEYS_INFO, AnchorPublisher, LazyKeys
from recarchive.access.audit import AuditWriter
from recarchive.catalogue.data_keys import CatalogueSeals
from recarchive.catalogue.database import create_catalogue_engine, session_factory
from recarchive.catalogue.guard import CatalogueGuard, CatalogueIdentity, read_identity
from recarchive.config import Settings
from recarchive.crypto.interfaces import KeyProvider
from recarchive.crypto.providers import open_key_provider
from recarchive.storage.anchors import AnchorSink
from recarchive.storage.interfaces import RECORDINGS_PREFIX, ObjectStore
from recarchive.storage.sealed import SealedObjectStore
from recarchive.storage.services import open_anchor_sink, open_deletion_sink, open_store

if TYPE_CHECKING:
    from recarchive.access.oidc import OidcClient


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
    def audit_keys(self) -> LazyKeys:
        """The audit key's seal and signing keys, read from the secret when first needed."""
        return LazyKeys(lambda: self.settings.secret("audit_key") or "")

    @functools.cached_property
    def sessions(self) -> sessionmaker[Session]:
        """Sessions that seal the audit entries they append, and anchor them once committed."""
        factory = session_factory(self.engine, info={KEYS_INFO: self.audit_keys})
        event.listen(factory, "after_commit", self._after_commit)
        return factory

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(APPENDED_INFO, False):
            self.anchors.poke()

    @functools.cached_property
    def anchors(self) -> AnchorPublisher:
        """Publishes the audit chain's head outside the catalogue after entries are committed."""
        return AnchorPublisher(
            self.sessions,
            open_anchor_sink(self.settings, self.store),
            self.audit_keys.get,
            lambda: str(self.catalogue_guard.opened.installation_id),
            min_interval_s=self.settings.audit.anchor_min_interval_s,
        )

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
    def oidc(self) -> OidcClient | None:
        """The OpenID Connect relying party, or None when ``oidc.issuer`` is empty.

        Reads the client secret when built (unless the client is public), so
        that the server stops at start on a missing one.
        """
        oidc = self.settings.oidc
        if not oidc.enabled:
            return None
        from recarchive.access.oidc import OidcClient  # only where single sign-on is set up

        public = oidc.token_endpoint_auth_method == "none"  # noqa: S105 - a method's name
        return OidcClient(oidc, self.settings.secret("oidc_client_secret", required=not public))

    @functools.cached_property
    def store(self) -> ObjectStore:
        """The object store; encrypted recordings' audio comes out of ``get`` decrypted."""
        seals = CatalogueSeals(self.sessions, lambda: self.key_provider)
        return SealedObjectStore(open_store(self.settings), seals.lookup, prefix=RECORDINGS_PREFIX)

    @functools.cached_property
    def deletion_record(self) -> AnchorSink:
        """Where deletions are recorded outside the catalogue (retention/deletion_record.py)."""
        return open_deletion_sink(self.settings, self.store)

    @functools.cached_property
    def key_provider(self) -> KeyProvider:
        """The keeper of the key-encryption keys (opened when first needed)."""
        return open_key_provider(self.settings)

    def quiesce(self) -> None:
        """Publish what waits and end this process's helper threads (before a fork)."""
        if "anchors" in self.__dict__:
            self.anchors.flush()

    def close(self) -> None:
        if self.__dict__.get("oidc") is not None:
            self.__dict__["oidc"].close()
        if "audit" in self.__dict__:
            self.audit.close()
        if "anchors" in self.__dict__:
            self.anchors.close()
        if "engine" in self.__dict__:
            self.engine.dispose()
