"""The collector's counters in Prometheus text format, read at scrape time.

The figures are not copied into metric objects as they change: ingest keeps its counters,
the store its per-device accounting, and a scrape reads them where they live, so there is
one source for each number. Per-device figures come from the store, which is what makes
them survive restarts and agree between collectors sharing a subscription.
"""

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector, CollectorRegistry

from collector.config import MetricsSettings
from collector.ingest.session import Ingest
from collector.ingest.spool import Spool
from collector.police.service import Police
from collector.stores.base import Store, StoreUnavailableError

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
            ("spooled", s.spooled, "messages committed to the spool while the store was down"),
            ("backlog", s.backlog, "messages an agent replayed after an outage"),
        ):
            yield CounterMetricFamily(f"collector_messages_{name}", doc, value=value)
        invalid = CounterMetricFamily(
            "collector_messages_invalid", "messages dropped, by reason", labels=["reason"]
        )
        for reason, count in sorted(s.invalid.items()):
            invalid.add_metric([reason], count)
        yield invalid
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
        try:
            devices = self._store.devices()
        except StoreUnavailableError as exc:
            log.warning("metrics without device figures, store unavailable: %s", exc)
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
        now = datetime.now(UTC)
        for d in devices:
            ids = [d.device, d.site]
            families["messages"].add_metric(ids, d.messages)
            families["duplicates"].add_metric(ids, d.duplicates)
            families["gaps"].add_metric(ids, d.gaps)
            online = d.state_at(now, self._silent_after) == "online"
            families["online"].add_metric(ids, 1 if online else 0)
            if d.last_seen is not None:
                families["last_seen"].add_metric(ids, d.last_seen.timestamp())
        yield from families.values()


def serve_metrics(
    settings: MetricsSettings,
    ingest: Ingest,
    store: Store,
    spool: Spool | None,
    silent_after: timedelta,
    police: Police | None = None,
) -> WSGIServer:
    """Serve /metrics from a daemon thread; the caller shuts the server down."""
    registry = CollectorRegistry()
    registry.register(IngestCollector(ingest, store, spool, silent_after, police))
    server, _ = start_http_server(settings.port, settings.host, registry=registry)
    log.info("metrics on http://%s:%d/metrics", settings.host, settings.port)
    return server
