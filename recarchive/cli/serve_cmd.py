"""``recarchive serve``: the lookup API and the web player."""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
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
from recarchive.retention.deletion_record import check_deletions_replayed
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


def bind_listener(host: str, port: int) -> socket.socket:
    """A socket bound to HOST:PORT for uvicorn, or one line saying why it cannot be.

    Bound before ``serve`` says it serves: a port in use (another server, or
    a ``serve`` still running) is one ``Error:`` line and exit status 1,
    never "serving on …" followed by uvicorn's own failure.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        hint = " (is another server running there?)" if exc.errno == 98 else ""
        raise ConfigError(f"cannot listen on {host}:{port}: {reason.lower()}{hint}") from None
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)  # the worker processes of --workers serve from it
    return sock


def _startup_check(runtime: Runtime) -> bool:
    """Check the schema, the catalogue and the store; False when one cannot be reached now.

    A catalogue or store that is down when ``serve`` starts (a host booting
    before its database) does not stop it: it listens and answers 503 until
    they are back (:class:`~recarchive.api.app._Ready`). What waiting does
    not cure (an outdated schema, refused credentials, a catalogue restored
    from a backup whose later deletions ``recarchive restore-check`` has not
    replayed) stops it here.
    """
    from recarchive.api.app import startup_check

    try:
        startup_check(runtime)
        runtime.store.check()
        check_deletions_replayed(runtime)  # a restored catalogue must forget its erasures not
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
        # SIGTERM: requests in hand get a second to finish, then what is
        # still being sent is cut (a paused player's audio stream would
        # otherwise hold the stop for the whole timeout; the player resumes
        # it with a Range request). An idle server stops at once.
        "timeout_graceful_shutdown": 1,
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
    on the same address. A port in use is one line and exit status 1.
    SIGTERM or Ctrl-C gives the requests in hand a second to finish (what
    is still being sent then, such as a paused player's stream, is cut) and
    exits; an idle server exits at once.
    """
    import uvicorn

    from recarchive.api.app import create_app, settle_heap, startup_check
    from recarchive.api.metrics import MULTIPROCESS_ENV

    app.run_as_service()
    host, port = split_bind(bind or app.settings.api.bind)
    processes = workers or app.settings.api.workers
    listener = bind_listener(host, port)  # first: a port in use is the first thing to say
    try:
        runtime = app.runtime
        ready = _startup_check(runtime)
    except BaseException:
        listener.close()
        raise
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
        server = uvicorn.Server(uvicorn.Config(application, **options))
        server.run(sockets=[listener])
        if not server.started:
            raise click.ClickException("the server did not start: see the log above")
        return
    runtime.close()
    if app.config_file:  # the worker processes read the same settings
        os.environ[CONFIG_ENV] = str(Path(app.config_file).resolve())
    work = app.settings.work_dir
    make_private_dir(work)
    with tempfile.TemporaryDirectory(prefix="metrics-", dir=work) as metrics_dir:
        os.environ[MULTIPROCESS_ENV] = metrics_dir
        config = uvicorn.Config(
            "recarchive.api.app:create_app_from_environment",
            factory=True,
            workers=processes,
            **options,
        )
        _prompt_supervisor(config, [listener]).run()


def _prompt_supervisor(config: Any, sockets: list[socket.socket]) -> Any:
    """uvicorn's supervisor of worker processes, stopping as soon as SIGTERM or SIGINT come.

    uvicorn's own looks at its signals every half second; this one is woken
    by them, so that an idle ``serve --workers N`` stops well within a second.
    """
    from uvicorn.supervisors import Multiprocess

    supervisor = Multiprocess(config, sockets=sockets)

    def stop(signum: int, _frame: Any) -> None:
        supervisor.signal_queue.append(signum)
        supervisor.should_exit.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    return supervisor
