"""The alarm subsystem as `collector run` holds it: the book, the evaluator and the
senders, and the task that ticks the evaluator and wakes the senders."""

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from collector.alarms.book import AlarmBook
from collector.alarms.delivery import AlarmWebhookSender, ChannelsOf, MqttAlarmSender
from collector.alarms.evaluation import Evaluator
from collector.alarms.health import HealthWatch
from collector.compliance.limits import LimitTable
from collector.config import AlarmSettings, CollectorConfig, OutboxDropsRule
from collector.fleet.registry import Registry
from collector.stores.base import Store, StoreUnavailableError
from iotruntime.stopping import sleep_unless_stopped

log = logging.getLogger(__name__)


def registered_kinds(registry: Registry) -> Callable[[], dict[str, str | None]]:
    """Each registered box's kind, None for a revoked one."""

    def read() -> dict[str, str | None]:
        return {d.device: None if d.revoked else d.kind.value for d in registry.all()}

    return read


class Alarms:
    def __init__(
        self,
        config: CollectorConfig,
        settings: AlarmSettings,
        store: Store,
        limits: LimitTable,
        registry: Registry | None = None,
    ) -> None:
        self.settings = settings
        self.book = AlarmBook(settings.path)
        try:
            self.webhooks = [AlarmWebhookSender(w, self.book) for w in settings.webhooks]
        except OSError:
            self.book.close()
            raise
        self.mqtt = (
            MqttAlarmSender(config.broker, config.ingest.client_id, self.book)
            if settings.mqtt
            else None
        )
        self.health = (
            HealthWatch(config.broker.topic_prefix)
            if any(isinstance(r, OutboxDropsRule) for r in settings.rules)
            else None
        )
        self.evaluator = Evaluator(
            store,
            settings,
            config.stations,
            limits,
            self.book,
            ChannelsOf(settings),
            config.export,
            registered_kinds(registry) if registry is not None else dict,
            self.health.latest if self.health is not None else dict,
        )
        self.evaluation_seconds = 0.0
        self.ticks = 0
        self.failures = 0

    def close(self) -> None:
        self.book.close()

    def _wake_senders(self) -> None:
        if self.mqtt is not None:
            self.mqtt.wake.set()
        for webhook in self.webhooks:
            webhook.wake.set()

    async def evaluate(self, stop: asyncio.Event) -> None:
        """Tick every `every_s` until `stop`; a store that is down skips a tick."""
        await asyncio.to_thread(self.evaluator.retire_removed_rules, datetime.now(UTC))
        while not stop.is_set():
            started = time.perf_counter()
            try:
                changes = await asyncio.to_thread(self.evaluator.tick, datetime.now(UTC))
            except StoreUnavailableError as exc:
                log.warning("alarm evaluation skipped, store unavailable: %s", exc)
                changes = []
                self.failures += 1
            except Exception:  # evaluation must never end the collector
                log.exception("alarm evaluation failed; tried again next tick")
                changes = []
                self.failures += 1
            self.evaluation_seconds += time.perf_counter() - started
            self.ticks += 1
            if changes:
                self._wake_senders()
            await sleep_unless_stopped(stop, self.settings.every_s)

    async def run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.evaluate(stop))
            if self.mqtt is not None:
                tasks.create_task(self.mqtt.run(stop))
            for webhook in self.webhooks:
                tasks.create_task(webhook.run(stop))
