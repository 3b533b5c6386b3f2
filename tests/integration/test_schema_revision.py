"""The schema revision read without Alembic agrees with Alembic's, on both catalogues.

Every process checks the catalogue's revision when it opens it
(``catalogue/revision.py``); Alembic stays for migrating. If a migration
ever broke the plain-number line of descent the shortcut relies on, these
tests would say so.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from recarchive.catalogue.database import create_catalogue_engine
from recarchive.catalogue.migrate import alembic_config, upgrade_schema
from recarchive.catalogue.revision import (
    current_revision,
    database_revision,
    require_current_schema,
    shipped_head,
)
from recarchive.errors import CatalogueError


def test_the_newest_shipped_revision_is_alembics_head() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert shipped_head() == script.get_current_head()
    # One line of descent, each id a plain number one above its predecessor.
    revisions = list(script.walk_revisions())
    assert [int(r.revision) for r in revisions] == list(range(len(revisions), 0, -1))
    assert all(
        r.down_revision == (f"{int(r.revision) - 1:04d}" if r.revision != "0001" else None)
        for r in revisions
    )


def test_the_database_revision_is_alembics_at_every_step(empty_catalogue_url: str) -> None:
    engine = create_catalogue_engine(empty_catalogue_url)
    try:

        def both() -> tuple[str | None, str | None]:
            with engine.connect() as connection:
                alembics = MigrationContext.configure(connection).get_current_revision()
                return database_revision(connection), alembics

        assert both() == (None, None)
        with pytest.raises(CatalogueError, match="is at schema empty, this recarchive needs"):
            require_current_schema(engine)
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0005")
        assert both() == ("0005", "0005")
        with pytest.raises(CatalogueError, match="is at schema 0005"):
            require_current_schema(engine)
        upgrade_schema(engine, identity_hash_key="k" * 32, audit_key="a" * 32)
        assert both() == (shipped_head(), shipped_head())
        assert require_current_schema(engine) == shipped_head()

        with engine.begin() as connection:
            connection.execute(text("INSERT INTO alembic_version (version_num) VALUES ('9999')"))
        with pytest.raises(CatalogueError, match="names 2 schema revisions"):
            current_revision(engine)
    finally:
        engine.dispose()


def test_running_a_command_imports_neither_alembic_nor_single_sign_on() -> None:
    """Alembic and the OpenID client are imported only where they are used."""
    code = (
        "import sys, recarchive.cli.ingest_cmd, recarchive.ingest.tasks, recarchive.runtime\n"
        "found = [m for m in sys.modules if m.startswith(('alembic', 'recarchive.access.oidc'))]\n"
        "print(sorted(found))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == "[]"
