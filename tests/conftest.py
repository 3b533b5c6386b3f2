"""Fixtures shared by every test layer.

Catalogue fixtures are parametrised over SQLite and PostgreSQL: a test that
takes ``engine`` runs on both. PostgreSQL comes from
``RECARCHIVE_TEST_POSTGRES_URL`` (an account that may create databases);
each test module gets a fresh database cloned from a migrated template.
Without that variable the PostgreSQL runs are skipped, unless
``RECARCHIVE_TEST_REQUIRE_POSTGRES=1`` (set by ``scripts/test``) turns the skip
into a failure.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from recarchive.catalogue.database import create_catalogue_engine, session_factory
from recarchive.catalogue.migrate import upgrade_schema
from recarchive.composition import compose
from tests import logscan
from tests.logscan import LogScan
from tests.oidc_provider import OidcProvider, node_or_skip, run_provider
from tests.tsa import Tsa, run_tsa

POSTGRES_ENV = "RECARCHIVE_TEST_POSTGRES_URL"
REPO = Path(__file__).resolve().parent.parent


def require_ffmpeg() -> None:
    """Skip without ffmpeg/ffprobe, or fail when RECARCHIVE_TEST_REQUIRE_FFMPEG=1 (scripts/test)."""
    if shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None:
        return
    message = "ffmpeg/ffprobe not installed (Debian's ffmpeg; scripts/test installs it)"
    if os.environ.get("RECARCHIVE_TEST_REQUIRE_FFMPEG") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _require(service: str, variable: str, hint: str) -> None:
    message = f"{service} not configured: set {variable} ({hint})"
    if os.environ.get(f"RECARCHIVE_TEST_REQUIRE_{service.upper()}") == "1":
        pytest.fail(message)
    pytest.skip(message)


def postgres_admin_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        _require("postgres", POSTGRES_ENV, "scripts/test does this")
    return str(url)


class PostgresDatabases:
    """Creates throw-away databases on the test server, cloned from one template."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = make_url(admin_url).set(drivername="postgresql+psycopg")
        self.admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        self.template: str | None = None
        self.created: list[str] = []

    def url_for(self, name: str) -> str:
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def create(self, *, migrated: bool = True) -> str:
        name = f"recarchive_test_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as connection:
            if migrated:
                connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self._template()}"'))
            else:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return self.url_for(name)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def _template(self) -> str:
        if self.template is None:
            name = f"recarchive_template_{uuid.uuid4().hex[:12]}"
            with self.admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            self.created.append(name)
            engine = create_catalogue_engine(self.url_for(name))
            upgrade_schema(engine)
            engine.dispose()
            self.template = name
        return self.template

    def close(self) -> None:
        with self.admin.connect() as connection:
            for name in self.created:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases(postgres_admin_url())
    yield databases
    databases.close()


def _catalogue_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, *, migrated: bool
) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("catalogue") / "recarchive.db"
        url = f"sqlite:///{path}"
        if migrated:
            engine = create_catalogue_engine(url)
            upgrade_schema(engine)
            engine.dispose()
        yield url
    else:
        databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
        url = databases.create(migrated=migrated)
        yield url
        databases.drop(url)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def catalogue_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """URL of a migrated catalogue, fresh for each test module and backend."""
    yield from _catalogue_url(request, tmp_path_factory, migrated=True)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_catalogue_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """URL of an empty database (no schema), fresh for each test and backend."""
    yield from _catalogue_url(request, tmp_path_factory, migrated=False)


@pytest.fixture(scope="module")
def engine(catalogue_url: str) -> Iterator[Engine]:
    engine = create_catalogue_engine(catalogue_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    """Node's certified oidc-provider on a free 127.0.0.1 port, for the whole run
    (:mod:`tests.oidc_provider`); skipped only when node is missing, unless
    ``RECARCHIVE_TEST_REQUIRE_OIDC=1`` (set by ``scripts/test``) makes that a failure."""
    node = node_or_skip()
    with run_provider(node, tmp_path_factory.mktemp("oidc-provider")) as provider:
        yield provider


@pytest.fixture(scope="session")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tsa]:
    """A real RFC 3161 time-stamping authority (OpenSSL's ``ts`` behind HTTP) on a free
    127.0.0.1 port, for the whole run of this worker (:mod:`tests.tsa`)."""
    with run_tsa(tmp_path_factory.mktemp("tsa")) as running:
        yield running


@pytest.fixture(scope="session", autouse=True)
def _composed() -> None:
    """The test process is composed as the CLI and the API compose theirs (events' handlers),
    so that tests calling services directly see what the entry points see."""
    compose()


# --- no personal data in log lines -----------------------------------------------

#: Tests whose log lines must hold no personal data (the API and the CLI); a path prefix
#: relative to the repository. Lines logged elsewhere are scanned but not held against them.
LOG_SCANNED = (
    "tests/integration/test_api",
    "tests/unit/api/",
    "tests/functional/",
    "tests/faults/",
    "tests/unit/test_logscan",
)


@pytest.fixture(scope="session", autouse=True)
def _log_scan() -> Iterator[LogScan]:
    """Every log record of the session goes through :data:`tests.logscan.SESSION`.

    recarchive's loggers are opened to DEBUG so that their records exist to be
    scanned (the handler keeps no record, only what it finds).
    """
    root, ours = logging.getLogger(), logging.getLogger("recarchive")
    level = ours.level
    root.addHandler(logscan.SESSION)
    ours.setLevel(logging.DEBUG)
    yield logscan.SESSION
    ours.setLevel(level)
    root.removeHandler(logscan.SESSION)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """A CLI run in-process points recarchive's log handler at CliRunner's stderr and sets
    the command's level (warnings only, for most): put both back after every test."""
    logger = logging.getLogger("recarchive")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    try:
        yield
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved


@pytest.fixture(autouse=True)
def _no_personal_data_logged(request: pytest.FixtureRequest, _log_scan: LogScan) -> Iterator[None]:
    """Fail an API or CLI test when a log line (since the last check) holds personal data."""
    yield
    findings = _log_scan.take()
    relative = Path(str(request.node.path)).relative_to(REPO).as_posix()
    if findings and relative.startswith(LOG_SCANNED):
        pytest.fail(logscan.report(findings), pytrace=False)
