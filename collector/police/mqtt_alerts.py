"""Alerts to MQTT consoles: each due alert published at QoS 1 on `{prefix}/v1/alerts/plate`
and marked delivered once the broker has it.

It runs inside the ingest's broker session (it needs the connected client); the delivery
rows are claimed with a lease, so with several collectors sharing the work an alert
claimed by one that died falls due again and another sends it.
"""

import asyncio
import contextlib
from datetime import UTC, datetime

import aiomqtt

from collector.police.deliveries import MQTT, Deliveries, Wakeup

DUE_BATCH = 100  # alerts taken from the database at once
ALERT_LEASE_S = 10.0  # a claimed alert is sent by this collector or, after this, by another


class MqttAlertPublisher:
    def __init__(self, deliveries: Deliveries, wakeup: Wakeup, topic: str) -> None:
        self._deliveries = deliveries
        self._raised = wakeup.subscribe()
        self._topic = topic
        self.published = 0

    async def run(self, client: aiomqtt.Client) -> None:
        """Publish due alerts, first those a previous session left; then wait for the
        next to be raised, or for one claimed by a collector that died to fall due."""
        deliveries = self._deliveries
        while True:
            self._raised.clear()
            due = await asyncio.to_thread(
                deliveries.claim, MQTT, datetime.now(UTC), ALERT_LEASE_S, DUE_BATCH
            )
            for delivery in due:
                await client.publish(self._topic, delivery.alert.model_dump_json().encode(), qos=1)
                await asyncio.to_thread(
                    deliveries.succeeded,
                    delivery.alert.id,
                    MQTT,
                    delivery.attempts + 1,
                    datetime.now(UTC),
                )
                self.published += 1
            if len(due) == DUE_BATCH:
                continue
            upcoming = await asyncio.to_thread(deliveries.next_attempt, MQTT)
            wait_s = ALERT_LEASE_S
            if upcoming is not None:
                wait_s = min(wait_s, max(0.0, (upcoming - datetime.now(UTC)).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._raised.wait(), wait_s)
