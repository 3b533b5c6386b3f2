"""The catalogue database: declarative base, engine, sessions and migrations.

The catalogue is SQLite (one file, WAL journal) for an embedded installation
and PostgreSQL when several workers or API processes share it. Both run the
same models and the same Alembic migrations, shipped inside the package.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import (
    DateTime,
    Engine,
    MetaData,
    TypeDecorator,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from recarchive import probes
from recarchive.catalogue import failures
from recarchive.errors import CatalogueError, CatalogueUnavailable, ConfigError
from recarchive.private_files import create_private_file, make_private_dir

logger = logging.getLogger(__name__)

#: Constraint names that Alembic can find again on both backends.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every catalogue table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp that is always timezone-aware UTC in Python, on every backend.

    SQLite has no time zone type: values are stored as naive UTC and given
    their time zone back on the way out. Naive datetimes are refused on the
    way in, so local wall-clock times cannot slip into the catalogue.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the catalogue; use an aware UTC datetime")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    """The current time as an aware UTC datetime."""
    return dt.datetime.now(dt.UTC)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # Deleted rows are overwritten, not left in free pages of the file (erasure means gone).
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def create_catalogue_engine(
    url: str, *, pool_size: int = 5, connect_timeout_s: float = 10.0, echo: bool = False
) -> Engine:
    """Create the engine for ``url``: SQLite in WAL mode, or PostgreSQL via psycopg.

    A missing SQLite file is created empty with mode 0600 (its missing
    directories 0700) before SQLite first opens it: SQLite gives the ``-wal``
    and ``-shm`` files the mode of the database file, so they are private too.
    Raises :class:`~recarchive.errors.ConfigError` for a URL that cannot be used.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"setting catalogue.url: not a database URL ({exc})") from None
    # hide_parameters: SQL parameters (numbers, names, free text) never reach an
    # error message or a log line, whatever the statement that failed.
    kwargs: dict[str, Any] = {"echo": echo, "future": True, "hide_parameters": True}
    if parsed.get_backend_name() == "sqlite":
        database = _sqlite_file(parsed)
        if database is not None:
            _create_private_database(database)
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
    elif parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        kwargs.update(
            pool_size=pool_size,
            pool_pre_ping=True,
            connect_args={"connect_timeout": max(1, round(connect_timeout_s))},
        )
    else:
        raise ConfigError(
            f"setting catalogue.url: unsupported database {parsed.get_backend_name()!r}"
        )
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, ImportError) as exc:
        raise ConfigError(f"setting catalogue.url: {exc}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _on_sqlite_connect)
    failures.install(engine)
    return engine


def _sqlite_file(url: URL) -> Path | None:
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if database.startswith("file:") or url.query.get("uri"):
        return None  # an SQLite URI names its file and options itself
    return Path(database)


def sqlite_file(engine: Engine) -> Path | None:
    """The catalogue's SQLite database file; None for PostgreSQL or an in-memory SQLite."""
    return _sqlite_file(engine.url)


def _create_private_database(database: Path) -> None:
    try:
        make_private_dir(database.parent)
        create_private_file(database)
    except OSError as exc:
        raise ConfigError(
            f"setting catalogue.url: cannot create the SQLite catalogue {database}: "
            f"{exc.strerror or exc}"
        ) from None


def describe_url(engine: Engine) -> str:
    """The engine URL without its password, for messages and logs."""
    return engine.url.render_as_string(hide_password=True)


def check_connection(engine: Engine) -> None:
    """Connect once; raise :class:`~recarchive.errors.CatalogueUnavailable` if it fails
    (:class:`~recarchive.errors.CatalogueMisconfigured` if waiting will not help)."""
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except CatalogueError as exc:
        reason = exc.message.removeprefix(f"catalogue {describe_url(engine)}: ")
        raise type(exc)(
            f"setting catalogue.url: cannot connect to {describe_url(engine)}: {reason}"
        ) from exc
    except DBAPIError as exc:
        raise CatalogueUnavailable(
            f"setting catalogue.url: cannot connect to {describe_url(engine)}: "
            f"{failures.reason_of(exc)}"
        ) from exc


def session_factory(engine: Engine, *, info: dict[str, Any] | None = None) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit.

    ``info`` seeds each session's ``Session.info`` (the audit keys, see
    :class:`~recarchive.runtime.Runtime`).
    """
    return sessionmaker(engine, expire_on_commit=False, info=info)


@contextlib.contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on error.

    What the block left pending is flushed first, so that the commit itself
    is one step of its own (:func:`_commit`, a timing probe).
    """
    with factory() as session, session.begin():
        yield session
        session.flush()
        _commit(session)


@probes.timed("step: commit")
def _commit(session: Session) -> None:
    """Commit a flushed session, timed as one step (:mod:`recarchive.probes`).

    The step is the commit and the connection's return to the pool; the
    statements a flush sends are timed apart, as statements.
    """
    session.commit()


def table_names(engine: Engine) -> set[str]:
    """Names of the tables that exist in the database."""
    return set(inspect(engine).get_table_names())


def lock_for_write(session: Session) -> None:
    """Take the catalogue's write lock for the rest of ``session``'s transaction.

    Call it first in a transaction that reads, decides and then writes on
    what it read (placing a hold, claiming recordings for deletion). On
    PostgreSQL it does nothing: such transactions lock the rows they read
    with ``FOR UPDATE``. On SQLite ``FOR UPDATE`` is ignored and the driver
    starts the transaction only at the first write, so reads before it see a
    state another writer may change before this one commits; a no-op write
    taken first makes every later read and write of the transaction happen
    under the database's single write lock.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("UPDATE audit_events SET seq = seq WHERE 0 = 1"))


def truncate_journal(engine: Engine) -> None:
    """After a deletion: leave no old image of deleted rows in SQLite's write-ahead log.

    ``secure_delete`` zeroes deleted content in the database file, but the
    WAL still holds the page images written before the deletion until they
    are overwritten. A ``TRUNCATE`` checkpoint copies the log into the file
    and empties it. It waits (busy timeout) for readers of an older snapshot;
    if they keep it busy, the next deletion's checkpoint finishes the job.
    Nothing to do on PostgreSQL, whose dead rows are the server's to vacuum.
    """
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
