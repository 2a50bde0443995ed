"""`collector run`: the ingest with everything that runs beside it (commit process,
maintenance, police deliveries and retention, station data files, API, metrics), until
stopped."""

import asyncio
import logging
import signal
import sqlite3
import ssl
import threading
from collections.abc import Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Annotated
from wsgiref.simple_server import WSGIServer

import typer

from collector.alarms.service import Alarms
from collector.api.users import Users
from collector.arrivals import Arrival
from collector.cli.common import ConfigOption, settings_of
from collector.cli.limits import limits_of
from collector.compliance.limits import LimitTable
from collector.config import (
    AlarmSettings,
    AlertSettings,
    CollectorConfig,
    MetricsSettings,
    Tt10Settings,
)
from collector.exports.tt10 import Tt10Writer
from collector.fleet.registry import Registry
from collector.i18n import _
from collector.ingest.commit_process import CommitProcess, CommitProcessError
from collector.ingest.committer import Committer
from collector.ingest.session import Ingest
from collector.ingest.spool import Spool
from collector.metrics import serve_metrics
from collector.police.database import PoliceDbError
from collector.police.dispatch import escalate_periodically
from collector.police.retention import purge_periodically
from collector.police.service import Police, open_police
from collector.stores import Store, open_store
from collector.stores.maintenance import maintain
from collector.tt10.ledger import Ledger
from collector.tt10.upload import Tt10Uploader, password_of
from collector.wall.live import LiveFeed
from iotruntime.configfile import ConfigError
from iotruntime.console import fail
from iotruntime.logs import configure_logging
from iotruntime.systemd import supervise


def _open_police(settings: AlertSettings, registry: Registry | None) -> Police:
    """The police database and the webhook secrets, or one line saying which is wrong."""
    try:
        return open_police(settings, registry)
    except (PoliceDbError, OSError) as exc:
        raise fail(exc) from None


def _commit_process(config: Path, log_level: str) -> CommitProcess:
    try:
        return CommitProcess(config, log_level)
    except CommitProcessError as exc:
        raise fail(exc) from None


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _stop_on_signals(requested: threading.Event) -> None:
    """SIGTERM and SIGINT ask for a stop whenever they come: while the collector starts,
    before its event loop takes them over, and while it closes down after the loop has
    given them back. A stop is a clean exit, whatever the store went through."""

    def ask(signum: int, frame: FrameType | None) -> None:
        requested.set()

    for sig in STOP_SIGNALS:
        signal.signal(sig, ask)


RUN_HELP = _("Subscribe to every device and store what arrives, until stopped.")


def run(
    config: ConfigOption,
    log_level: Annotated[str, typer.Option(help=_("debug, info, warning or error"))] = "info",
) -> None:
    configure_logging(log_level)
    stop_requested = threading.Event()
    _stop_on_signals(stop_requested)
    settings = settings_of(config)
    limits = limits_of(settings)  # a broken site limits file stops the start, not an export
    store = open_store(settings)
    spool = Spool(settings.ingest.spool_path) if settings.ingest.spool_path else None
    registry = Registry(settings.registry.path) if settings.registry else None
    police = _open_police(settings.alerts, registry) if settings.alerts else None
    committer = (
        _commit_process(config, log_level)
        if settings.ingest.commit_process
        else Committer(store, settings.broker.topic_prefix)
    )
    serve_api = _api_server() if settings.api else None
    alarms = (
        _alarms(config, settings, settings.alarms, store, limits, registry)
        if settings.alarms
        else None
    )
    live = (
        LiveFeed(store, settings, registry, police, alarms.book if alarms else None)
        if settings.api
        else None
    )
    committed: list[Callable[[list[Arrival]], None]] = []  # who hears each commit
    if live is not None:
        committed.append(live.committed)
    if alarms is not None and alarms.health is not None:
        committed.append(alarms.health.committed)
    ingest = Ingest(settings.broker, settings.ingest, committer, spool, police, committed)
    silent_after = timedelta(seconds=settings.ingest.silent_after_s)
    for name, section in (("api", settings.api), ("metrics", settings.metrics)):
        if section is not None and section.tls_cert is not None and section.tls_key is not None:
            _usable_certificate(name, section.tls_cert, section.tls_key)
    users = Users(settings.api.users_path) if settings.api else None
    metrics = (
        _metrics_server(settings.metrics, ingest, store, spool, silent_after, police, alarms)
        if settings.metrics
        else None
    )
    uploader = _tt10_uploader(config, settings.tt10) if settings.tt10 is not None else None

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, stop.set)
        if stop_requested.is_set():
            stop.set()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(supervise(stop))
            tasks.create_task(maintain(store, settings.retention, stop))
            if settings.tt10 is not None:
                writer = Tt10Writer(store, settings.tt10, settings.stations, settings.export.zone)
                tasks.create_task(writer.run(stop))
            if uploader is not None:
                tasks.create_task(uploader.run(stop))
            if police is not None:
                alerts = police.settings
                tasks.create_task(
                    purge_periodically(
                        police.db, alerts.reads_days, alerts.alerts_days, alerts.purge_every_s, stop
                    )
                )
                for webhook in police.webhooks:
                    tasks.create_task(webhook.run(stop))
                if alerts.units and police.dispatches is not None:
                    tasks.create_task(
                        escalate_periodically(
                            police.dispatches, alerts.escalate_after_s, police.wakeup, stop
                        )
                    )
            if alarms is not None:
                tasks.create_task(alarms.run(stop))
            if serve_api is not None and users is not None:
                book = alarms.book if alarms is not None else None
                tasks.create_task(serve_api(settings, store, users, police, stop, book, live))
            await ingest.run(stop)
        s = ingest.stats
        logging.info(
            "stopped: %d received, %d stored, %d duplicate, %d invalid, %d spooled",
            s.received,
            s.stored_messages,
            s.duplicates,
            sum(s.invalid.values()),
            s.spooled,
        )

    try:
        asyncio.run(main())
    finally:
        _stop_on_signals(stop_requested)
        if isinstance(committer, CommitProcess):
            committer.close()
        if metrics is not None:
            metrics.shutdown()
        if spool is not None:
            spool.close()
        if police is not None:
            police.close()
        if alarms is not None:
            alarms.close()
        if registry is not None:
            registry.close()
        if users is not None:
            users.close()
        if uploader is not None:
            uploader.close()
        store.close()


def _api_server() -> Callable[..., Coroutine[None, None, None]]:
    """FastAPI and uvicorn come with the `api` extra, imported only when the API is on."""
    try:
        from collector.api.app import serve_api
    except ImportError as exc:
        raise fail(
            ValueError(
                _("the api section needs the api extra (pip install '.[api]'): {why}").format(
                    why=exc
                )
            )
        ) from None
    return serve_api


def _tt10_uploader(config: Path, settings: Tt10Settings) -> Tt10Uploader | None:
    """The uploader with its password and ledger, or one line naming the config file and
    the key that is wrong (a password file missing or empty, a ledger that cannot open)."""
    if settings.upload is None or settings.ledger_path is None:
        return None
    try:
        password = password_of(settings.upload)
    except ValueError as exc:
        raise fail(ConfigError(config, [("tt10.upload.password_file", str(exc))])) from None
    try:
        ledger = Ledger(settings.ledger_path)
    except (OSError, sqlite3.Error) as exc:
        problem = f"{settings.ledger_path}: {exc}"
        raise fail(ConfigError(config, [("tt10.upload.ledger_path", problem)])) from None
    try:
        return Tt10Uploader(settings, ledger, password)
    except ValueError as exc:  # sftp without the tt10 extra installed
        ledger.close()
        raise fail(ConfigError(config, [("tt10.upload.protocol", str(exc))])) from None


def _alarms(
    config: Path,
    settings: CollectorConfig,
    section: AlarmSettings,
    store: Store,
    limits: LimitTable,
    registry: Registry | None,
) -> Alarms:
    """The alarm subsystem, or one line naming the key that stops it: a database that
    cannot open, a webhook secret that cannot be read."""
    for i, webhook in enumerate(section.webhooks):
        try:
            webhook.secret()
        except OSError as exc:
            key = f"alarms.webhooks[{i}].secret_file"
            raise fail(ConfigError(config, [(key, str(exc))])) from None
    try:
        return Alarms(settings, section, store, limits, registry)
    except (OSError, sqlite3.Error) as exc:
        raise fail(ConfigError(config, [("alarms.path", str(exc))])) from None


def _usable_certificate(section: str, cert: Path, key: Path) -> None:
    """Load the pair as the server will, so one that cannot serve https stops the
    collector at once, in one line, rather than from inside a running task."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        problem = _("{section}: tls_cert {cert} with tls_key {key} cannot serve https: {why}")
        raise fail(
            ValueError(problem.format(section=section, cert=cert, key=key, why=exc))
        ) from None


def _metrics_server(
    settings: MetricsSettings,
    ingest: Ingest,
    store: Store,
    spool: Spool | None,
    silent_after: timedelta,
    police: Police | None,
    alarms: Alarms | None,
) -> WSGIServer:
    """The metrics endpoint, or one line saying why it cannot start (a port taken, a
    token file missing or empty)."""
    try:
        return serve_metrics(settings, ingest, store, spool, silent_after, police, alarms)
    except (OSError, ValueError) as exc:
        raise fail(ValueError(f"metrics: {exc}")) from None
