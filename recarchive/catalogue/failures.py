"""Catalogue failures, classified once, where the driver raises them.

Every error of the database driver passes through :func:`translate`
(SQLAlchemy's ``handle_error`` event on each catalogue engine) and becomes
one of recarchive's own:

- :class:`~recarchive.errors.CatalogueUnavailable` for what can pass by
  itself: the server refuses or drops the connection, restarts, times out,
  a serialisation failure or deadlock, SQLite's "database is locked". A
  long-running process reports it, waits and tries again; a command says so
  in one line.
- :class:`~recarchive.errors.CatalogueMisconfigured` for what will not pass
  without the operator: wrong credentials, no such database, no schema (run
  ``recarchive init``). Long-running processes stop on it with one line.

Anything else (a unique key taken, a value the column refuses) stays
SQLAlchemy's own error: it is a decision for the code that ran the
statement, or a fault of recarchive. Messages carry the catalogue's URL
without its password and the driver's first line, never the statement or
its parameters.
"""

from __future__ import annotations

from sqlalchemy import Engine, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, ProgrammingError

from recarchive.errors import CatalogueError, CatalogueMisconfigured, CatalogueUnavailable

#: Driver messages of failures that waiting does not cure (PostgreSQL and SQLite).
_PERMANENT = (
    "password authentication failed",
    "no pg_hba.conf entry",
    "authentication failed",
    'role "',
    'database "',  # database "x" does not exist
    "permission denied",
    "no such table",
    "unable to open database file",
    "file is not a database",
    "database disk image is malformed",
    "readonly database",
)
#: SQLSTATE classes and codes that are transient on PostgreSQL.
_TRANSIENT_SQLSTATES = ("08", "53", "57", "40001", "40P01", "55P03", "58")
#: SQLSTATEs that need the operator: invalid credentials, no such database, no table.
_PERMANENT_SQLSTATES = ("28", "3D000", "42P01", "42501")


def install(engine: Engine) -> None:
    """Translate ``engine``'s driver errors as the module docstring says."""
    event.listen(engine, "handle_error", translate)


def translate(context: ExceptionContext) -> None:
    """``handle_error`` hook: raise recarchive's error in place of the driver's."""
    if context.is_pre_ping:
        return  # the pool reconnects by itself; a failed reconnect comes back here
    error = context.sqlalchemy_exception
    if not isinstance(error, DBAPIError):
        return
    url = context.engine.url.render_as_string(hide_password=True) if context.engine else "?"
    replacement = classify(error, url=url, is_disconnect=context.is_disconnect)
    if replacement is not None:
        raise replacement


def classify(error: DBAPIError, *, url: str, is_disconnect: bool = False) -> CatalogueError | None:
    """recarchive's error for the driver's ``error``; None when it is not the catalogue's fault."""
    reason = reason_of(error)
    lowered = reason.lower()
    sqlstate = str(getattr(error.orig, "sqlstate", None) or "")
    if sqlstate.startswith(_PERMANENT_SQLSTATES) or (
        not is_disconnect
        and isinstance(error, OperationalError | ProgrammingError)
        and any(hint in lowered for hint in _PERMANENT)
    ):
        hint = " (run `recarchive init`?)" if _no_schema(sqlstate, lowered) else ""
        return CatalogueMisconfigured(f"catalogue {url}: {reason}{hint}")
    if (
        is_disconnect
        or sqlstate.startswith(_TRANSIENT_SQLSTATES)
        or isinstance(error, OperationalError | InterfaceError)
    ):
        return CatalogueUnavailable(f"catalogue {url}: {reason}")
    return None


def _no_schema(sqlstate: str, lowered: str) -> bool:
    return sqlstate == "42P01" or "no such table" in lowered


def reason_of(error: BaseException) -> str:
    """The driver's first line (never a statement or parameters), or the error's type."""
    orig = getattr(error, "orig", None)
    text = str(orig).strip() if orig is not None else ""
    first = text.splitlines()[0].strip() if text else ""
    return first or type(orig if orig is not None else error).__name__
