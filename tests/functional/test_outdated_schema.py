"""A catalogue left at an older schema (recarchive upgraded, `init` not yet run).

Ingest stops at once with one line that names both revisions and the
command to run, instead of pausing as for an outage on every statement that
names a newer column; nothing is queued meanwhile.
After `recarchive init` the same spool is archived.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from alembic import command

from recarchive.catalogue.database import create_catalogue_engine
from recarchive.catalogue.migrate import MIGRATIONS_DIR, alembic_config
from recarchive.catalogue.revision import shipped_head
from tests.functional.conftest import CommandRunner
from tests.functional.embedded import configure, generate, invoke

OLDER = "0014"


def older_catalogue(path: Path) -> None:
    """A catalogue at revision :data:`OLDER`, as an earlier recarchive left it."""
    [script] = MIGRATIONS_DIR.glob(f"versions/{OLDER}_*.py")
    found = re.search(r'^revision\s*=\s*"([^"]+)"', script.read_text(encoding="utf-8"), re.M)
    assert found is not None
    engine = create_catalogue_engine(f"sqlite:///{path}")
    config = alembic_config()
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            config.attributes["identity_hash_key"] = "k" * 32
            config.attributes["audit_key"] = "a" * 32
            command.upgrade(config, found.group(1))
    finally:
        engine.dispose()


def test_ingest_refuses_an_outdated_schema_until_init(
    run_cli: CommandRunner, tmp_path: Path
) -> None:
    spool = tmp_path / "pbx"
    manifest = generate(spool, 3)
    env = {**configure(tmp_path, spool), "RECARCHIVE_ENCRYPTION_ENABLED": "false"}
    data = tmp_path / "install" / "var"
    data.mkdir(parents=True)
    older_catalogue(data / "recarchive.db")
    (data / "objects" / ".recarchive" / "tmp").mkdir(parents=True)
    (data / "objects" / ".recarchive" / "meta").mkdir()

    ingest = run_cli("ingest", "--once", env=env)
    assert ingest.returncode == 1
    expected = (
        f"is at schema {OLDER}, this recarchive needs {shipped_head()}: run `recarchive init`"
    )
    assert expected in ingest.stderr
    with sqlite3.connect(data / "recarchive.db") as db:
        assert db.execute("select count(*) from work_items").fetchone() == (0,)

    assert invoke(env, "init").exit_code == 0
    again = invoke(env, "ingest", "--once", "--json")
    assert again.exit_code == 0, again.output
    archived = sum(1 for call in manifest["calls"] if call["expected"] == "archived")
    assert json.loads(again.stdout)["archived"] == archived
