"""The schema revision a catalogue is at, and the one this recarchive ships, without Alembic.

Every process that opens the catalogue checks that its schema is the one
this version needs (:func:`recarchive.catalogue.guard.read_identity`), and
every command opens it. Alembic answers both questions, but only after it
is imported and has parsed its script directory (importing every migration
module): about 150 ms of CPU a process, a sixth of an ``ingest --once`` run
that finds nothing to do. The answers are simple here, because the
migrations' ids are plain numbers in one line of descent (``0001`` to the
newest, each file named ``<id>_<name>.py`` with ``down_revision`` the
previous number): the newest is the largest id, and the database's is the
one row of Alembic's own ``alembic_version`` table. Migrating still goes
through Alembic (:mod:`recarchive.catalogue.migrate`); a test checks that
both answers agree with Alembic's.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text

from recarchive.catalogue.database import describe_url
from recarchive.errors import CatalogueError

#: Where the migrations live (Alembic's script directory's ``versions``).
VERSIONS = Path(__file__).resolve().parent / "migrations" / "versions"
_MIGRATION = re.compile(r"^(\d{4})_\w+\.py$")


@functools.cache
def shipped_head() -> str:
    """The newest migration shipped with this version of recarchive."""
    ids = sorted(
        match.group(1) for path in VERSIONS.iterdir() if (match := _MIGRATION.match(path.name))
    )
    if not ids:
        raise RuntimeError(f"no migration found in {VERSIONS}")
    return ids[-1]


def database_revision(connection: Connection) -> str | None:
    """The revision the database of an open connection is at (None: empty)."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) > 1:  # Alembic's branches: recarchive's migrations have none
        raise CatalogueError(f"the catalogue names {len(rows)} schema revisions: {sorted(rows)}")
    return rows[0] if rows else None


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as connection:
        return database_revision(connection)


def require_current_schema(engine: Engine) -> str:
    """The current revision; :class:`~recarchive.errors.CatalogueError` unless it is the newest.

    Commands other than ``recarchive init`` call this first, so that an empty
    or outdated catalogue gets one clear line instead of an SQL error.
    """
    revision = current_revision(engine)
    if revision != shipped_head():
        raise CatalogueError(
            f"catalogue {describe_url(engine)} is at schema {revision or 'empty'}, "
            f"this recarchive needs {shipped_head()}: run `recarchive init`"
        )
    return revision
