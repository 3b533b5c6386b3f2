"""FastAPI dependencies: the runtime, the caller, and the caller's address."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from recarchive.access.services import Principal
from recarchive.api.auth import TokenCache, credentials, principal_for, session_principal
from recarchive.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    """The runtime, once its catalogue is checked to be the one opened (503 otherwise).

    Every route that reads or changes the catalogue takes it (directly or
    through the caller's principal), so nothing is served from a catalogue
    that vanished or was replaced; the check is one ``os.stat`` on SQLite.
    """
    runtime: Runtime = request.app.state.runtime
    runtime.check_catalogue()
    return runtime


def get_cache(request: Request) -> TokenCache:
    cache: TokenCache = request.app.state.token_cache
    return cache


async def get_principal(request: Request) -> Principal:
    """The authenticated caller; 401 (:class:`Unauthenticated`) otherwise.

    Kept in ``request.state.principal`` so that a refusal (403) further on
    can name who was refused.
    """
    kind, secret = credentials(request)
    if kind == "session":
        principal = await run_in_threadpool(lambda: session_principal(get_runtime(request), secret))
    else:
        cache = get_cache(request)
        cached = cache.get(secret)
        if cached is not None:
            principal = cached  # every route that reads the catalogue checks it (RuntimeDep)
        else:  # in the thread pool: the catalogue check may re-read the installation id
            principal = await run_in_threadpool(
                lambda: principal_for(get_runtime(request), cache, secret)
            )
    request.state.principal = principal
    return principal


def client_addr(request: Request) -> str | None:
    """The client's address: the peer, or what a trusted proxy says (:mod:`.proxies`)."""
    return request.client.host if request.client else None


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
CacheDep = Annotated[TokenCache, Depends(get_cache)]
ClientDep = Annotated[str | None, Depends(client_addr)]
