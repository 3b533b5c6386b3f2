"""Which catalogue a process opened, and the check that it still has that one.

A SQLite catalogue deleted or replaced under a running process does not stop
it: its open connections go on reading and writing the unlinked file, and a
new connection creates an empty one. Rows committed there are lost, so a
source acknowledged after such a commit loses its recording. A PostgreSQL
catalogue can be dropped and restored, or the URL can start pointing at
another server.

So a process records, when it opens the catalogue, what it opened
(:class:`CatalogueIdentity`: the installation id of the ``installation``
row, the SQLite file's device and inode, the PostgreSQL database's oid), and
:func:`check_catalogue_identity` compares before anything is acknowledged to
a source or served: one ``os.stat`` per check, the installation id re-read
when asked. :class:`CatalogueGuard` decides when to re-read and remembers a
replacement once seen.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, literal_column, select, update
from sqlalchemy.exc import SQLAlchemyError

from recarchive.catalogue.database import describe_url, utcnow
from recarchive.catalogue.failures import reason_of
from recarchive.catalogue.models import Installation
from recarchive.catalogue.revision import database_revision, shipped_head
from recarchive.errors import (
    CatalogueError,
    CatalogueMisconfigured,
    CatalogueReplaced,
    CatalogueUnavailable,
)

logger = logging.getLogger(__name__)

#: The PostgreSQL database's oid: a database dropped and created again gets a new one.
_DATABASE_OID = "(SELECT oid::bigint FROM pg_database WHERE datname = current_database())"

#: Seconds between re-reads of the installation id on checks that do not ask for one.
REREAD_S = 5.0


@dataclasses.dataclass(frozen=True)
class CatalogueIdentity:
    """What a process opened: enough to tell that catalogue from any other."""

    #: The catalogue URL without its password.
    url: str
    installation_id: uuid.UUID
    #: The SQLite file, and its ``(st_dev, st_ino)`` when opened; None on PostgreSQL.
    path: str | None = None
    file_id: tuple[int, int] | None = None
    #: The PostgreSQL database's oid; None on SQLite.
    database_oid: int | None = None


def sqlite_path(engine: Engine) -> str | None:
    """The SQLite catalogue's file, or None (PostgreSQL, in-memory SQLite)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    return os.path.abspath(database)


def _read_installation(connection: Connection, url: str) -> tuple[uuid.UUID, int | None]:
    columns: list[Any] = [Installation.installation_id]
    if connection.dialect.name == "postgresql":
        columns.append(literal_column(_DATABASE_OID))
    row = connection.execute(select(*columns).where(Installation.id == 1)).first()
    if row is None:
        raise CatalogueReplaced(f"catalogue {url}: its installation row is missing")
    return row[0], (int(row[1]) if len(row) > 1 and row[1] is not None else None)


def _reason(exc: SQLAlchemyError | CatalogueError) -> str:
    """The driver's first line (no SQL, no parameters), or the error's type."""
    if isinstance(exc, CatalogueError):  # translated: "catalogue URL: reason"
        return exc.message.partition(": ")[2] or exc.message
    return reason_of(exc)


def _unavailable(url: str, exc: SQLAlchemyError | CatalogueError) -> CatalogueUnavailable:
    return CatalogueUnavailable(f"catalogue {url}: cannot read its installation id: {_reason(exc)}")


def _file_id(path: str, url: str) -> tuple[int, int]:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        raise CatalogueReplaced(
            f"catalogue {url}: the file is gone (deleted or moved since this process opened it)"
        ) from None
    except OSError as exc:
        raise CatalogueUnavailable(f"catalogue {url}: {exc.strerror or exc}") from None
    return stat.st_dev, stat.st_ino


def read_identity(engine: Engine) -> CatalogueIdentity:
    """What the catalogue is now; a process records this when it opens the catalogue.

    Raises :class:`~recarchive.errors.CatalogueUnavailable` when it cannot be
    reached now, :class:`~recarchive.errors.CatalogueMisconfigured` when it has
    no installation row to read (no schema or an older one: ``recarchive init``)
    or its schema is not the one this version of recarchive needs (ingest, the
    scheduler and the API stop with one line instead of failing on every
    statement that names a newer column).
    """
    url = describe_url(engine)
    try:
        with engine.connect() as connection:
            installation_id, oid = _read_installation(connection, url)
            revision = database_revision(connection)
    except (CatalogueReplaced, CatalogueUnavailable):
        raise  # a catalogue that cannot be reached now may be reachable later
    except (SQLAlchemyError, CatalogueError) as exc:
        message = _unavailable(url, exc).message
        hint = " (run `recarchive init`?)"
        raise CatalogueMisconfigured(message if message.endswith(hint) else message + hint) from exc
    if revision != shipped_head():
        raise CatalogueMisconfigured(
            f"catalogue {url} is at schema {revision or 'empty'}, this recarchive needs "
            f"{shipped_head()}: run `recarchive init`"
        )
    path = sqlite_path(engine)
    file_id = _file_id(path, url) if path is not None else None
    return CatalogueIdentity(url, installation_id, path, file_id, oid)


def check_catalogue_identity(
    engine: Engine, opened: CatalogueIdentity, *, reread: bool = False
) -> None:
    """Raise :class:`~recarchive.errors.CatalogueReplaced` unless ``engine`` still has ``opened``.

    Always one ``os.stat`` of a SQLite file: gone, or another file (inode) at
    its path. With ``reread``, also one query: the installation id (and on
    PostgreSQL the database's oid) must be the ones opened. Raises
    :class:`~recarchive.errors.CatalogueUnavailable` when the catalogue
    cannot be read at all. The messages name the URL without password and
    what changed, never anything the catalogue holds but its installation id.
    """
    url = opened.url
    if opened.path is not None and _file_id(opened.path, url) != opened.file_id:
        raise CatalogueReplaced(
            f"catalogue {url}: another file is at its path (replaced since this process opened it)"
        )
    if not reread:
        return
    try:
        with engine.connect() as connection:
            installation_id, oid = _read_installation(connection, url)
    except CatalogueReplaced:
        raise
    except (SQLAlchemyError, CatalogueError) as exc:
        raise _unavailable(url, exc) from exc
    if installation_id != opened.installation_id:
        raise CatalogueReplaced(
            f"catalogue {url}: installation id is now {installation_id}, this process opened "
            f"{opened.installation_id} (another catalogue took its place)"
        )
    if oid != opened.database_oid:
        raise CatalogueReplaced(
            f"catalogue {url}: the database was dropped and created again "
            "(restored?) since this process opened it"
        )


def check_catalogue_writable(engine: Engine, opened: CatalogueIdentity) -> None:
    """Commit a heartbeat to the installation row opened: a real write, for ``/healthz``.

    Raises :class:`~recarchive.errors.CatalogueReplaced` when that row is
    not there (another installation), :class:`~recarchive.errors.CatalogueUnavailable`
    when the write or its commit fails.
    """
    statement = (
        update(Installation)
        .where(Installation.id == 1, Installation.installation_id == opened.installation_id)
        .values(heartbeat_at=utcnow())
    )
    try:
        with engine.begin() as connection:
            written = connection.execute(statement).rowcount
    except CatalogueReplaced:
        raise
    except (SQLAlchemyError, CatalogueError) as exc:
        raise CatalogueUnavailable(f"catalogue {opened.url}: cannot write: {_reason(exc)}") from exc
    if written != 1:
        raise CatalogueReplaced(
            f"catalogue {opened.url}: installation {opened.installation_id} is not there "
            "(another catalogue took its place)"
        )


class CatalogueGuard:
    """The identity one process opened, checked cheaply and often.

    :meth:`check` costs one ``os.stat`` on SQLite; it re-reads the
    installation id when asked and otherwise at most every ``reread_s``
    seconds. Once a replacement is seen, every later check raises it again:
    the process's connections and caches belong to a catalogue that is gone,
    and only a restart opens the new one. Safe to call from many threads.
    """

    def __init__(
        self,
        engine: Engine,
        opened: CatalogueIdentity,
        *,
        reread_s: float = REREAD_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.opened = opened
        self.reread_s = reread_s
        self._clock = clock
        self._next_reread = clock() + reread_s
        self._lock = threading.Lock()
        self._replaced: str | None = None

    def check(self, *, reread: bool = False) -> None:
        """Raise :class:`~recarchive.errors.CatalogueReplaced` unless the catalogue is the one
        opened (see :func:`check_catalogue_identity`)."""
        if self._replaced is not None:
            raise CatalogueReplaced(self._replaced)
        now = self._clock()
        if not reread and now >= self._next_reread:
            with self._lock:  # one thread re-reads; the others go on with the stat
                reread = now >= self._next_reread
                self._next_reread = now + self.reread_s
        try:
            check_catalogue_identity(self.engine, self.opened, reread=reread)
        except CatalogueReplaced as exc:
            if self._replaced is None:
                logger.error("catalogue_replaced", extra={"error": exc.message})
            self._replaced = exc.message
            raise

    def check_writable(self) -> None:
        """:meth:`check` with a re-read, then :func:`check_catalogue_writable`."""
        self.check(reread=True)
        try:
            check_catalogue_writable(self.engine, self.opened)
        except CatalogueReplaced as exc:
            self._replaced = exc.message
            raise
