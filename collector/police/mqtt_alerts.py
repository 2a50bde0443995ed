"""Alerts to MQTT consoles: each due alert published at QoS 1 on its channel's topic
(`{prefix}/v1/alerts/plate` for every console, a unit's dispatch topic, the duty desk's
escalation topic) and marked delivered once the broker has it.

It runs inside the ingest's broker session (it needs the connected client); the delivery
rows are claimed with a lease, so with several collectors sharing the work an alert
claimed by one that died falls due again and another sends it.
"""

import asyncio
import contextlib
from datetime import UTC, datetime

import aiomqtt

from collector.police.deliveries import Deliveries, Wakeup

DUE_BATCH = 100  # alerts taken from the database at once
ALERT_LEASE_S = 10.0  # a claimed alert is sent by this collector or, after this, by another


class MqttAlertPublisher:
    def __init__(self, deliveries: Deliveries, wakeup: Wakeup, topics: dict[str, str]) -> None:
        """`topics`: each delivery channel this publisher sends, and the topic it goes to."""
        self._deliveries = deliveries
        self._raised = wakeup.subscribe()
        self._topics = topics
        self.published = 0

    async def run(self, client: aiomqtt.Client) -> None:
        """Publish due alerts, first those a previous session left; then wait for the
        next to be raised, or for one claimed by a collector that died to fall due."""
        deliveries = self._deliveries
        while True:
            self._raised.clear()
            full = False
            for channel, topic in self._topics.items():
                full |= await self._publish_due(client, channel, topic) == DUE_BATCH
            if full:
                continue
            wait_s = ALERT_LEASE_S
            for channel in self._topics:
                upcoming = await asyncio.to_thread(deliveries.next_attempt, channel)
                if upcoming is not None:
                    left = (upcoming - datetime.now(UTC)).total_seconds()
                    wait_s = min(wait_s, max(0.0, left))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await self._raised.wait()

    async def _publish_due(self, client: aiomqtt.Client, channel: str, topic: str) -> int:
        deliveries = self._deliveries
        due = await asyncio.to_thread(
            deliveries.claim, channel, datetime.now(UTC), ALERT_LEASE_S, DUE_BATCH
        )
        for delivery in due:
            await client.publish(topic, delivery.alert.model_dump_json().encode(), qos=1)
            await asyncio.to_thread(
                deliveries.succeeded,
                delivery.alert.id,
                channel,
                delivery.attempts + 1,
                datetime.now(UTC),
            )
            self.published += 1
        return len(due)
