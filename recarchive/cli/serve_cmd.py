"""``recarchive serve``: the lookup API and the web player."""

from __future__ import annotations

import functools
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import click

from recarchive.cli.common import AppContext, pass_app
from recarchive.config import CONFIG_ENV
from recarchive.errors import (
    CatalogueReplaced,
    CatalogueUnavailable,
    ConfigError,
    StoreUnavailable,
)
from recarchive.private_files import make_private_dir
from recarchive.runtime import Runtime

logger = logging.getLogger(__name__)


def split_bind(bind: str) -> tuple[str, int]:
    host, _, port_text = bind.rpartition(":")
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not host or not 0 < port < 65536:
        raise ConfigError(f"bind address {bind!r}: give HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), port


def _startup_check(runtime: Runtime) -> bool:
    """Check the schema, the catalogue and the store; False when one cannot be reached now.

    A catalogue or store that is down when ``serve`` starts (a host booting
    before its database) does not stop it: it listens and answers 503 until
    they are back (:class:`~recarchive.api.app._Ready`). What waiting does
    not cure (an outdated schema, refused credentials) stops it here.
    """
    from recarchive.api.app import startup_check

    try:
        startup_check(runtime)
        runtime.store.check()
    except CatalogueReplaced:
        raise
    except (CatalogueUnavailable, StoreUnavailable) as exc:
        logger.error("paused", extra={"task": "serve", "error": exc.message})
        click.echo(f"warning: {exc.message}; answering 503 until it is back", err=True)
        return False
    return True


def uvicorn_options(host: str, port: int) -> dict[str, Any]:
    """How ``serve`` runs uvicorn (one process or several)."""
    return {
        "host": host,
        "port": port,
        "access_log": False,
        "log_config": None,
        "server_header": False,
        "timeout_graceful_shutdown": 10,
        # uvicorn would believe X-Forwarded-For and -Proto from loopback
        # (forwarded_allow_ips); recarchive.api.proxies decides, from
        # api.trusted_proxies only.
        "proxy_headers": False,
    }


@click.command("serve")
@click.option(
    "--bind",
    metavar="HOST:PORT",
    help="Address to listen on (default: api.bind, 127.0.0.1:8080).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="API processes (default: api.workers, 1); about one per CPU core.",
)
@pass_app
def serve_command(app: AppContext, bind: str | None, workers: int | None) -> None:
    """Serve the lookup API (/api/v1, /openapi.json) and the web player until stopped.

    Each process answers requests from a thread pool; --workers runs several
    on the same address. SIGTERM or Ctrl-C finishes the requests in hand
    and exits.
    """
    import uvicorn

    from recarchive.api.app import create_app, settle_heap, startup_check
    from recarchive.api.metrics import MULTIPROCESS_ENV

    host, port = split_bind(bind or app.settings.api.bind)
    processes = workers or app.settings.api.workers
    runtime = app.runtime
    ready = _startup_check(runtime)
    click.echo(
        f"recarchive serving on http://{host}:{port}/ (API /api/v1, player /), "
        f"{processes} process(es)",
        err=True,
    )
    options = uvicorn_options(host, port)
    if processes == 1:
        pending = None if ready else functools.partial(startup_check, runtime)
        application = create_app(runtime, pending_check=pending)
        settle_heap()
        uvicorn.run(application, **options)
        return
    runtime.close()
    if app.config_file:  # the worker processes read the same settings
        os.environ[CONFIG_ENV] = str(Path(app.config_file).resolve())
    work = app.settings.work_dir
    make_private_dir(work)
    with tempfile.TemporaryDirectory(prefix="metrics-", dir=work) as metrics_dir:
        os.environ[MULTIPROCESS_ENV] = metrics_dir
        uvicorn.run(
            "recarchive.api.app:create_app_from_environment",
            factory=True,
            workers=processes,
            **options,
        )
