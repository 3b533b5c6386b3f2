"""Schema migrations: create or upgrade the catalogue to the newest revision.

Alembic runs programmatically on our own engine, so the same code path serves
``recarchive init``, the test fixtures and any embedding application.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from recarchive.catalogue.database import describe_url
from recarchive.errors import CatalogueError

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest migration shipped with this version of recarchive."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as connection:
        return connection_revision(connection)


def connection_revision(connection: Connection) -> str | None:
    """The revision the database of an open connection is at (None: empty)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade_schema(
    engine: Engine, *, identity_hash_key: str | None = None, audit_key: str | None = None
) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; returns ``(before, after)``.

    Harmless on a database that is already current. Each migration runs in a
    transaction, so an interrupted upgrade leaves the previous revision.
    ``identity_hash_key`` is needed by migrations that hash data already
    stored (0006: the directory's phone numbers), ``audit_key`` by those
    that seal it (0008: the audit log's entries).
    """
    before = current_revision(engine)
    head = head_revision()
    if before != head:
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            config.attributes["identity_hash_key"] = identity_hash_key
            config.attributes["audit_key"] = audit_key
            command.upgrade(config, "head")
        logger.info("catalogue_upgraded", extra={"from_revision": before, "to_revision": head})
    return before, head


def require_current_schema(engine: Engine) -> str:
    """The current revision; :class:`~recarchive.errors.CatalogueError` unless it is the newest.

    Commands other than ``recarchive init`` call this first, so that an empty
    or outdated catalogue gets one clear line instead of an SQL error.
    """
    revision = current_revision(engine)
    if revision != head_revision():
        raise CatalogueError(
            f"catalogue {describe_url(engine)} is at schema {revision or 'empty'}, "
            f"this recarchive needs {head_revision()}: run `recarchive init`"
        )
    return revision
