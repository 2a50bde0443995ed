"""The collector's counters in Prometheus text format, read at scrape time.

The figures are not copied into metric objects as they change: ingest keeps its counters,
the store its per-device accounting, and a scrape reads them where they live, so there is
one source for each number. Per-device figures come from the store, which is what makes
them survive restarts and agree between collectors sharing a subscription.
"""

import hmac
import logging
import socket
import ssl
import sys
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from prometheus_client import make_wsgi_app
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector, CollectorRegistry

from collector.alarms.service import Alarms
from collector.config import MetricsSettings
from collector.i18n import services
from collector.ingest.session import Ingest
from collector.ingest.spool import Spool
from collector.police.service import Police
from collector.stores.base import Store, StoreUnavailableError

_ = services.gettext

log = logging.getLogger(__name__)


class IngestCollector(Collector):
    def __init__(
        self,
        ingest: Ingest,
        store: Store,
        spool: Spool | None,
        silent_after: timedelta,
        police: Police | None = None,
    ) -> None:
        self._ingest = ingest
        self._store = store
        self._spool = spool
        self._silent_after = silent_after
        self._police = police

    def collect(self) -> Iterator[Metric]:
        s = self._ingest.stats
        for name, value, doc in (
            ("received", s.received, "messages taken from the broker"),
            ("stored", s.stored_messages, "messages committed to the store the first time"),
            ("duplicates", s.duplicates, "messages the store already held"),
            (
                "spooled",
                s.spooled,
                "messages committed to the spool while the store was down or behind",
            ),
            ("backlog", s.backlog, "messages an agent replayed after an outage"),
        ):
            yield CounterMetricFamily(f"collector_messages_{name}", doc, value=value)
        invalid = CounterMetricFamily(
            "collector_messages_invalid", "messages dropped, by reason", labels=["reason"]
        )
        for reason, count in sorted(s.invalid.items()):
            invalid.add_metric([reason], count)
        yield invalid
        invalid_from = CounterMetricFamily(
            "collector_messages_invalid_by_sender",
            "messages dropped, by the device that sent them (or the topic, when it names"
            " no device) and reason",
            labels=["sender", "reason"],
        )
        for (sender, reason), count in sorted(s.invalid_from.items()):
            invalid_from.add_metric([sender, reason], count)
        yield invalid_from
        yield CounterMetricFamily(
            "collector_store_failures", "store failures that closed the session", s.store_failures
        )
        yield CounterMetricFamily(
            "collector_alerts_published",
            "plate alerts the broker accepted",
            self._ingest.alerts_published,
        )
        yield SummaryMetricFamily(
            "collector_store_write_seconds",
            "time the committer spent in the store's calls per batch",
            count_value=s.store_batches,
            sum_value=s.store_seconds,
        )
        if self._spool is not None:
            yield GaugeMetricFamily(
                "collector_spool_depth", "messages waiting for the store", self._spool.depth
            )
        if self._police is not None:
            yield from self._alerts(self._police)
        yield from self._devices()

    def _alerts(self, police: Police) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "collector_plate_reads_too_old",
            "plate reads that arrived past their retention, not stored",
            police.plates.too_old,
        )
        yield CounterMetricFamily(
            "collector_plate_reads_not_from_a_camera",
            "plate reads from a box registered as another kind than a camera pole, refused",
            police.plates.not_from_a_camera,
        )
        families = [
            CounterMetricFamily(f"collector_webhook_{name}", doc, labels=["webhook"])
            for name, doc in (
                ("delivered", "alerts the endpoint took"),
                ("failed_attempts", "attempts that failed, to be retried or dead-lettered"),
                ("dead", "alerts given up after the last attempt"),
            )
        ]
        for webhook in police.webhooks:
            name = [webhook.settings.name]
            for family, value in zip(
                families, (webhook.delivered, webhook.failed, webhook.dead), strict=True
            ):
                family.add_metric(name, value)
        yield from families

    def _devices(self) -> Iterator[Metric]:
        """The store's figures, or `collector_store_up 0` however the store fails: a
        scrape that fails whole would hide ingest's counters just when they matter."""
        try:
            devices = self._store.devices()
        except Exception as exc:
            # An unavailable store is an outage; anything else is a fault worth its traceback.
            log.warning(
                "metrics without device figures, store unavailable: %s",
                exc,
                exc_info=not isinstance(exc, StoreUnavailableError),
            )
            yield GaugeMetricFamily("collector_store_up", "1 when the store answers", 0)
            return
        yield GaugeMetricFamily("collector_store_up", "1 when the store answers", 1)
        labels = ["device", "site"]
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {
            "messages": CounterMetricFamily(
                "collector_device_messages", "distinct messages stored", labels=labels
            ),
            "duplicates": CounterMetricFamily(
                "collector_device_duplicates", "repeated deliveries", labels=labels
            ),
            "gaps": GaugeMetricFamily(
                "collector_device_gaps", "sequence numbers never received", labels=labels
            ),
            "state_resets": GaugeMetricFamily(
                "collector_device_state_resets",
                "times the box lost its state and numbered again from 1 under a new epoch",
                labels=labels,
            ),
            "online": GaugeMetricFamily(
                "collector_device_online",
                "1 online and heard from lately, 0 offline, silent or unknown",
                labels=labels,
            ),
            "last_seen": GaugeMetricFamily(
                "collector_device_last_seen_seconds",
                "Unix time of the last message",
                labels=labels,
            ),
        }
        info = GaugeMetricFamily(
            "collector_device_info",
            "1 per box, labelled with the software version it last announced",
            labels=[*labels, "version"],
        )
        now = datetime.now(UTC)
        for d in devices:
            ids = [d.device, d.site]
            info.add_metric([*ids, d.version], 1)
            families["messages"].add_metric(ids, d.messages)
            families["duplicates"].add_metric(ids, d.duplicates)
            families["gaps"].add_metric(ids, d.gaps)
            families["state_resets"].add_metric(ids, d.state_resets)
            online = d.state_at(now, self._silent_after) == "online"
            families["online"].add_metric(ids, 1 if online else 0)
            if d.last_seen is not None:
                families["last_seen"].add_metric(ids, d.last_seen.timestamp())
        yield from families.values()
        yield info


class AlarmCollector(Collector):
    """The alarm subsystem's figures: what is active, what was raised and resolved, what
    evaluation costs, and the deliveries by channel and state (a dead one is an alarm
    nobody was told of)."""

    def __init__(self, alarms: Alarms) -> None:
        self._alarms = alarms

    def collect(self) -> Iterator[Metric]:
        evaluator = self._alarms.evaluator
        yield GaugeMetricFamily("collector_alarms_active", "alarms active", evaluator.active)
        yield CounterMetricFamily(
            "collector_alarms_raised", "alarms raised since the start", evaluator.raised
        )
        yield CounterMetricFamily(
            "collector_alarms_resolved", "alarms resolved since the start", evaluator.resolved
        )
        yield CounterMetricFamily(
            "collector_alarm_evaluation_failures",
            "evaluation ticks that failed (the store down or a fault)",
            self._alarms.failures,
        )
        yield SummaryMetricFamily(
            "collector_alarm_evaluation_seconds",
            "time each evaluation tick took",
            count_value=self._alarms.ticks,
            sum_value=self._alarms.evaluation_seconds,
        )
        deliveries = GaugeMetricFamily(
            "collector_alarm_deliveries",
            "alarm deliveries by channel and state (pending, sent, dead)",
            labels=["channel", "state"],
        )
        for (channel, state), count in sorted(self._alarms.book.delivery_counts().items()):
            deliveries.add_metric([channel, state], count)
        yield deliveries


def serve_metrics(
    settings: MetricsSettings,
    ingest: Ingest,
    store: Store,
    spool: Spool | None,
    silent_after: timedelta,
    police: Police | None = None,
    alarms: Alarms | None = None,
) -> WSGIServer:
    """Serve /metrics from a daemon thread; the caller shuts the server down."""
    registry = CollectorRegistry()
    registry.register(IngestCollector(ingest, store, spool, silent_after, police))
    if alarms is not None:
        registry.register(AlarmCollector(alarms))
    server = _metrics_server(settings, make_wsgi_app(registry))
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    scheme = "https" if settings.tls_cert else "http"
    log.info("metrics on %s://%s:%d/metrics", scheme, settings.host, settings.port)
    return server


class _MetricsServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        """One line, not a traceback: a port scan or a client without TLS is no bug."""
        log.warning("metrics: a request from %s failed: %s", client_address[0], sys.exc_info()[1])


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """A line per scrape would bury the collector's own log."""


def _token_required(app: WSGIApplication, token: str) -> WSGIApplication:
    expected = f"Bearer {token}".encode()

    def guarded(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        given = str(environ.get("HTTP_AUTHORIZATION", "")).encode()
        if hmac.compare_digest(given, expected):
            return app(environ, start_response)
        start_response("401 Unauthorized", [("WWW-Authenticate", "Bearer")])
        return [b"a bearer token is required (metrics.token_file)\n"]

    return guarded


def _metrics_server(settings: MetricsSettings, app: WSGIApplication) -> WSGIServer:
    """prometheus_client's own server, but with the app behind the token when the config
    names one, and over TLS with a certificate. The handshake is left to the request's
    thread: done on accept, one silent client would stall every scrape after it."""
    token = settings.token()
    if token is not None:
        if not token:
            raise ValueError(
                _("metrics: token_file {path} is empty").format(path=settings.token_file)
            )
        app = _token_required(app, token)
    family = socket.getaddrinfo(settings.host, settings.port, type=socket.SOCK_STREAM)[0][0]

    class Server(_MetricsServer):
        address_family = family

    server = make_server(settings.host, settings.port, app, Server, handler_class=_QuietHandler)
    if settings.tls_cert and settings.tls_key:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
        server.socket = context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
    return server
