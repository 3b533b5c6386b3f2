"""The test MariaDB server (``scripts/test`` finds or starts one), holding FreePBX CDR tables.

``RECARCHIVE_TEST_MYSQL_URL`` names an account that may create databases and
users (``mysql+pymysql://root@127.0.0.1:3306/``). Without it the tests that
need the server are skipped, unless ``RECARCHIVE_TEST_REQUIRE_MYSQL=1``
(``scripts/test`` sets both) turns the skip into a failure.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

import pymysql
import pytest
from sqlalchemy.engine import make_url

MYSQL_ENV = "RECARCHIVE_TEST_MYSQL_URL"
CDR_TABLE_SQL = Path(__file__).resolve().parent / "fixtures" / "freepbx_cdr.sql"
#: Every column of FreePBX 16/17's cdr table, in its order.
CDR_COLUMNS = (
    "calldate", "clid", "src", "dst", "dcontext", "channel", "dstchannel", "lastapp",
    "lastdata", "duration", "billsec", "disposition", "amaflags", "accountcode", "uniqueid",
    "userfield", "did", "recordingfile", "cnum", "cnam", "outbound_cnum", "outbound_cnam",
    "dst_cnam", "linkedid", "peeraccount", "sequence",
)  # fmt: skip


def mysql_admin_url() -> str:
    url = os.environ.get(MYSQL_ENV)
    if not url:
        message = f"MariaDB not configured: set {MYSQL_ENV} (scripts/test does this)"
        if os.environ.get("RECARCHIVE_TEST_REQUIRE_MYSQL") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return url


class CdrDatabase:
    """A throw-away ``asteriskcdrdb``-like database with FreePBX's ``cdr`` table and a
    read-only account, on the test server."""

    def __init__(self, admin_url: str) -> None:
        url = make_url(admin_url)
        self.host = url.host or "127.0.0.1"
        self.port = url.port or 3306
        self._admin = {
            "host": self.host,
            "port": self.port,
            "user": url.username or "root",
            "password": url.password or "",
            "charset": "utf8mb4",
            "autocommit": True,
        }
        suffix = uuid.uuid4().hex[:10]
        self.name = f"recarchive_cdr_{suffix}"
        self.user = f"rcdr_{suffix}"
        self.password = secrets.token_urlsafe(24)
        with self.admin() as connection, connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4")
            cursor.execute(f"USE `{self.name}`")
            cursor.execute(CDR_TABLE_SQL.read_text(encoding="utf-8"))
            for host in ("%", "localhost"):
                # token_urlsafe: letters, digits, - and _ only, nothing to escape
                cursor.execute(
                    f"CREATE USER '{self.user}'@'{host}' IDENTIFIED BY '{self.password}'"
                )
                cursor.execute(f"GRANT SELECT ON `{self.name}`.`cdr` TO '{self.user}'@'{host}'")

    @property
    def url(self) -> str:
        """The read-only account's URL, without its password (the source's ``cdr_url``)."""
        return f"mysql+pymysql://{self.user}@{self.host}:{self.port}/{self.name}"

    def admin(self, database: str | None = None) -> pymysql.connections.Connection:
        return pymysql.connect(**self._admin, database=database)  # type: ignore[arg-type]

    def insert(self, rows: Iterable[Mapping[str, object]]) -> None:
        """Add rows (missing columns take the table's defaults); bytes go in unchanged."""
        with self.admin(self.name) as connection, connection.cursor() as cursor:
            for row in rows:
                columns = ", ".join(f"`{c}`" for c in row)
                marks = ", ".join(["%s"] * len(row))
                statement = f"INSERT INTO cdr ({columns}) VALUES ({marks})"  # noqa: S608 (columns are ours)
                cursor.execute(statement, list(row.values()))

    def load(self, sql: Path) -> None:
        """Run a file of ``INSERT`` statements (``scripts/gen_calls.py``'s ``cdr/cdr.sql``)."""
        with self.admin(self.name) as connection, connection.cursor() as cursor:
            for line in sql.read_text(encoding="utf-8").splitlines():
                if line.startswith("INSERT"):
                    cursor.execute(line.removesuffix(";"))

    def count(self) -> int:
        with self.admin(self.name) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM cdr")
            (number,) = cursor.fetchone()
            return int(number)

    def drop(self) -> None:
        with self.admin() as connection, connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{self.name}`")
            for host in ("%", "localhost"):
                cursor.execute(f"DROP USER IF EXISTS '{self.user}'@'{host}'")
