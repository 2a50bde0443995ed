"""The collector's MQTT side: receive, validate, commit, and only then acknowledge.

The session is persistent (clean_session off, a fixed client id) and acknowledgements are
manual: a message is acknowledged to the broker after the store committed it, so a
collector that dies mid-write leaves the message with the broker, which delivers it again.
Invalid input is counted by reason, acknowledged and dropped: it must not stall the stream
or take good messages down with it. A store that is unavailable is different: with a
spool configured, the batch is committed to the spool (collector/spool.py), acknowledged,
and moved into the store when it is back; without one, nothing is acknowledged, the session
closes, and the broker keeps the messages until the store is back.
"""

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiomqtt

from collector.alerts.deliveries import MQTT
from collector.alerts.service import Police
from collector.config import IngestSettings
from collector.spool import Spool
from collector.stores.base import Delivery, Store, StoreUnavailableError
from iotwire.backlog import is_backlog
from iotwire.codec import DecodeError, decode
from iotwire.connection import BrokerSettings, ProtocolChoice, backoff_delay, mqtt_session
from iotwire.messages import MODEL_FOR_CHANNEL, Health, Message, PlateRead, Status, Telemetry
from iotwire.topics import Channel, TopicError, alerts_topic, parse_topic, subscription

log = logging.getLogger(__name__)

SUBSCRIBED = (Channel.TELEMETRY, Channel.HEALTH, Channel.STATUS)
DUE_BATCH = 100  # alerts taken from the database at once
ALERT_LEASE_S = 10.0  # a claimed alert is sent by this collector or, after this, by another
STORE_RETRY_STEPS = 3  # a failing store is retried within at most 0.5 s * 2**3


@dataclass
class IngestStats:
    received: int = 0
    stored_messages: int = 0
    duplicates: int = 0
    invalid: Counter[str] = field(default_factory=Counter)
    store_failures: int = 0
    spooled: int = 0
    backlog: int = 0
    store_batches: int = 0
    alerts_published: int = 0
    store_seconds: float = 0.0


# topic, payload, site, message, and whether it is backlog: replayed after an outage by
# an agent (iotwire/backlog.py), or held in the spool while the store was down.
Decoded = tuple[str, bytes, str, Message, bool]


def _manual_acks(client: aiomqtt.Client) -> aiomqtt.Client:
    # aiomqtt has no public switch for application acknowledgements yet (aiomqtt#345);
    # paho, underneath, has. These two calls are the only places that reach past aiomqtt.
    # It must be on before connecting: a persistent session's unacknowledged messages are
    # redelivered right after CONNACK, and paho would acknowledge them on receipt.
    client._client.manual_ack_set(True)
    return client


def _ack(client: aiomqtt.Client, message: aiomqtt.Message) -> None:
    if message.qos > 0:
        client._client.ack(message.mid, message.qos)


class Ingest:
    def __init__(
        self,
        broker: BrokerSettings,
        settings: IngestSettings,
        store: Store,
        spool: Spool | None = None,
        police: Police | None = None,
    ) -> None:
        self._broker = broker
        self._settings = settings
        self._store = store
        self._spool = spool
        self._police = police
        self._alerts_raised = police.wakeup.subscribe() if police else asyncio.Event()
        self._spooled = asyncio.Event()
        self._protocol = ProtocolChoice(broker.protocol)
        self._rng = random.Random()  # noqa: S311 - jitter, not security
        self.stats = IngestStats()
        self.connected = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Stay subscribed until `stop`, reconnecting with backoff after any failure;
        meanwhile drain the spool into the store whenever it holds anything."""
        async with asyncio.TaskGroup() as tasks:
            if self._spool is not None:
                tasks.create_task(self._drain_spool(self._spool, stop))
            await self._subscribe(stop)

    async def _subscribe(self, stop: asyncio.Event) -> None:
        attempt = 0
        while not stop.is_set():
            stored_before = self.stats.stored_messages
            store_failed = False
            try:
                async with mqtt_session(
                    self._broker, self._protocol, _manual_acks, identifier=self._settings.client_id
                ) as (client, _):
                    await self._session(client, stop)
                    return
            except aiomqtt.MqttError as exc:
                log.warning("broker session lost: %s", exc)
            except Exception:
                store_failed = True
                self.stats.store_failures += 1
                log.exception("store failed; messages stay with the broker until it is back")
            finally:
                self.connected.clear()
            # Back off harder while nothing gets through; a session that stored something
            # was healthy, and its successor starts from the shortest delay again. A failing
            # store is not the broker's fault: retry it soon, the broker holds the messages.
            if self.stats.stored_messages > stored_before:
                attempt = 0
            delay = backoff_delay(
                min(attempt, STORE_RETRY_STEPS) if store_failed else attempt,
                self._rng,
                self._broker.reconnect_max_s,
            )
            attempt += 1
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                continue

    async def _session(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        prefix, group = self._broker.topic_prefix, self._settings.share_group
        channels = (*SUBSCRIBED, Channel.PLATE) if self._police is not None else SUBSCRIBED
        for channel in channels:
            await client.subscribe(subscription(prefix, channel, share_group=group), qos=1)
        publishing = None
        if self._police is not None:
            publishing = asyncio.create_task(self._publish_alerts(client, self._police))
        self.connected.set()
        log.info("subscribed to %s/v1 on %s:%s", prefix, self._broker.host, self._broker.port)
        messages = client.messages
        stopping = asyncio.create_task(stop.wait())
        try:
            while True:
                receiving = asyncio.ensure_future(anext(messages))
                done, _ = await asyncio.wait(
                    {receiving, stopping}, return_when=asyncio.FIRST_COMPLETED
                )
                if receiving not in done:
                    receiving.cancel()
                    return
                # Whatever else has already arrived joins the batch: one store commit for
                # many messages under load, no added wait when the stream is quiet.
                batch = [receiving.result()]
                while len(messages) and len(batch) < self._settings.batch_messages:
                    batch.append(await anext(messages))
                received = datetime.now(UTC)
                await self.handle_batch(
                    [(str(m.topic), m.payload, is_backlog(m.properties)) for m in batch], received
                )
                for message in batch:
                    _ack(client, message)
        finally:
            stopping.cancel()
            if publishing is not None:
                publishing.cancel()
                with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                    await publishing

    async def handle_batch(self, batch: list[tuple[str, object, bool]], received: datetime) -> None:
        """Validate a batch and commit it to the store, or to the spool when the store is
        down or the spool already holds messages. Raises only when neither could commit
        it; then nothing of the batch may be acknowledged."""
        self.stats.received += len(batch)
        decoded = [d for arrival in batch if (d := self._decode(*arrival))]
        self.stats.backlog += sum(backlog for *_, backlog in decoded)
        if not decoded:
            return
        spool = self._spool
        if spool is not None and spool.depth:
            self._to_spool(spool, decoded, received)
            return
        try:
            await self._commit(decoded, received)
        except StoreUnavailableError as exc:
            if spool is None:
                raise
            log.warning("store unavailable, spooling until it is back: %s", exc)
            self._to_spool(spool, decoded, received)

    def _to_spool(self, spool: Spool, decoded: list[Decoded], received: datetime) -> None:
        spool.put(((topic, payload) for topic, payload, *_ in decoded), received)
        self.stats.spooled += len(decoded)
        self._spooled.set()

    async def _commit(self, decoded: list[Decoded], received: datetime) -> None:
        deliveries: list[Delivery] = []
        for _, _, site, message, backlog in decoded:
            if isinstance(message, Status):
                await asyncio.to_thread(self._store.record_status, site, message, received)
            elif isinstance(message, PlateRead) and self._police is not None:
                # The read and its alerts commit before the ledger does: a crash between
                # the two redelivers the message, which then finds the read already there.
                alerts = await asyncio.to_thread(
                    self._police.plates.record, site, message, received, backlog
                )
                if alerts:
                    self._police.wakeup.notify()
                deliveries.append(Delivery(site, message, received, backlog))
            elif isinstance(message, Telemetry | Health):
                deliveries.append(Delivery(site, message, received, backlog))
        if not deliveries:
            return
        began = time.perf_counter()
        outcomes = await asyncio.to_thread(self._store.write_batch, deliveries)
        self.stats.store_batches += 1
        self.stats.store_seconds += time.perf_counter() - began
        for outcome in outcomes:
            if outcome.rejected:
                self._reject("store_rejected", ValueError(outcome.rejected))
            elif outcome.duplicate:
                self.stats.duplicates += 1
            else:
                self.stats.stored_messages += 1

    async def _publish_alerts(self, client: aiomqtt.Client, police: Police) -> None:
        """Publish due alerts at QoS 1, each marked delivered once the broker has it,
        first those a previous session left; then wait for the next to be raised, or for
        one claimed by a collector that died to fall due again."""
        topic = alerts_topic(self._broker.topic_prefix, "plate")
        deliveries = police.deliveries
        while True:
            self._alerts_raised.clear()
            due = await asyncio.to_thread(
                deliveries.claim, MQTT, datetime.now(UTC), ALERT_LEASE_S, DUE_BATCH
            )
            for delivery in due:
                await client.publish(topic, delivery.alert.model_dump_json().encode(), qos=1)
                await asyncio.to_thread(
                    deliveries.succeeded,
                    delivery.alert.id,
                    MQTT,
                    delivery.attempts + 1,
                    datetime.now(UTC),
                )
                self.stats.alerts_published += 1
            if len(due) == DUE_BATCH:
                continue
            upcoming = await asyncio.to_thread(deliveries.next_attempt, MQTT)
            wait_s = ALERT_LEASE_S
            if upcoming is not None:
                wait_s = min(wait_s, max(0.0, (upcoming - datetime.now(UTC)).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._alerts_raised.wait(), wait_s)

    async def _drain_spool(self, spool: Spool, stop: asyncio.Event) -> None:
        """Move spooled messages into the store, oldest first, once it takes them again.
        Each new reason it cannot is logged once, so a drain stuck on something other
        than a store that is down says what holds it."""
        attempt, reason = 0, ""
        while not stop.is_set():
            if not spool.depth:
                self._spooled.clear()
                waiting = asyncio.create_task(self._spooled.wait())
                stopping = asyncio.create_task(stop.wait())
                await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
                waiting.cancel()
                stopping.cancel()
                continue
            items = spool.peek(self._settings.batch_messages)
            by_arrival: dict[datetime, list[Decoded]] = {}
            for item in items:
                if decoded := self._decode(item.topic, item.payload, backlog=True):
                    by_arrival.setdefault(item.received, []).append(decoded)
            try:
                for received, decoded in by_arrival.items():
                    await self._commit(decoded, received)
            except Exception as exc:  # the drain must outlive any failure of the store
                if f"{exc!r}" != reason:
                    reason = f"{exc!r}"
                    log.warning("spool drain waits for the store: %s", reason)
                delay = backoff_delay(min(attempt, STORE_RETRY_STEPS), self._rng)
                attempt += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                continue
            attempt, reason = 0, ""
            spool.remove(item.id for item in items)
            if not spool.depth:
                log.info("spool drained into the store")

    def _decode(self, topic_text: str, payload: object, backlog: bool = False) -> Decoded | None:
        try:
            topic = parse_topic(topic_text, self._broker.topic_prefix)
        except TopicError as exc:
            return self._reject("bad_topic", exc)
        if not isinstance(payload, bytes | bytearray):
            return self._reject("bad_payload", ValueError("payload is not bytes"))
        raw = bytes(payload)
        try:
            message = decode(raw, MODEL_FOR_CHANNEL[topic.channel])
        except DecodeError as exc:
            return self._reject(exc.reason.value, exc, topic_text)
        if message.device != topic.device:
            mismatch = ValueError(f"payload device {message.device!r} on {topic.device}'s topic")
            return self._reject("device_mismatch", mismatch, topic_text)
        return topic_text, raw, topic.site, message, backlog

    def _reject(self, reason: str, exc: Exception, topic: str = "") -> None:
        first = self.stats.invalid[reason] == 0
        self.stats.invalid[reason] += 1
        if first:
            log.warning("dropped invalid message (%s) %s: %s", reason, topic, exc)
