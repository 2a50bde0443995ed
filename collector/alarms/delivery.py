"""Alarm changes to the people told: on MQTT, `{prefix}/v1/alarms/{severity}`, and as
signed POSTs to webhooks, each rule's alarms to the webhooks of its roles.

A change owes one delivery per channel, written with it (`book.py`). The MQTT sender
publishes at QoS 1 over a client of its own, the webhook senders sign and retry as the
police alert webhooks do (collector/signed_posts.py) and dead-letter after `attempts`.
`X-PQ-Alarm-Id` and `X-PQ-Alarm-Event` are stable across attempts, so a receiver can drop
a repeat.
"""

import asyncio
import json
import logging
import random
from collections.abc import Sequence
from datetime import UTC, datetime

import aiomqtt

from collector.alarms.book import AlarmBook
from collector.config import AlarmRule, AlarmSettings, AlarmWebhookSettings
from collector.signed_posts import SignedPoster
from iotruntime.connection import BrokerSettings, ProtocolChoice, backoff_delay, mqtt_session
from iotruntime.stopping import sleep_unless_stopped

log = logging.getLogger(__name__)
MQTT = "mqtt"
ALARM_ID = "X-PQ-Alarm-Id"
ALARM_EVENT = "X-PQ-Alarm-Event"
IDLE_CHECK_S = 5.0


def alarms_topic(prefix: str, severity: str) -> str:
    return f"{prefix}/v1/alarms/{severity}"


def webhook_channel(name: str) -> str:
    return f"webhook:{name}"


class ChannelsOf:
    """The channels a rule's alarms go to: MQTT when on, and every webhook that takes
    all alarms or one of the rule's roles."""

    def __init__(self, settings: AlarmSettings) -> None:
        self._settings = settings

    def __call__(self, rule: AlarmRule) -> Sequence[str]:
        channels = [MQTT] if self._settings.mqtt else []
        channels += [
            webhook_channel(w.name)
            for w in self._settings.webhooks
            if not w.roles or set(w.roles) & set(rule.roles)
        ]
        return channels


async def _wait(wake: asyncio.Event, stop: asyncio.Event, timeout_s: float) -> None:
    waking = asyncio.create_task(wake.wait())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({waking, stopping}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    waking.cancel()
    stopping.cancel()
    wake.clear()


class MqttAlarmSender:
    """Publishes owed MQTT deliveries over a session of its own (client id
    `{ingest client id}-alarms`, ending with the connection): the ingest session's
    client belongs to its acknowledgement pipeline."""

    def __init__(self, broker: BrokerSettings, client_id: str, book: AlarmBook) -> None:
        self._broker = broker
        self._identifier = f"{client_id}-alarms"
        self._book = book
        self._choice = ProtocolChoice(broker.protocol)
        self.wake = asyncio.Event()
        self.published = 0

    async def run(self, stop: asyncio.Event) -> None:
        attempt, rng = 0, random.Random()  # noqa: S311 - jitter, not security
        while not stop.is_set():
            try:
                async with mqtt_session(
                    self._broker, self._choice, persistent=False, identifier=self._identifier
                ) as (client, _):
                    attempt = 0
                    while not stop.is_set():
                        await self._publish_due(client)
                        await _wait(self.wake, stop, IDLE_CHECK_S)
            except aiomqtt.MqttError as exc:
                log.warning("alarm publisher: broker session lost: %s", exc)
            attempt += 1
            await sleep_unless_stopped(
                stop, backoff_delay(attempt, rng, self._broker.reconnect_max_s)
            )

    async def _publish_due(self, client: aiomqtt.Client) -> None:
        due = await asyncio.to_thread(self._book.due, MQTT, datetime.now(UTC))
        for delivery in due:
            severity = json.loads(delivery.body)["severity"]
            topic = alarms_topic(self._broker.topic_prefix, severity)
            await client.publish(topic, delivery.body, qos=1)
            await asyncio.to_thread(self._book.delivered, delivery, delivery.attempts + 1)
            self.published += 1


class AlarmWebhookSender:
    def __init__(self, settings: AlarmWebhookSettings, book: AlarmBook) -> None:
        self.settings = settings
        self.channel = webhook_channel(settings.name)
        self._book = book
        self._poster = SignedPoster(settings)
        self.wake = asyncio.Event()
        self.delivered = 0
        self.failed = 0
        self.dead = 0

    def post(self, alarm_id: str, event: str, body: bytes, attempt: int) -> str | None:
        """One attempt; None when the endpoint took it, else what went wrong."""
        return self._poster.post(body, {ALARM_ID: alarm_id, ALARM_EVENT: event}, attempt)

    def retry_at(self, attempts: int, now: datetime) -> datetime | None:
        return self._poster.retry_at(attempts, now)

    async def send_due(self) -> None:
        due = await asyncio.to_thread(self._book.due, self.channel, datetime.now(UTC))
        for delivery in due:
            attempts = delivery.attempts + 1
            error = await asyncio.to_thread(
                self.post, delivery.alarm, delivery.event, delivery.body, attempts
            )
            if error is None:
                await asyncio.to_thread(self._book.delivered, delivery, attempts)
                self.delivered += 1
                continue
            retry_at = self.retry_at(attempts, datetime.now(UTC))
            await asyncio.to_thread(self._book.failed, delivery, attempts, retry_at, error)
            self.failed += 1
            if retry_at is None:
                self.dead += 1
                log.error(
                    "alarm webhook %s: alarm %s %s dead-lettered after %d attempts: %s",
                    self.settings.name,
                    delivery.alarm,
                    delivery.event,
                    attempts,
                    error,
                )
            elif attempts == 1:
                log.warning("alarm webhook %s: %s; retrying", self.settings.name, error)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            upcoming = None
            try:
                await self.send_due()
                upcoming = await asyncio.to_thread(self._book.next_attempt, self.channel)
            except Exception:  # the sender must outlive a database hiccup
                log.exception("alarm webhook %s: sending failed; trying again", self.settings.name)
            wait_s = IDLE_CHECK_S
            if upcoming is not None:
                wait_s = min(wait_s, max(0.0, (upcoming - datetime.now(UTC)).total_seconds()))
            await _wait(self.wake, stop, wait_s)
