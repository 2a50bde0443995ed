"""Alerts to HTTP endpoints: a signed POST per alert, retried with backoff, dead-lettered
when the endpoint never recovers.

The receiver checks `X-PQ-Signature` (HMAC-SHA256 over the timestamp header, a dot and
the body, with the shared secret) and may refuse a stale `X-PQ-Timestamp`, so a captured
request can be neither forged nor replayed much later. `X-PQ-Alert-Id` is stable across
attempts: a receiver that answered 2xx too late to be heard gets the alert again and can
tell. Any answer other than 2xx, a refused connection or a timeout is a failed attempt.
"""

import asyncio
import hashlib
import hmac
import logging
import time
from datetime import UTC, datetime, timedelta

import urllib3

from collector.config import WebhookSettings
from collector.police.deliveries import Deliveries, Wakeup, webhook_channel
from iotwire.messages import PlateAlert

log = logging.getLogger(__name__)
SIGNATURE = "X-PQ-Signature"
TIMESTAMP = "X-PQ-Timestamp"
ALERT_ID = "X-PQ-Alert-Id"
ATTEMPT = "X-PQ-Attempt"
IDLE_CHECK_S = 30.0  # a retry time set by another process is noticed within this long
LEASE_MARGIN_S = 10.0  # a claimed delivery is another collector's again this long after its timeout


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookSender:
    def __init__(self, settings: WebhookSettings, deliveries: Deliveries, wakeup: Wakeup) -> None:
        self.settings = settings
        self.channel = webhook_channel(settings.name)
        self._deliveries = deliveries
        self._wake = wakeup.subscribe()
        self._secret = settings.secret()
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(total=settings.timeout_s),
            retries=False,
            ca_certs=str(settings.ca_file) if settings.ca_file else None,
        )
        self.delivered = 0
        self.failed = 0
        self.dead = 0

    def post(self, alert: PlateAlert, attempt: int) -> str | None:
        """One attempt; None when the endpoint took it, else what went wrong."""
        body = alert.model_dump_json().encode()
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP: stamp,
            SIGNATURE: sign(self._secret, stamp, body),
            ALERT_ID: alert.id,
            ATTEMPT: str(attempt),
        }
        try:
            answer = self._http.request("POST", self.settings.url, body=body, headers=headers)
        except urllib3.exceptions.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if 200 <= answer.status < 300:
            return None
        return f"HTTP {answer.status}: {answer.data[:200].decode(errors='replace')}"

    def retry_at(self, attempts: int, now: datetime) -> datetime | None:
        if attempts >= self.settings.attempts:
            return None
        delay = min(self.settings.backoff_max_s, self.settings.backoff_s * 2 ** (attempts - 1))
        return now + timedelta(seconds=delay)

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
