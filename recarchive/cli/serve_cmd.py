"""``recarchive serve``: the lookup API and the web player."""

from __future__ import annotations

import click

from recarchive.catalogue.migrate import require_current_schema
from recarchive.cli.common import AppContext, pass_app
from recarchive.errors import ConfigError


def split_bind(bind: str) -> tuple[str, int]:
    host, _, port_text = bind.rpartition(":")
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not host or not 0 < port < 65536:
        raise ConfigError(f"bind address {bind!r}: give HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), port


@click.command("serve")
@click.option(
    "--bind",
    metavar="HOST:PORT",
    help="Address to listen on (default: api.bind, 127.0.0.1:8080).",
)
@pass_app
def serve_command(app: AppContext, bind: str | None) -> None:
    """Serve the lookup API (/api/v1, /openapi.json) and the web player until stopped.

    One process with a thread pool; run several behind a proxy on PostgreSQL
    for more. SIGTERM or Ctrl-C finishes the requests in hand and exits.
    """
    import uvicorn

    from recarchive.api.app import create_app

    host, port = split_bind(bind or app.settings.api.bind)
    runtime = app.runtime
    require_current_schema(runtime.engine)
    runtime.store.check()
    click.echo(f"recarchive serving on http://{host}:{port}/ (API /api/v1, player /)", err=True)
    uvicorn.run(
        create_app(runtime),
        host=host,
        port=port,
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
