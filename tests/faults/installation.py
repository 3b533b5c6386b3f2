"""An installation for the fault tests: the demo configuration on the dedicated PostgreSQL.

The configuration is the demo's (``docs/examples/demo.toml.in``, through
:func:`tests.functional.embedded.configure`): one spool source with its
CDR, ``after_archive = "move"``, a filesystem store under ``tmp_path``
unless ``store_env`` (``tests/s3env.py``) names another.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path

from tests.functional.embedded import configure


def installation_env(
    tmp_path: Path,
    catalogue_url: str,
    *,
    spool: Path | None = None,
    store_env: Mapping[str, str] | None = None,
    **settings: str,
) -> dict[str, str]:
    """``RECARCHIVE_*`` settings of an installation under ``tmp_path`` on ``catalogue_url``.

    Without ``spool`` an empty spool is made. ``settings`` are further
    variables, e.g. ``RECARCHIVE_INGEST_POLL_INTERVAL_S="1"``. For S3 a
    bucket of its own is named; ``recarchive init`` creates it.
    """
    if spool is None:
        spool = tmp_path / "pbx"
        (spool / "monitor").mkdir(parents=True, exist_ok=True)
        (spool / "cdr").mkdir(exist_ok=True)
        (spool / "cdr" / "Master.csv").touch()
    env = configure(tmp_path, spool)
    env["RECARCHIVE_CATALOGUE_URL"] = catalogue_url
    env["RECARCHIVE_GENERAL_LOG_FORMAT"] = "json"
    if store_env:
        env.update(store_env)
        if env.get("RECARCHIVE_STORAGE_BACKEND") == "s3":
            env.setdefault("RECARCHIVE_S3_BUCKET", f"recarchive-faults-{uuid.uuid4().hex[:12]}")
    env.update(settings)
    return env
