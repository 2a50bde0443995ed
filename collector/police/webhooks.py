"""Alerts to HTTP endpoints: a signed POST per alert, retried with backoff, dead-lettered
when the endpoint never recovers.

Signed and retried as collector/signed_posts.py says. `X-PQ-Alert-Id` is stable across
attempts: a receiver that answered 2xx too late to be heard gets the alert again and can
tell.
"""

import asyncio
import logging
from datetime import UTC, datetime

from collector.config import WebhookSettings
from collector.police.deliveries import Deliveries, Wakeup, webhook_channel
from collector.signed_posts import SignedPoster
from iotwire.messages import PlateAlert

log = logging.getLogger(__name__)
ALERT_ID = "X-PQ-Alert-Id"
IDLE_CHECK_S = 30.0  # a retry time set by another process is noticed within this long
LEASE_MARGIN_S = 10.0  # a claimed delivery is another collector's again this long after its timeout


class WebhookSender:
    def __init__(self, settings: WebhookSettings, deliveries: Deliveries, wakeup: Wakeup) -> None:
        self.settings = settings
        self.channel = webhook_channel(settings.name)
        self._deliveries = deliveries
        self._wake = wakeup.subscribe()
        self._poster = SignedPoster(settings)
        self.delivered = 0
        self.failed = 0
        self.dead = 0

    def post(self, alert: PlateAlert, attempt: int) -> str | None:
        """One attempt; None when the endpoint took it, else what went wrong."""
        return self._poster.post(alert.model_dump_json().encode(), {ALERT_ID: alert.id}, attempt)

    def retry_at(self, attempts: int, now: datetime) -> datetime | None:
        return self._poster.retry_at(attempts, now)

    async def send_due(self) -> None:
        """Attempt every delivery whose time has come, in the order alerts were raised."""
        lease_s = self.settings.timeout_s + LEASE_MARGIN_S
        due = await asyncio.to_thread(
            self._deliveries.claim, self.channel, datetime.now(UTC), lease_s
        )
        for delivery in due:
            attempts = delivery.attempts + 1
            error = await asyncio.to_thread(self.post, delivery.alert, attempts)
            now = datetime.now(UTC)
            if error is None:
                await asyncio.to_thread(
                    self._deliveries.succeeded, delivery.alert.id, self.channel, attempts, now
                )
                self.delivered += 1
                continue
            retry_at = self.retry_at(attempts, now)
            await asyncio.to_thread(
                self._deliveries.failed,
                delivery.alert.id,
                self.channel,
                attempts,
                error,
                retry_at,
                now,
            )
            self.failed += 1
            if retry_at is None:
                self.dead += 1
                log.error(
                    "webhook %s: alert %s dead-lettered after %d attempts: %s",
                    self.settings.name,
                    delivery.alert.id,
                    attempts,
                    error,
                )
            elif attempts == 1:
                log.warning("webhook %s: %s; retrying", self.settings.name, error)

    async def run(self, stop: asyncio.Event) -> None:
        """Send what is due, then sleep until an alert is raised, a retry falls due or
        `stop`."""
        while not stop.is_set():
            try:
                await self.send_due()
                upcoming = await asyncio.to_thread(self._deliveries.next_attempt, self.channel)
            except Exception:  # the sender must outlive a database hiccup
                log.exception("webhook %s: sending failed; trying again", self.settings.name)
                upcoming = None
            wait_s = IDLE_CHECK_S
            if upcoming is not None:
                wait_s = min(wait_s, max(0.0, (upcoming - datetime.now(UTC)).total_seconds()))
            waking = asyncio.create_task(self._wake.wait())
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait(
                {waking, stopping}, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED
            )
            waking.cancel()
            stopping.cancel()
            self._wake.clear()
