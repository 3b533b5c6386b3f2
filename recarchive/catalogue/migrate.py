"""Schema migrations: create or upgrade the catalogue to the newest revision.

Alembic runs programmatically on our own engine, so the same code path serves
``recarchive init``, the test fixtures and any embedding application. Which
revision a catalogue is at, and which one is the newest, are read without
Alembic (:mod:`recarchive.catalogue.revision`): only migrating imports it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from recarchive.catalogue.revision import current_revision, shipped_head

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


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
    head = shipped_head()
    if before != head:
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            config.attributes["identity_hash_key"] = identity_hash_key
            config.attributes["audit_key"] = audit_key
            command.upgrade(config, "head")
        logger.info("catalogue_upgraded", extra={"from_revision": before, "to_revision": head})
    return before, head
