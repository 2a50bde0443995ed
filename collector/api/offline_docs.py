"""/docs and /redoc without the internet: Swagger UI and Redoc from the collector itself.

FastAPI's own /docs and /redoc pages load their scripts, styles, favicon and (Redoc) Google
Fonts from CDNs, so in the operations center or on a technician's laptop without internet
they show a blank page. These routes serve the same pages pointed at the copies vendored
in collector/wall/static/vendor/ (scripts/vendor_web_assets.py, MANIFEST.json there),
which `static_files()` serves at /wall/static. Swagger UI's online validator is turned off
too: it would send the document to validator.swagger.io.

Wiring, in build_app: `FastAPI(..., docs_url=None, redoc_url=None)` (openapi_url as
before), then `add_offline_docs(app)` and `app.mount(STATIC_PATH, static_files(),
name=STATIC_NAME)`.
"""

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

import collector.wall

STATIC_DIR = Path(collector.wall.__file__).resolve().parent / "static"
STATIC_PATH = "/wall/static"
STATIC_NAME = "wall-static"
VENDOR_PATH = f"{STATIC_PATH}/vendor"
DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"

SWAGGER_JS = f"{VENDOR_PATH}/swagger-ui-bundle.js"
SWAGGER_CSS = f"{VENDOR_PATH}/swagger-ui.css"
REDOC_JS = f"{VENDOR_PATH}/redoc.standalone.js"
FAVICON = f"{VENDOR_PATH}/favicon-32x32.png"
# No badge asking validator.swagger.io about the document: offline it fails, online it
# would hand a third party the list of every endpoint.
OFFLINE_SWAGGER_PARAMETERS = {"validatorUrl": None}


def static_files() -> StaticFiles:
    """collector/wall/static, to mount at STATIC_PATH: the wall's pages' scripts and styles
    and the vendored assets the documentation pages load."""
    return StaticFiles(directory=STATIC_DIR)


def _root(request: Request) -> str:
    """The path prefix the app is served under (a reverse proxy's, `root_path`)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def add_offline_docs(app: FastAPI) -> None:
    """Register /docs (with its OAuth2 redirect) and /redoc on an app made with
    docs_url=None and redoc_url=None, as FastAPI would, but with local assets. Nothing is
    registered when the app has no OpenAPI document (openapi_url=None: `api.docs: off`).
    """
    openapi_url = app.openapi_url
    if openapi_url is None:
        return
    redirect_url = app.swagger_ui_oauth2_redirect_url

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=root + SWAGGER_JS,
            swagger_css_url=root + SWAGGER_CSS,
            swagger_favicon_url=root + FAVICON,
            oauth2_redirect_url=root + redirect_url if redirect_url else None,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters={
                **OFFLINE_SWAGGER_PARAMETERS,
                **(app.swagger_ui_parameters or {}),
            },
        )

    async def swagger_ui_redirect(_: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=root + REDOC_JS,
            redoc_favicon_url=root + FAVICON,
            with_google_fonts=False,
        )

    app.add_route(DOCS_PATH, swagger_ui, include_in_schema=False)
    if redirect_url:
        app.add_route(redirect_url, swagger_ui_redirect, include_in_schema=False)
    app.add_route(REDOC_PATH, redoc, include_in_schema=False)
