"""The HTTP API assembled: device state, latest values, time series and compliance exports
for the people who use them, and the police endpoints when the alerts subsystem runs.

Each concern's endpoints are a module-level router (telemetry, exports, police); this
module puts what they reach on `app.state` (collector/api/context.py), includes them, and
serves the app beside the ingest. Bearer tokens carry a role (collector/api/users.py).
OpenAPI documentation is at /docs.
"""

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from collector.api import exports, police, telemetry
from collector.api.context import ApiContext
from collector.api.users import Users
from collector.config import CollectorConfig
from collector.police.service import Police
from collector.stores.base import Store, StoreUnavailableError

log = logging.getLogger(__name__)


def _store_down(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": f"the store is unavailable: {exc}"}, status_code=503)


def build_app(
    store: Store,
    users: Users,
    settings: CollectorConfig,
    police_service: Police | None = None,
    stop: asyncio.Event | None = None,
) -> FastAPI:
    """The app; `stop` ends the long-lived responses (the alert stream) when the
    collector stops, so shutting down does not wait on a console left open."""
    app = FastAPI(
        title="Phu Quoc telemetry",
        description="Device state and time series from the operations center's collector.",
    )
    app.state.context = ApiContext(store, users, settings, police_service, stop or asyncio.Event())
    app.add_exception_handler(StoreUnavailableError, _store_down)
    app.include_router(telemetry.router)
    app.include_router(exports.router)
    if police_service is not None:
        app.include_router(police.router)
    return app


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """The collector owns SIGTERM and SIGINT; it stops the server itself."""
        yield


async def serve_api(
    settings: CollectorConfig,
    store: Store,
    users: Users,
    police_service: Police | None,
    stop: asyncio.Event,
) -> None:
    if settings.api is None:
        raise ValueError("serve_api needs a config with an api section")
    host, port = settings.api.host, settings.api.port
    app = build_app(store, users, settings, police_service, stop)
    # A request still running this long after the collector was told to stop is cut.
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=10
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve())
    log.info("API on http://%s:%d (documentation at /docs)", host, port)
    await stop.wait()
    server.should_exit = True
    await serving
