"""``/docs``: the OpenAPI document in Swagger UI, served from files installed with recarchive.

Swagger UI's distribution files come from the ``fastapi-offline`` package
(Swagger UI 5.32.6 in the version pinned in ``pyproject.toml``), not from a
CDN: no third-party script runs on the origin whose cookie opens the API.
(``swagger-ui-bundle`` ships Swagger UI 4.15, which cannot read the OpenAPI
3.1 document FastAPI writes.) The page loads two scripts, both from this
server (the bundle and ``static/docs.js``, which starts it), under the web
player's Content-Security-Policy; the only difference is that ``data:``
images are allowed, which Swagger UI's stylesheet uses for its icons.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates

from recarchive import __version__
from recarchive.api.player import CONTENT_SECURITY_POLICY

_HERE = Path(__file__).resolve().parent
#: The files of the Swagger UI distribution the page uses; nothing else of it is served.
ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
#: Where the installed package keeps them.
_DIST = importlib.resources.files("fastapi_offline") / "static"
DOCS_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY.replace(
    "img-src 'self'", "img-src 'self' data:"
)

router = APIRouter(tags=["docs"], include_in_schema=False)
templates = Jinja2Templates(directory=_HERE / "templates")


@router.get("/docs", response_class=HTMLResponse)
def docs_page(request: Request) -> HTMLResponse:
    """Swagger UI over ``/openapi.json``."""
    return templates.TemplateResponse(
        request,
        "docs.html",
        {"version": __version__},
        headers={
            "Content-Security-Policy": DOCS_CONTENT_SECURITY_POLICY,
            "Cache-Control": "no-store",
            "Referrer-Policy": "same-origin",
        },
    )


@router.get("/docs/assets/{name}")
def docs_asset(name: str) -> FileResponse:
    """One file of the installed Swagger UI distribution (:data:`ASSETS`)."""
    if name not in ASSETS:
        raise HTTPException(404, "no such file")
    path = Path(str(_DIST / name))
    return FileResponse(
        path, media_type=ASSETS[name], headers={"Cache-Control": "public, max-age=86400"}
    )
