"""The HTTP API assembled: device state, latest values, time series and compliance exports
for the people who use them, and the police endpoints when the alerts subsystem runs.

Each concern's endpoints are a module-level router (telemetry, exports, police); this
module puts what they reach on `app.state` (collector/api/context.py), includes them, puts
the guard in front of them (collector/api/guard.py: token first, bounded bodies) and serves
the app beside the ingest, over https when the api section names a certificate. Bearer
tokens carry a role (collector/api/users.py). The OpenAPI document is at /openapi.json,
/docs and /redoc, for whom `api.docs` says.
"""

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from collector.alarms.book import AlarmBook
from collector.api import (
    alarms,
    dispatch,
    exports,
    photos,
    plate_search,
    police,
    sign_in,
    telemetry,
    wall,
)
from collector.api.context import ApiContext
from collector.api.guard import RequestGuard
from collector.api.offline_docs import add_offline_docs, static_files
from collector.api.releases import RELEASES_PATH, release_files
from collector.api.texts import Refusal, language_of, refused, translated
from collector.api.users import Users
from collector.compliance.limits import configured_limits
from collector.config import ApiSettings, CollectorConfig
from collector.police.service import Police
from collector.query import QueryError
from collector.stores.base import Store, StoreUnavailableError
from collector.wall.environment import EnvironmentView
from collector.wall.live import LiveFeed
from iotruntime.i18n import N_

log = logging.getLogger(__name__)
DOCS_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})


def _store_down(request: Request, exc: Exception) -> JSONResponse:
    detail = translated(
        N_("the store is unavailable: {why}"), language_of(request.headers), why=exc
    )
    return JSONResponse({"detail": detail}, status_code=503)


def _bad_question(_: Request, exc: Exception) -> JSONResponse:
    """A filter, time or window the query model refused (collector/query.py): the
    client's mistake, said at once, before any store is asked."""
    return JSONResponse({"detail": str(exc)}, status_code=422)


def _api_settings(settings: CollectorConfig) -> ApiSettings:
    if settings.api is None:
        raise ValueError("the API needs a config with an api section")
    return settings.api


def build_app(
    store: Store,
    users: Users,
    settings: CollectorConfig,
    police_service: Police | None = None,
    stop: asyncio.Event | None = None,
    alarm_book: AlarmBook | None = None,
    live: LiveFeed | None = None,
) -> FastAPI:
    """The app; `stop` ends the long-lived responses (the alert stream) when the
    collector stops, so shutting down does not wait on a console left open. The alarm
    endpoints come with `alarm_book`, kept on `app.state.alarms`; the wall's stream
    listens to `live`, which the ingest feeds (one that nothing feeds when not given)."""
    api = _api_settings(settings)
    documented = api.docs != "off"
    app = FastAPI(
        title="Phu Quoc telemetry",
        description="Device state and time series from the operations center's collector.",
        openapi_url="/openapi.json" if documented else None,
        docs_url=None,
        redoc_url=None,
    )
    if documented:
        add_offline_docs(app)
    app.mount("/wall/static", static_files(), name="wall-static")
    if (releases := release_files(settings)) is not None:
        app.mount(RELEASES_PATH, releases, name="releases")
    app.state.context = ApiContext(store, users, settings, police_service, stop or asyncio.Event())
    app.add_exception_handler(Refusal, refused)
    app.add_exception_handler(StoreUnavailableError, _store_down)
    app.add_exception_handler(QueryError, _bad_question)
    app.add_middleware(
        RequestGuard,
        users=users,
        max_body_bytes=api.max_body_mb * 1024 * 1024,
        open_paths=DOCS_PATHS if api.docs == "public" else frozenset(),
    )
    app.state.live = live or LiveFeed(store, settings, police=police_service, alarms=alarm_book)
    app.state.environment = EnvironmentView(store, settings, configured_limits(settings))
    app.state.sign_in_failures = sign_in.Failures()
    app.include_router(sign_in.router)
    app.include_router(wall.router)
    app.include_router(telemetry.router)
    app.include_router(exports.router)
    if alarm_book is not None:
        app.state.alarms = alarm_book
        app.include_router(alarms.router)
    if police_service is not None:
        app.include_router(police.router)
        app.include_router(plate_search.router)
        app.include_router(dispatch.router)
        app.include_router(photos.router)
    return app


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """The collector owns SIGTERM and SIGINT; it stops the server itself."""
        yield


def _server_config(app: FastAPI, api: ApiSettings) -> uvicorn.Config:
    """uvicorn's config; `collector run` has checked the certificate and key already, so
    a pair that cannot be used stops it before anything starts (collector/cli/run.py)."""
    return uvicorn.Config(
        app,
        host=api.host,
        port=api.port,
        log_level="warning",
        # A request still running this long after the collector was told to stop is cut.
        timeout_graceful_shutdown=10,
        ssl_certfile=api.tls_cert,
        ssl_keyfile=api.tls_key,
    )


async def serve_api(
    settings: CollectorConfig,
    store: Store,
    users: Users,
    police_service: Police | None,
    stop: asyncio.Event,
    alarm_book: AlarmBook | None = None,
    live: LiveFeed | None = None,
) -> None:
    api = _api_settings(settings)
    app = build_app(store, users, settings, police_service, stop, alarm_book, live)
    server = _Server(_server_config(app, api))
    serving = asyncio.create_task(server.serve())
    feeding = asyncio.create_task(app.state.live.run(stop))
    base = f"{api.scheme}://{api.host}:{api.port}"
    log.info("API on %s (documentation: %s); the wall at %s/wall", base, api.docs, base)
    await stop.wait()
    server.should_exit = True
    await serving
    await feeding
